/**
 * A lineage tree as a small graph: files (rounded) and the task attempts that made them (square), left to right from
 * inputs to the file asked about, laid out with dagre. A file opens on click.
 */
import { graphlib, layout } from '@dagrejs/dagre';

import { formatBytes, h } from './dom';
import { el } from './graphParts';
import { ILineageTree } from './types';


export function lineageGraph(root: ILineageTree, openFile: (path: string) => void): HTMLElement {
  const g = new graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 10, ranksep: 36, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  const labels = new Map<string, { text: string; kind: 'file' | 'task'; path?: string; sub?: string }>();
  const add = (id: string, text: string, kind: 'file' | 'task', path?: string, sub?: string) => {
    if (!labels.has(id)) {
      labels.set(id, { text, kind, path, sub });
      g.setNode(id, { width: Math.max(80, text.length * 7 + 20), height: sub ? 34 : 24 });
    }
  };
  const visit = (node: ILineageTree): string => {
    const id = node.version_id < 0 ? `root:${node.path}` : `v:${node.version_id}`;
    add(id, node.path, node.version_id < 0 ? 'task' : 'file', node.version_id < 0 ? undefined : node.path,
      node.version_id < 0 ? undefined : `${node.hash.slice(0, 8)} · ${formatBytes(node.size)}`);
    if (node.producer) {
      const pid = `a:${node.producer.attempt}`;
      add(pid, `${node.producer.task} #${node.producer.number}`, 'task');
      g.setEdge(pid, id);
      for (const input of node.inputs) {
        g.setEdge(visit(input), pid);
      }
    } else {
      for (const input of node.inputs) {
        g.setEdge(visit(input), id);
      }
    }
    return id;
  };
  visit(root);
  layout(g);
  const size = g.graph();
  const width = Math.ceil(size.width ?? 100);
  const height = Math.ceil(size.height ?? 60);
  const svg = el('svg', { class: 'nbflow-lineage-graph', width, height, viewBox: `0 0 ${width} ${height}` });
  for (const e of g.edges()) {
    const pts = g.edge(e).points ?? [];
    svg.append(el('path', { class: 'nbflow-edge', d: pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ') }));
  }
  for (const [id, info] of labels) {
    const n = g.node(id);
    const grp = el('g', { class: `nbflow-lineage-node nbflow-lg-${info.kind}`, transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})` });
    grp.append(el('rect', { width: n.width, height: n.height, rx: info.kind === 'file' ? 10 : 2 }));
    grp.append(el('text', { x: n.width / 2, y: info.sub ? 14 : n.height / 2 + 4, 'text-anchor': 'middle' }, info.text));
    if (info.sub) {
      grp.append(el('text', { x: n.width / 2, y: 28, 'text-anchor': 'middle', class: 'nbflow-lg-sub' }, info.sub));
    }
    if (info.path) {
      grp.addEventListener('click', () => openFile(info.path as string));
      grp.setAttribute('data-path', info.path);
    }
    svg.append(grp);
  }
  return h('div', { class: 'nbflow-lineage-graph-box' }, h('h4', {}, 'As a graph'), svg);
}
