/**
 * Pan and zoom for the graph: drag pans, the wheel zooms at the cursor, + / − / 0 (fit) and the arrow keys work
 * when the canvas has focus, and a minimap (past ~50 tasks) shows where the view is and moves it on click or drag.
 * The drawing lives in one <g> whose transform is `translate(tx, ty) scale(k)`.
 */
import { IBounds } from './layout';

const SVG = 'http://www.w3.org/2000/svg';
const MIN_ZOOM = 0.05;
const MAX_ZOOM = 4;
const FIT_MAX = 1.6; // Fit enlarges a small graph, up to this
const DRAG_THRESHOLD = 4; // px: below this a press is a click
const MINIMAP_WIDTH = 180;

export class Viewport {
  k = 1;
  tx = 0;
  ty = 0;
  /** True while (and just after) a drag moved the view: the click that ends a drag selects nothing. */
  dragged = false;
  /** True until the user moves the view: a resize of the canvas then fits again. */
  auto = true;
  private bounds: IBounds = { x: 0, y: 0, width: 100, height: 60 };
  private minimap: SVGSVGElement | null = null;
  private miniView: SVGRectElement | null = null;

  constructor(
    readonly canvas: HTMLElement,
    private target: () => SVGGElement | null,
    private onChange: () => void
  ) {
    canvas.tabIndex = 0;
    canvas.addEventListener('wheel', ev => this.wheel(ev), { passive: false });
    canvas.addEventListener('pointerdown', ev => this.press(ev));
    canvas.addEventListener('keydown', ev => this.key(ev));
  }

  setBounds(bounds: IBounds): void {
    this.bounds = bounds;
  }

  /** Zoom so a box (default: the whole drawing) fills the canvas, centred; enlarges small graphs up to FIT_MAX. */
  fit(box: IBounds = this.bounds, most = FIT_MAX): void {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (!w || !h) {
      return;
    }
    const k = clamp(Math.min(w / box.width, h / box.height, most));
    this.auto = box === this.bounds;
    this.set(k, (w - box.width * k) / 2 - box.x * k, (h - box.height * k) / 2 - box.y * k);
  }

  /** Zoom by `factor` keeping the canvas point (px, py) still (default: the centre). */
  zoomBy(factor: number, px = this.canvas.clientWidth / 2, py = this.canvas.clientHeight / 2): void {
    const k = clamp(this.k * factor);
    this.auto = false;
    this.set(k, px - ((px - this.tx) * k) / this.k, py - ((py - this.ty) * k) / this.k);
  }

  /** Centre the view on a point of the drawing. */
  centreOn(x: number, y: number, k = this.k): void {
    this.auto = false;
    this.set(clamp(k), this.canvas.clientWidth / 2 - x * k, this.canvas.clientHeight / 2 - y * k);
  }

  set(k: number, tx: number, ty: number): void {
    this.k = k;
    this.tx = tx;
    this.ty = ty;
    this.target()?.setAttribute('transform', `translate(${tx.toFixed(1)},${ty.toFixed(1)}) scale(${k.toFixed(4)})`);
    this.canvas.setAttribute('data-zoom', k.toFixed(3));
    this.updateMinimap();
    this.onChange();
  }

  /** Show a minimap of `content` (a <g> with an id) in the canvas' corner, or remove it (null). */
  showMinimap(contentId: string | null): void {
    this.minimap?.remove();
    this.minimap = this.miniView = null;
    if (!contentId) {
      return;
    }
    const b = this.bounds;
    const height = Math.max(60, Math.min(160, (MINIMAP_WIDTH * b.height) / b.width));
    const mini = document.createElementNS(SVG, 'svg');
    mini.setAttribute('class', 'nbflow-minimap');
    mini.setAttribute('viewBox', `${b.x} ${b.y} ${b.width} ${b.height}`);
    mini.setAttribute('width', String(MINIMAP_WIDTH));
    mini.setAttribute('height', String(Math.round(height)));
    mini.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    const use = document.createElementNS(SVG, 'use');
    use.setAttribute('href', `#${contentId}`);
    const view = document.createElementNS(SVG, 'rect');
    view.setAttribute('class', 'nbflow-minimap-view');
    view.setAttribute('vector-effect', 'non-scaling-stroke');
    mini.append(use, view);
    const move = (ev: PointerEvent) => {
      const r = mini.getBoundingClientRect();
      const scale = Math.max(b.width / r.width, b.height / r.height);
      const cx = b.x + b.width / 2 + (ev.clientX - r.left - r.width / 2) * scale;
      const cy = b.y + b.height / 2 + (ev.clientY - r.top - r.height / 2) * scale;
      this.centreOn(cx, cy);
    };
    mini.addEventListener('pointerdown', ev => {
      ev.stopPropagation();
      ev.preventDefault();
      move(ev);
      const up = () => {
        window.removeEventListener('pointermove', move);
        window.removeEventListener('pointerup', up);
      };
      window.addEventListener('pointermove', move);
      window.addEventListener('pointerup', up);
    });
    this.canvas.appendChild(mini);
    this.minimap = mini;
    this.miniView = view;
    this.updateMinimap();
  }

  private updateMinimap(): void {
    if (!this.miniView) {
      return;
    }
    this.miniView.setAttribute('x', String(-this.tx / this.k));
    this.miniView.setAttribute('y', String(-this.ty / this.k));
    this.miniView.setAttribute('width', String(this.canvas.clientWidth / this.k));
    this.miniView.setAttribute('height', String(this.canvas.clientHeight / this.k));
  }

  private wheel(ev: WheelEvent): void {
    ev.preventDefault();
    const r = this.canvas.getBoundingClientRect();
    const delta = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    this.zoomBy(Math.exp(-delta * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }

  private press(ev: PointerEvent): void {
    if (ev.button !== 0 || (ev.target as Element).closest('.nbflow-minimap')) {
      return;
    }
    const x0 = ev.clientX;
    const y0 = ev.clientY;
    const t0 = { x: this.tx, y: this.ty };
    this.dragged = false;
    const move = (e: PointerEvent) => {
      const dx = e.clientX - x0;
      const dy = e.clientY - y0;
      if (!this.dragged && Math.hypot(dx, dy) < DRAG_THRESHOLD) {
        return;
      }
      if (!this.dragged) {
        this.dragged = true;
        this.auto = false;
        this.canvas.classList.add('nbflow-mod-panning');
      }
      this.set(this.k, t0.x + dx, t0.y + dy);
    };
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      this.canvas.classList.remove('nbflow-mod-panning');
      setTimeout(() => (this.dragged = false), 0); // after the click event this pointerup produces
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }

  private key(ev: KeyboardEvent): void {
    const step = 60;
    const actions: Record<string, () => void> = {
      '+': () => this.zoomBy(1.25),
      '=': () => this.zoomBy(1.25),
      '-': () => this.zoomBy(0.8),
      '−': () => this.zoomBy(0.8),
      '0': () => this.fit(),
      ArrowLeft: () => this.set(this.k, this.tx + step, this.ty),
      ArrowRight: () => this.set(this.k, this.tx - step, this.ty),
      ArrowUp: () => this.set(this.k, this.tx, this.ty + step),
      ArrowDown: () => this.set(this.k, this.tx, this.ty - step)
    };
    const act = actions[ev.key];
    if (act && !(ev.target as Element).closest('input, select, textarea')) {
      ev.preventDefault();
      this.auto = false;
      act();
    }
  }
}

function clamp(k: number): number {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, k));
}
