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

