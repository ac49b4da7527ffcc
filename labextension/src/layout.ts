/**
 * The graph's layout: tasks grouped by folder into clusters (collapsed ones become one node), the direction chosen
 * from the graph's shape, dagre for positions, and the bounds of everything drawn (nodes, cluster boxes, every edge
 * point) so the view never clips an edge routed outside the nodes.
 */
import { graphlib, layout } from '@dagrejs/dagre';

import { IEdge, ITask } from './types';

export const NODE_HEIGHT = 30;
const CHAR_WIDTH = 7.2;
const BIG_GRAPH = 100; // visible nodes; above this, dagre's faster ranking
const COMPOUND_MAX = 150; // visible nodes; above this, expanded folders get no box (dagre's compound layout is slow)
export const MARGIN = 24;

export type RankDir = 'LR' | 'TB';

export interface ILaidNode {
  id: string;
  kind: 'task' | 'cluster';
  label: string;
  x: number; // centre
  y: number;
  width: number;
  height: number;
  /** The task (kind task) or the folder (kind cluster). */
  task?: string;
  folder?: string;
  members?: string[];
}

export interface ILaidEdge {
  source: string;
  target: string;
  points: Array<{ x: number; y: number }>;
  via: string[];
}

export interface IBounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ILayout {
  nodes: ILaidNode[];
  edges: ILaidEdge[];
  clusters: Array<IBounds & { folder: string }>;
  bounds: IBounds;
  rankdir: RankDir;
  ms: number;
}

/** A task's folder ('' at the top): `amer/clean` is in `amer`. */
export function folderOf(task: string): string {
  const i = task.lastIndexOf('/');
  return i < 0 ? '' : task.slice(0, i);
}

/** Folders with at least two tasks: each can be a cluster. */
export function clusterFolders(tasks: ITask[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const t of tasks) {
    const f = folderOf(t.name);
    if (f) {
      found.set(f, [...(found.get(f) ?? []), t.name]);
    }
  }
  for (const [f, members] of found) {
    if (members.length < 2) {
      found.delete(f);
    }
  }
  return found;
}

/** The id of the node a task is drawn in: itself, or its collapsed cluster. */
function visibleId(task: string, collapsed: Set<string>, clusters: Map<string, string[]>): string {
  const f = folderOf(task);
  return f && clusters.has(f) && collapsed.has(f) ? `cluster:${f}` : task;
}

/** The direction whose fitted drawing is larger on this canvas: LR for long chains on wide screens, TB for wide fans. */
export function chooseRankDir(nodes: string[], edges: Array<[string, string]>, canvas: { width: number; height: number }): RankDir {
  const depth = new Map<string, number>(nodes.map(n => [n, 0]));
  const incoming = new Map<string, string[]>(nodes.map(n => [n, []]));
  for (const [s, t] of edges) {
    incoming.get(t)?.push(s);
  }
  const seen = new Set<string>();
  const visit = (n: string): number => {
    if (seen.has(n)) {
      return depth.get(n) ?? 0;
    }
    seen.add(n);
    const d = Math.max(-1, ...(incoming.get(n) ?? []).map(visit)) + 1;
    depth.set(n, d);
    return d;
  };
  nodes.forEach(visit);
  const perRank = new Map<number, number>();
  for (const d of depth.values()) {
    perRank.set(d, (perRank.get(d) ?? 0) + 1);
  }
  const ranks = Math.max(1, perRank.size);
  const breadth = Math.max(1, ...perRank.values());
  const w = 130; // a typical node width, with its gap
  const lr = Math.min(canvas.width / (ranks * (w + 48)), canvas.height / (breadth * (NODE_HEIGHT + 14)));
  const tb = Math.min(canvas.width / (breadth * (w + 14)), canvas.height / (ranks * (NODE_HEIGHT + 48)));
  return tb > lr * 1.15 ? 'TB' : 'LR';
}

/** Lay the graph out with these folders collapsed; `rankdir` null chooses it from the shape and the canvas. */
export function computeLayout(
  tasks: ITask[],
  edges: IEdge[],
  collapsed: Set<string>,
  rankdir: RankDir | null,
  canvas: { width: number; height: number }
): ILayout {
  const started = performance.now();
  const clusters = clusterFolders(tasks);
  const shown = new Set(tasks.map(t => visibleId(t.name, collapsed, clusters)));
  // Boxes around expanded folders need dagre's compound layout, ~4x slower: only for a moderate number of nodes.
  const compound = shown.size <= COMPOUND_MAX && [...clusters.keys()].some(f => !collapsed.has(f));
  const nodes = new Map<string, ILaidNode>();
  for (const t of tasks) {
    const id = visibleId(t.name, collapsed, clusters);
    const f = folderOf(t.name);
    if (id === t.name) {
      const label = compound && f && clusters.has(f) ? t.name.slice(f.length + 1) : t.name;
      nodes.set(id, { id, kind: 'task', label, task: t.name, x: 0, y: 0, width: labelWidth(label), height: NODE_HEIGHT });
    } else if (!nodes.has(id)) {
      const members = clusters.get(f) ?? [];
      const label = `${f}/ (${members.length})`;
      nodes.set(id, { id, kind: 'cluster', label, folder: f, members, x: 0, y: 0, width: labelWidth(label) + 16, height: NODE_HEIGHT + 8 });
    }
  }
  const links = new Map<string, ILaidEdge>();
  for (const e of edges) {
    const s = visibleId(e.source, collapsed, clusters);
    const t = visibleId(e.target, collapsed, clusters);
    if (s === t || !nodes.has(s) || !nodes.has(t)) {
      continue;
    }
    const key = `${s}\n${t}`;
    const via = Array.isArray(e.via) ? e.via : [e.via];
    const found = links.get(key);
    if (found) {
      found.via.push(...via.map(v => `${e.source} → ${e.target}: ${v}`));
    } else {
      const shown = s.startsWith('cluster:') || t.startsWith('cluster:') ? via.map(v => `${e.source} → ${e.target}: ${v}`) : [...via];
      links.set(key, { source: s, target: t, points: [], via: shown });
    }
  }
  const dir = rankdir ?? chooseRankDir([...nodes.keys()], [...links.values()].map(l => [l.source, l.target]), canvas);
  const g = new graphlib.Graph({ compound });
  const ranker = nodes.size > BIG_GRAPH ? 'tight-tree' : 'network-simplex';
  g.setGraph({ rankdir: dir, nodesep: 14, ranksep: 48, marginx: 0, marginy: 0, ranker });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes.values()) {
    g.setNode(n.id, { width: n.width, height: n.height });
  }
  if (compound) {
    for (const [f, members] of clusters) {
      if (!collapsed.has(f)) {
        g.setNode(`group:${f}`, { label: f, paddingTop: 22, paddingLeft: 8, paddingRight: 8, paddingBottom: 8 } as any);
        for (const m of members) {
          g.setParent(m, `group:${f}`);
        }
      }
    }
  }
  for (const l of links.values()) {
    g.setEdge(l.source, l.target);
  }
  layout(g);
  for (const n of nodes.values()) {
    const p = g.node(n.id);
    n.x = p.x;
    n.y = p.y;
  }
  const boxes: Array<IBounds & { folder: string }> = [];
  if (compound) {
    for (const f of clusters.keys()) {
      if (!collapsed.has(f)) {
        const p = g.node(`group:${f}`);
        if (p && p.width) {
          boxes.push({ folder: f, x: p.x - p.width / 2, y: p.y - p.height / 2 - 14, width: p.width, height: p.height + 14 });
        }
      }
    }
  }
  for (const l of links.values()) {
    l.points = (g.edge(l.source, l.target)?.points ?? []).map(p => ({ x: p.x, y: p.y }));
  }
  const laid = [...nodes.values()];
  return { nodes: laid, edges: [...links.values()], clusters: boxes, bounds: boundsOf(laid, [...links.values()], boxes), rankdir: dir, ms: performance.now() - started };
}

function labelWidth(label: string): number {
  return Math.max(64, label.length * CHAR_WIDTH + 22);
}

/** The box around every node, cluster box and edge point, with a margin. */
export function boundsOf(nodes: ILaidNode[], edges: ILaidEdge[], boxes: IBounds[]): IBounds {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const take = (x0: number, y0: number, x1: number, y1: number) => {
    minX = Math.min(minX, x0);
    minY = Math.min(minY, y0);
    maxX = Math.max(maxX, x1);
    maxY = Math.max(maxY, y1);
  };
  for (const n of nodes) {
    take(n.x - n.width / 2, n.y - n.height / 2, n.x + n.width / 2, n.y + n.height / 2);
  }
  for (const b of boxes) {
    take(b.x, b.y, b.x + b.width, b.y + b.height);
  }
  for (const e of edges) {
    for (const p of e.points) {
      take(p.x, p.y, p.x, p.y);
    }
  }
  if (minX === Infinity) {
    return { x: 0, y: 0, width: 100, height: 60 };
  }
  return { x: minX - MARGIN, y: minY - MARGIN, width: maxX - minX + 2 * MARGIN, height: maxY - minY + 2 * MARGIN };
}
