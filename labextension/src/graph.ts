/**
 * The pipeline graph: laid out with dagre (pure JS, no system binary), drawn as SVG.
 * Each task is a <g class="nbflow-node" data-task=NAME data-state=STATE>; a state change only
 * rewrites data-state (no new layout), so the view stays put while a run progresses.
 */
import { graphlib, layout } from '@dagrejs/dagre';

import { IEdge, ITask } from './api';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_HEIGHT = 30;
const CHAR_WIDTH = 7.2;
const BIG_GRAPH = 100; // tasks; above this, the faster ranking
let markerCount = 0;

export const STATE_LABELS: Record<string, string> = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  check_failed: 'check failed',
  upstream_failed: 'upstream failed',
  skipped: 'up to date',
  cancelled: 'cancelled'
};

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

/** A key that changes only when the graph's shape changes (tasks or edges), not their states. */
export function structureKey(tasks: ITask[], edges: IEdge[]): string {
  const names = tasks.map(t => t.name).sort();
  const links = edges.map(e => `${e.source}>${e.target}`).sort();
  return names.join('\n') + '\n--\n' + links.join('\n');
}

export class GraphView {
  readonly node: HTMLDivElement;
  private svg: SVGSVGElement | null = null;
  private nodes = new Map<string, SVGGElement>();
  private key = '';
  private selected: string | null = null;
  private markerId = `nbflow-arrow-${++markerCount}`;
  /** Milliseconds the last layout took (shown in the benchmark). */
  lastLayoutMs = 0;

  private zoom = 1;
  private size = { width: 0, height: 0 };
  private canvas: HTMLDivElement;

  constructor(private onSelect: (task: string) => void) {
    this.node = document.createElement('div');
    this.node.className = 'nbflow-graph';
    const controls = document.createElement('div');
    controls.className = 'nbflow-zoom';
    for (const [label, title, action] of [
      ['−', 'Zoom out', () => this.setZoom(this.zoom / 1.25)],
      ['+', 'Zoom in', () => this.setZoom(this.zoom * 1.25)],
      ['Fit', 'Fit the whole graph', () => this.fit()],
      ['1:1', 'Actual size', () => this.setZoom(1)]
    ] as Array<[string, string, () => void]>) {
      const b = document.createElement('button');
      b.className = 'jp-Button nbflow-button nbflow-zoom-button';
      b.type = 'button';
      b.textContent = label;
      b.title = title;
      b.addEventListener('click', action);
      controls.appendChild(b);
    }
    this.canvas = document.createElement('div');
    this.canvas.className = 'nbflow-canvas';
    this.node.append(controls, this.canvas);
  }

  /** Scale the drawing (the viewBox keeps it crisp); 1 = actual size. */
  setZoom(zoom: number): void {
    this.zoom = Math.min(4, Math.max(0.05, zoom));
    if (this.svg) {
      this.svg.setAttribute('width', String(Math.ceil(this.size.width * this.zoom)));
      this.svg.setAttribute('height', String(Math.ceil(this.size.height * this.zoom)));
    }
  }

  /** Zoom so the whole graph fits the visible area (never above actual size). */
  fit(): void {
    const w = this.canvas.clientWidth - 4;
    const h = this.canvas.clientHeight - 4;
    if (this.size.width && w > 0 && h > 0) {
      this.setZoom(Math.min(1, w / this.size.width, h / this.size.height));
    }
  }

  /** Draw the graph, laying it out again only when its shape changed; then set every node's state. */
  show(tasks: ITask[], edges: IEdge[]): void {
    const key = structureKey(tasks, edges);
    if (key !== this.key || !this.svg) {
      this.key = key;
      this.draw(tasks, edges);
    }
    this.setStates(tasks);
  }

  select(task: string | null): void {
    if (this.selected) {
      this.nodes.get(this.selected)?.classList.remove('nbflow-selected');
    }
    this.selected = task;
    if (task) {
      this.nodes.get(task)?.classList.add('nbflow-selected');
    }
  }

  private setStates(tasks: ITask[]): void {
    for (const t of tasks) {
      const g = this.nodes.get(t.name);
      if (!g) {
        continue;
      }
      if (g.getAttribute('data-state') !== t.state) {
        g.setAttribute('data-state', t.state);
      }
      const title = g.querySelector('title');
      if (title) {
        const extra = t.error ? `\n${t.error.message ?? ''}` : t.reason ? `\n${t.reason}` : '';
        title.textContent = `${t.name}: ${STATE_LABELS[t.state] ?? t.state}${extra}`;
      }
    }
  }

  private draw(tasks: ITask[], edges: IEdge[]): void {
    const started = performance.now();
    const g = new graphlib.Graph();
    // network-simplex ranking gives the tidiest layout but costs ~250 ms at 300 tasks; tight-tree is ~2x faster.
    const ranker = tasks.length > BIG_GRAPH ? 'tight-tree' : 'network-simplex';
    g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 48, marginx: 12, marginy: 12, ranker });
    g.setDefaultEdgeLabel(() => ({}));
    for (const t of tasks) {
      g.setNode(t.name, { width: Math.max(70, t.name.length * CHAR_WIDTH + 26), height: NODE_HEIGHT });
    }
    for (const e of edges) {
      if (g.hasNode(e.source) && g.hasNode(e.target)) {
        g.setEdge(e.source, e.target);
      }
    }
    layout(g);
    const size = g.graph();
    const width = Math.ceil(size.width ?? 100);
    const height = Math.ceil(size.height ?? 60);

    const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'nbflow-svg' });
    const defs = el('defs', {});
    const marker = el('marker', {
      id: this.markerId,
      viewBox: '0 0 10 10',
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse'
    });
    marker.appendChild(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'nbflow-arrow' }));
    defs.appendChild(marker);
    svg.appendChild(defs);

    const edgeLayer = el('g', { class: 'nbflow-edges' });
    for (const e of edges) {
      const data = g.hasEdge(e.source, e.target) ? g.edge(e.source, e.target) : null;
      if (!data || !data.points) {
        continue;
      }
      const d = data.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
      const path = el('path', { d, class: 'nbflow-edge', 'marker-end': `url(#${this.markerId})` });
      path.setAttribute('data-source', e.source);
      path.setAttribute('data-target', e.target);
      const title = el('title', {});
      title.textContent = `${e.source} -> ${e.target}: ${Array.isArray(e.via) ? e.via.join(', ') : e.via}`;
      path.appendChild(title);
      edgeLayer.appendChild(path);
    }
    svg.appendChild(edgeLayer);

    const nodeLayer = el('g', { class: 'nbflow-nodes' });
    this.nodes.clear();
    for (const t of tasks) {
      const n = g.node(t.name);
      const group = el('g', { class: 'nbflow-node', transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})` });
      group.setAttribute('data-task', t.name);
      group.setAttribute('data-state', t.state);
      group.setAttribute('role', 'button');
      group.setAttribute('tabindex', '0');
      group.appendChild(el('title', {}));
      group.appendChild(el('rect', { width: n.width, height: n.height, rx: 6, ry: 6 }));
      const label = el('text', { x: n.width / 2, y: n.height / 2, 'dominant-baseline': 'central', 'text-anchor': 'middle' });
      label.textContent = t.name;
      group.appendChild(label);
      group.addEventListener('click', () => this.onSelect(t.name));
      group.addEventListener('keydown', ev => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          this.onSelect(t.name);
        }
      });
      nodeLayer.appendChild(group);
      this.nodes.set(t.name, group);
    }
    svg.appendChild(nodeLayer);

    if (this.svg) {
      this.canvas.replaceChild(svg, this.svg);
    } else {
      this.canvas.appendChild(svg);
    }
    this.svg = svg;
    this.size = { width, height };
    this.setZoom(this.zoom);
    if (this.selected) {
      this.select(this.nodes.has(this.selected) ? this.selected : null);
    }
    this.lastLayoutMs = performance.now() - started;
    this.node.setAttribute('data-layout-ms', this.lastLayoutMs.toFixed(1));
  }
}
