/**
 * The pipeline graph, drawn as SVG from layout.ts, moved by viewport.ts. Each task is a
 * <g class="nbflow-node" data-task=NAME data-state=STATE>; a collapsed folder is a <g class="nbflow-node
 * nbflow-cluster" data-folder=F data-state=WORST>. A state change only rewrites data-state (no new layout).
 */
import { STATE_LABELS, drawFrame, el, structureKey, worstState } from './graphParts';
import { ILayout, RankDir, clusterFolders, computeLayout, folderOf } from './layout';
import { IEdge, ITask } from './types';
import { Viewport } from './viewport';

const MINIMAP_AFTER = 50; // tasks
const COLLAPSE_AFTER = 50; // tasks: bigger pipelines open with their folders collapsed
let drawCount = 0;

export { STATE_LABELS, edgeReason, structureKey, worstState } from './graphParts';

export class GraphView {
  readonly node: HTMLDivElement;
  readonly viewport: Viewport;
  private canvas: HTMLDivElement;
  private svg: SVGSVGElement | null = null;
  private layer: SVGGElement | null = null;
  private nodes = new Map<string, SVGGElement>();
  private clusterNodes = new Map<string, SVGGElement>();
  private tasks: ITask[] = [];
  private edges: IEdge[] = [];
  private key = '';
  private selected: string | null = null;
  private collapsed = new Set<string>();
  private rankdir: RankDir | null = null;
  private laid: ILayout | null = null;
  private contentId = `nbflow-content-${++drawCount}`;
  private markerId = `nbflow-arrow-${drawCount}`;
  private search = document.createElement('input');
  private stateFilter = document.createElement('select');
  private flipButton: HTMLButtonElement;
  private clusterButton: HTMLButtonElement;
  /** Milliseconds the last layout took (shown in the benchmark). */
  lastLayoutMs = 0;
  /** Called after each new drawing (depEdit.ts adds its handles and edge menus). */
  onDrawn: ((svg: SVGSVGElement) => void) | null = null;

  constructor(private onSelect: (task: string) => void) {
    this.node = document.createElement('div');
    this.node.className = 'nbflow-graph';
    const controls = document.createElement('div');
    controls.className = 'nbflow-zoom';
    this.search.type = 'search';
    this.search.className = 'nbflow-search';
    this.search.placeholder = 'Find task…';
    this.search.addEventListener('input', () => this.highlight());
    this.search.addEventListener('keydown', ev => ev.key === 'Enter' && this.revealFirstMatch());
    this.stateFilter.className = 'nbflow-state-filter';
    this.stateFilter.title = 'Highlight tasks in this state';
    this.stateFilter.append(new Option('all states', ''), ...Object.entries(STATE_LABELS).map(([s, l]) => new Option(l, s)));
    this.stateFilter.addEventListener('change', () => this.highlight());
    const mk = (label: string, title: string, cls: string, action: () => void) => {
      const b = document.createElement('button');
      b.className = `jp-Button nbflow-button nbflow-zoom-button ${cls}`;
      b.type = 'button';
      b.textContent = label;
      b.title = title;
      b.addEventListener('click', action);
      return b;
    };
    this.clusterButton = mk('Expand all', 'Expand or collapse every folder', 'nbflow-clusters-button', () => this.toggleAll());
    this.flipButton = mk('⇄', 'Flip the direction (left-to-right / top-to-bottom)', 'nbflow-flip-button', () => this.flip());
    controls.append(
      this.search,
      this.stateFilter,
      h('span', 'nbflow-spacer'),
      this.clusterButton,
      this.flipButton,
      mk('−', 'Zoom out (−)', 'nbflow-zoom-out', () => this.viewport.zoomBy(0.8)),
      mk('+', 'Zoom in (+)', 'nbflow-zoom-in', () => this.viewport.zoomBy(1.25)),
      mk('Fit', 'Fit the whole graph (0)', 'nbflow-fit-button', () => this.viewport.fit()),
      mk('1:1', 'Actual size', 'nbflow-actual-size', () => this.viewport.zoomBy(1 / this.viewport.k))
    );
    this.canvas = document.createElement('div');
    this.canvas.className = 'nbflow-canvas';
    this.canvas.title = 'Drag to pan, wheel to zoom; + − 0 keys';
    this.viewport = new Viewport(this.canvas, () => this.layer, () => this.node.setAttribute('data-zoom', this.viewport.k.toFixed(3)));
    this.node.append(controls, this.canvas);
    // Fit again when the canvas gets its size (the panel was hidden) or is resized, until the user moves the view.
    new ResizeObserver(() => {
      if (this.viewport.auto && this.svg && this.canvas.clientWidth) {
        this.viewport.fit();
      }
    }).observe(this.canvas);
  }

  /** Fit the whole graph in the canvas. */
  fit(): void {
    this.viewport.fit();
  }

  /** Draw the graph, laying it out again only when its shape changed; then set every node's state. */
  show(tasks: ITask[], edges: IEdge[]): void {
    this.tasks = tasks;
    this.edges = edges;
    const key = structureKey(tasks, edges);
    if (key !== this.key || !this.svg) {
      const first = !this.key;
      this.key = key;
      if (first && tasks.length > COLLAPSE_AFTER) {
        this.collapsed = new Set(clusterFolders(tasks).keys());
      }
      this.draw(true);
    }
    this.setStates(tasks);
  }

  select(task: string | null): void {
    this.selected = task;
    for (const [name, g] of this.nodes) {
      g.classList.toggle('nbflow-selected', name === task);
    }
  }

  /** Expand or collapse one folder's cluster; expanding zooms to the folder so its labels are readable. */
  toggleCluster(folder: string): void {
    const expanding = this.collapsed.has(folder);
    if (expanding) {
      this.collapsed.delete(folder);
    } else {
      this.collapsed.add(folder);
    }
    this.draw(!expanding);
    const box = this.laid?.clusters.find(c => c.folder === folder);
    if (expanding && box) {
      this.viewport.fit({ x: box.x - 16, y: box.y - 16, width: box.width + 32, height: box.height + 32 }, 1.2);
    }
  }

  private toggleAll(): void {
    const folders = [...clusterFolders(this.tasks).keys()];
    this.collapsed = this.collapsed.size ? new Set() : new Set(folders);
    this.draw(true);
  }

  private flip(): void {
    this.rankdir = (this.laid?.rankdir ?? 'LR') === 'LR' ? 'TB' : 'LR';
    this.draw(true);
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
      const p = t.state === 'running' && t.progress ? t.progress : null;
      const bar = g.querySelector('.nbflow-progress') as SVGRectElement;
      const width = Number(g.querySelector('rect')?.getAttribute('width') ?? 0);
      bar.setAttribute('width', p && p.cells ? String((width * Math.min(p.cell, p.cells)) / p.cells) : '0');
      g.toggleAttribute('data-progress', !!p);
      const title = g.querySelector('title');
      if (title) {
        const extra = t.error ? `\n${t.error.message ?? ''}` : t.reason ? `\n${t.reason}` : '';
        const cells = p ? `\ncell ${p.cell} of ${p.cells}` : '';
        title.textContent = `${t.name}: ${STATE_LABELS[t.state] ?? t.state}${cells}${extra}`;
      }
    }
    const states = new Map(tasks.map(t => [t.name, t.state as string]));
    for (const [folder, g] of this.clusterNodes) {
      const members = (this.laid?.nodes.find(n => n.folder === folder)?.members ?? []).map(m => states.get(m) ?? 'pending');
      const worst = worstState(members);
      g.setAttribute('data-state', worst);
      const title = g.querySelector('title');
      if (title) {
        title.textContent = `${folder}/: ${members.length} tasks, worst state ${STATE_LABELS[worst] ?? worst}. Click to expand.`;
      }
    }
    this.highlight();
  }

  /** Mark tasks matching the search box and the state filter; dim the others. */
  private highlight(): void {
    const q = this.search.value.trim().toLowerCase();
    const state = this.stateFilter.value;
    const active = !!(q || state);
    const states = new Map(this.tasks.map(t => [t.name, t.state as string]));
    const matches = (name: string) => (!q || name.toLowerCase().includes(q)) && (!state || states.get(name) === state);
    let count = 0;
    for (const [name, g] of this.nodes) {
      const hit = active && matches(name);
      count += hit ? 1 : 0;
      g.classList.toggle('nbflow-match', hit);
      g.classList.toggle('nbflow-dim', active && !hit);
    }
    for (const [folder, g] of this.clusterNodes) {
      const members = this.laid?.nodes.find(n => n.folder === folder)?.members ?? [];
      const hits = active ? members.filter(matches).length : 0;
      count += hits;
      g.classList.toggle('nbflow-match', hits > 0);
      g.classList.toggle('nbflow-dim', active && hits === 0);
      g.setAttribute('data-matches', String(hits));
    }
    this.node.setAttribute('data-matches', active ? String(count) : '');
  }

  /** Enter in the search box: expand the first match's folder and centre on it. */
  private revealFirstMatch(): void {
    const q = this.search.value.trim().toLowerCase();
    const t = this.tasks.find(x => q && x.name.toLowerCase().includes(q));
    if (!t) {
      return;
    }
    if (this.collapsed.has(folderOf(t.name))) {
      this.collapsed.delete(folderOf(t.name));
      this.draw(false);
    }
    const n = this.laid?.nodes.find(x => x.task === t.name);
    if (n) {
      this.viewport.centreOn(n.x, n.y, Math.max(this.viewport.k, 1));
    }
  }

  private draw(fit: boolean): void {
    const canvas = { width: this.canvas.clientWidth || 800, height: this.canvas.clientHeight || 500 };
    const laid = computeLayout(this.tasks, this.edges, this.collapsed, this.rankdir, canvas);
    this.laid = laid;
    const { svg, layer, content, clusterLayer, edgeLayer } = drawFrame(laid, this.markerId, this.contentId, folder => {
      if (!this.viewport.dragged) {
        this.toggleCluster(folder);
      }
    });
    const nodeLayer = el('g', { class: 'nbflow-nodes' });
    this.nodes.clear();
    this.clusterNodes.clear();
    for (const n of laid.nodes) {
      const g = el('g', { class: 'nbflow-node', transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})` });
      g.setAttribute('role', 'button');
      g.setAttribute('tabindex', '0');
      g.appendChild(el('title', {}));
      g.appendChild(el('rect', { width: n.width, height: n.height, rx: 6, ry: 6 }));
      g.appendChild(el('rect', { class: 'nbflow-progress', x: 0, y: n.height - 4, width: 0, height: 4, rx: 2 }));
      const label = el('text', { x: n.width / 2, y: n.height / 2, 'dominant-baseline': 'central', 'text-anchor': 'middle' });
      label.textContent = n.label;
      g.appendChild(label);
      const activate = () => {
        if (this.viewport.dragged) {
          return;
        }
        if (n.kind === 'cluster') {
          this.toggleCluster(n.folder as string);
        } else {
          this.onSelect(n.task as string);
        }
      };
      g.addEventListener('click', activate);
      g.addEventListener('keydown', ev => (ev.key === 'Enter' || ev.key === ' ') && activate());
      if (n.kind === 'cluster') {
        g.classList.add('nbflow-cluster');
        g.setAttribute('data-folder', n.folder as string);
        g.setAttribute('data-state', 'pending');
        this.clusterNodes.set(n.folder as string, g);
      } else {
        g.setAttribute('data-task', n.task as string);
        g.setAttribute('data-state', 'pending');
        this.nodes.set(n.task as string, g);
      }
      nodeLayer.appendChild(g);
    }
    content.append(clusterLayer, edgeLayer, nodeLayer);
    if (this.svg) {
      this.canvas.replaceChild(svg, this.svg);
    } else {
      this.canvas.prepend(svg);
    }
    this.svg = svg;
    this.layer = layer;
    this.viewport.setBounds(laid.bounds);
    if (fit) {
      this.viewport.fit();
    } else {
      this.viewport.set(this.viewport.k, this.viewport.tx, this.viewport.ty);
    }
    this.viewport.showMinimap(this.tasks.length > MINIMAP_AFTER ? this.contentId : null);
    this.clusterButton.hidden = clusterFolders(this.tasks).size === 0;
    this.clusterButton.textContent = this.collapsed.size ? 'Expand all' : 'Collapse all';
    this.flipButton.textContent = laid.rankdir === 'LR' ? '⇄ LR' : '⇅ TB';
    this.setStates(this.tasks);
    this.select(this.selected && this.nodes.has(this.selected) ? this.selected : null);
    this.lastLayoutMs = laid.ms;
    this.node.setAttribute('data-layout-ms', laid.ms.toFixed(1));
    this.onDrawn?.(svg);
  }
}

function h(tag: string, cls: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = cls;
  return e;
}
