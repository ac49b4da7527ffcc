/**
 * The graph's vocabulary and static SVG parts: state words (one vocabulary with the widget and the CLI), the worst
 * state of a cluster, edge reasons in words, and the frame of a drawing (svg, arrow marker, cluster boxes, edges).
 */
import { ILayout } from './layout';
import { IEdge, ITask } from './types';

const SVG = 'http://www.w3.org/2000/svg';

export const STATE_LABELS: Record<string, string> = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  check_failed: 'check failed',
  upstream_failed: 'upstream failed',
  skipped: 'up to date',
  cancelled: 'cancelled',
  blocked: 'blocked'
};

/** Worst first: a collapsed cluster shows the first of these found among its tasks. */
const SEVERITY = ['failed', 'crashed', 'check_failed', 'blocked', 'upstream_failed', 'cancelled', 'running', 'queued', 'pending', 'succeeded', 'skipped'];

export function worstState(states: string[]): string {
  for (const s of SEVERITY) {
    if (states.includes(s)) {
      return s;
    }
  }
  return 'pending';
}

/** An SVG element with attributes and, optionally, its text (the graph, the timeline and the lineage graph draw with it). */
export function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A key that changes only when the graph's shape changes (tasks or edges), not their states. */
export function structureKey(tasks: ITask[], edges: IEdge[]): string {
  const names = tasks.map(t => t.name).sort();
  const links = edges.map(e => `${e.source}>${e.target}`).sort();
  return names.join('\n') + '\n--\n' + links.join('\n');
}

/** An edge's reason in words: `upstream tag` -> "upstream: tag", `path data/x.csv` -> "reads data/x.csv". */
export function edgeReason(via: string): string {
  if (via === 'upstream tag') {
    return 'upstream: tag';
  }
  return via.startsWith('path ') ? `via file ${via.slice(5)} (writes: → reads:)` : via;
}

/** The parts of a drawing that never change with task states: the svg and its viewport group, the arrow marker,
 * the boxes of expanded folders (their label collapses them) and the edges with their reasons on hover. */
export function drawFrame(laid: ILayout, markerId: string, contentId: string, onToggle: (folder: string) => void) {
  const svg = el('svg', { class: 'nbflow-svg', width: '100%', height: '100%' });
  svg.setAttribute('data-rankdir', laid.rankdir);
  const b = laid.bounds;
  svg.setAttribute('data-bounds', `${b.x.toFixed(1)} ${b.y.toFixed(1)} ${b.width.toFixed(1)} ${b.height.toFixed(1)}`);
  const defs = el('defs', {});
  const marker = el('marker', { id: markerId, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.appendChild(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'nbflow-arrow' }));
  defs.appendChild(marker);
  const layer = el('g', { class: 'nbflow-viewport' });
  const content = el('g', { id: contentId });
  layer.appendChild(content);
  svg.append(defs, layer);

  const clusterLayer = el('g', { class: 'nbflow-cluster-boxes' });
  for (const c of laid.clusters) {
    const g = el('g', { class: 'nbflow-cluster-box', 'data-folder': c.folder });
    g.append(el('rect', { x: c.x, y: c.y, width: c.width, height: c.height, rx: 8 }));
    const label = el('text', { x: c.x + 8, y: c.y + 15 });
    label.textContent = `${c.folder}/ ▾`;
    const title = el('title', {});
    title.textContent = `${c.folder}/: click to collapse`;
    label.appendChild(title);
    label.addEventListener('click', () => onToggle(c.folder));
    g.append(label);
    clusterLayer.appendChild(g);
  }
  const edgeLayer = el('g', { class: 'nbflow-edges' });
  for (const e of laid.edges) {
    const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    const g = el('g', { class: 'nbflow-edge-group' });
    g.setAttribute('data-source', e.source);
    g.setAttribute('data-target', e.target);
    const title = el('title', {});
    title.textContent = `${e.source} → ${e.target}\n${e.via.map(edgeReason).join('\n')}`;
    g.append(title, el('path', { d, class: 'nbflow-edge-hit' }), el('path', { d, class: 'nbflow-edge', 'marker-end': `url(#${markerId})` }));
    (g.lastChild as SVGPathElement).setAttribute('data-source', e.source);
    (g.lastChild as SVGPathElement).setAttribute('data-target', e.target);
    edgeLayer.appendChild(g);
  }
  return { svg, layer, content, clusterLayer, edgeLayer };
}
