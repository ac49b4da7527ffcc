/**
 * Small DOM helpers shared by the panel's parts: element and button builders, time formats, state badges.
 */
import { STATE_LABELS } from './graph';

/** An element with attributes (`class` sets className) and children (null ones are skipped). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string | null>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      node.className = v;
    } else {
      node.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c !== null) {
      node.append(c);
    }
  }
  return node;
}

/** A JupyterLab-styled button calling `onClick`. */
export function button(label: string, cls: string, onClick: () => void): HTMLButtonElement {
  const b = h('button', { class: `jp-Button nbflow-button ${cls}`, type: 'button' }, label);
  b.addEventListener('click', onClick);
  return b;
}

export function formatTime(t: number | null | undefined): string {
  return t ? new Date(t * 1000).toLocaleString() : '-';
}

export function formatDuration(d: number | null | undefined): string {
  if (d === null || d === undefined) {
    return '-';
  }
  if (d < 60) {
    return `${d.toFixed(1)} s`;
  }
  const m = Math.floor(d / 60);
  return `${m} min ${Math.round(d - m * 60)} s`;
}

/** A task's or run's state as a coloured badge (colours in style/base.css, by `data-state`). */
export function stateBadge(state: string): HTMLSpanElement {
  return h('span', { class: 'nbflow-badge', 'data-state': state }, STATE_LABELS[state] ?? state);
}


/** A size in bytes as people read it: 812 B, 14.2 KB, 3.1 MB. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '-';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Elapsed time the way the progress line says it: "45 s", "2 m 13 s", "1 h 04 m". */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} m ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`;
}

/** A run id short enough for a column header: its last 6 characters (ids end in a random suffix). */
export function shortRun(id: string): string {
  return id.length > 8 ? `…${id.slice(-6)}` : id;
}

/** A link-looking button (keyboard and screen readers treat it as a button). */
export function linkButton(label: string, cls: string, onClick: () => void, title = ''): HTMLButtonElement {
  const b = h('button', { class: `nbflow-link ${cls}`, type: 'button', title }, label);
  b.addEventListener('click', ev => {
    ev.stopPropagation();
    onClick();
  });
  return b;
}

/** A small SVG line of values (oldest first); the last point is marked. */
export function sparkline(values: Array<number | null>, width = 160, height = 28, title = ''): SVGSVGElement {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'nbflow-sparkline');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const known = values.map((v, i) => [i, v] as [number, number | null]).filter(([, v]) => v !== null) as Array<[number, number]>;
  const t = document.createElementNS(NS, 'title');
  t.textContent = title;
  svg.appendChild(t);
  if (!known.length) {
    return svg;
  }
  const max = Math.max(...known.map(([, v]) => v)) || 1;
  const step = values.length > 1 ? (width - 6) / (values.length - 1) : 0;
  const pt = ([i, v]: [number, number]) => [3 + i * step, height - 3 - (v / max) * (height - 6)];
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', known.map(k => pt(k).map(n => n.toFixed(1)).join(',')).join(' '));
  const [lx, ly] = pt(known[known.length - 1]);
  const dot = document.createElementNS(NS, 'circle');
  dot.setAttribute('cx', lx.toFixed(1));
  dot.setAttribute('cy', ly.toFixed(1));
  dot.setAttribute('r', '2.5');
  svg.append(line, dot);
  return svg;
}
