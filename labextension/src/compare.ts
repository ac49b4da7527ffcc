/**
 * The Compare tab: two runs side by side (GET runs/compare, Project.diff): the parameters that differ, each task's
 * status and duration in both with why it ran, which inputs and outputs changed (hashes); for one task, a cell-by-cell
 * diff of the two executed notebooks (code and outputs). Reads the answer defensively: fields it does not know are
 * left out, and an older server without the route gets a message saying what is missing.
 */
import { ApiError, CompareResponse, NbflowApi } from './api';
import { formatDuration, h, linkButton, shortRun, stateBadge } from './dom';

export interface ICompareHandlers {
  showRun: (run: string) => void;
}

type Side = Record<string, any> | null | undefined;

function sideOf(t: Record<string, any>, key: 'a' | 'b'): Side {
  return t[key] ?? t[`${key === 'a' ? 'left' : 'right'}`] ?? null;
}

function hashCell(x: any): string {
  const v = typeof x === 'string' ? x : (x?.hash ?? '');
  return v ? `sha256:${String(v).slice(0, 10)}` : '—';
}

export class CompareView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-compare' });
  private pair: [string, string] | null = null;
  private whole: { key: string; data: CompareResponse } | null = null;

  constructor(
    private api: NbflowApi,
    private handlers: ICompareHandlers
  ) {
    this.node.append(h('p', { class: 'nbflow-hint' }, 'Tick two runs in History, then "Compare selected".'));
  }

  async show(a: string, b: string, task?: string): Promise<void> {
    this.pair = [a, b];
    this.node.replaceChildren(h('p', { class: 'nbflow-hint' }, 'Comparing…'));
    let data: CompareResponse;
    try {
      data = await this.api.compare(a, b, task);
    } catch (e) {
      const missing = e instanceof ApiError && e.status === 501;
      this.node.replaceChildren(h('p', { class: missing ? 'nbflow-hint nbflow-compare-missing' : 'nbflow-error' }, (e as Error).message));
      return;
    }
    this.node.setAttribute('data-a', a);
    this.node.setAttribute('data-b', b);
    // One task's cell diff comes with the whole comparison above it (asked for without `task`, kept from before).
    const whole = task ? (this.whole?.key === `${a} ${b}` ? this.whole.data : await this.api.compare(a, b).catch(() => data)) : data;
    this.whole = { key: `${a} ${b}`, data: whole };
    const parts: Array<Node | null> = [this.header(whole, a, b), this.parameters(whole), this.tasks(whole)];
    const entry = Array.isArray(data.tasks) ? data.tasks.find((t: any) => (t.task ?? t.name) === task) : null;
    const nb = entry?.notebook ?? data.notebook ?? null;
    if (task) {
      parts.push(nb ? this.cells(task, nb) : h('p', { class: 'nbflow-hint' }, `No executed notebook of ${task} in both runs to compare.`));
    }
    this.node.replaceChildren(...parts.filter((p): p is Node => p !== null));
  }

  private header(data: CompareResponse, a: string, b: string): HTMLElement {
    const run = (id: string, r: Side) =>
      h('span', { class: 'nbflow-compare-run' }, linkButton(shortRun(id), 'nbflow-run-link', () => this.handlers.showRun(id), id), ' ', r?.status ? stateBadge(r.status) : null);
    return h('h3', {}, 'Run ', run(a, data.a ?? data.run_a), ' vs run ', run(b, data.b ?? data.run_b));
  }

  private parameters(data: CompareResponse): HTMLElement {
    const raw = data.parameters ?? {};
    const rows: Array<[string, unknown, unknown]> = Array.isArray(raw)
      ? raw.map((p: any) => [p.name ?? p[0], p.a ?? p[1], p.b ?? p[2]])
      : Object.entries(raw).map(([k, v]: [string, any]) => [k, v?.a ?? v?.[0], v?.b ?? v?.[1]]);
    const shown = rows.filter(([k]) => k !== 'run_id');
    if (!shown.length) {
      return h('p', { class: 'nbflow-hint' }, 'Same parameters.');
    }
    const table = h('table', { class: 'nbflow-table nbflow-compare-params' }, h('thead', {}, h('tr', {}, h('th', {}, 'Parameter'), h('th', {}, 'A'), h('th', {}, 'B'))));
    const body = h('tbody');
    for (const [k, va, vb] of shown) {
      const shown = (v: unknown) => (v === undefined || v === null ? h('span', { class: 'nbflow-hint' }, 'not set') : JSON.stringify(v));
      body.append(h('tr', { 'data-param': k }, h('td', {}, k), h('td', { class: 'nbflow-mono' }, shown(va)), h('td', { class: 'nbflow-mono' }, shown(vb))));
    }
    table.append(body);
    return h('div', {}, h('h4', {}, 'Parameters that differ'), table);
  }

  private tasks(data: CompareResponse): HTMLElement | null {
    const list: any[] = Array.isArray(data.tasks) ? data.tasks : Object.entries(data.tasks ?? {}).map(([task, v]: [string, any]) => ({ task, ...v }));
    if (!list.length) {
      return null;
    }
    const table = h('table', { class: 'nbflow-table nbflow-compare-tasks' });
    table.append(h('thead', {}, h('tr', {}, ...['Task', 'A', 'B', 'Why (A / B)', 'Inputs changed', 'Outputs changed', ''].map(c => h('th', {}, c)))));
    const body = h('tbody');
    for (const t of list) {
      const name = t.task ?? t.name;
      const [sa, sb] = [sideOf(t, 'a'), sideOf(t, 'b')];
      const cell = (s: Side) =>
        h('td', {}, s?.status ? stateBadge(s.status) : '—', ` ${formatDuration(s?.duration ?? null)}`, s && s.ran === false ? h('div', { class: 'nbflow-hint' }, 'did not run') : null);
      const changed = (items: any[] | undefined) =>
        h('td', { class: 'nbflow-compare-files' }, ...(items ?? []).map(f => h('div', { title: `${hashCell(f.a)} → ${hashCell(f.b)}` }, h('code', {}, f.path ?? String(f)))));
      const diff = linkButton('cells', 'nbflow-compare-cells', () => this.pair && void this.show(this.pair[0], this.pair[1], name), 'Cell-by-cell diff of the two executed notebooks');
      body.append(
        h('tr', { 'data-task': name }, h('td', {}, name), cell(sa), cell(sb), h('td', { class: 'nbflow-hint' }, `${sa?.reason ?? '—'} / ${sb?.reason ?? '—'}`),
          changed(t.inputs ?? t.reads), changed(t.outputs ?? t.writes), h('td', {}, diff))
      );
    }
    table.append(body);
    return h('div', {}, h('h4', {}, 'Tasks'), table);
  }

  /** Project.diff's notebook comparison: changed cells (added, removed, modified) with source and output diffs. */
  private cells(task: string, nb: any): HTMLElement {
    const cells: any[] = Array.isArray(nb) ? nb : (nb.cells ?? []);
    const box = h('div', { class: 'nbflow-compare-notebook', 'data-task': task }, h('h4', {}, `${task}: cell by cell`));
    if (!cells.length) {
      box.append(h('p', { class: 'nbflow-hint' }, 'The two executed notebooks have the same code and outputs.'));
    } else if (nb.unchanged) {
      box.append(h('p', { class: 'nbflow-hint' }, `${nb.unchanged} cells unchanged.`));
    }
    for (const c of cells) {
      const status = c.change ?? c.status ?? 'modified';
      const where = c.a || c.b ? `${c.a ?? '—'} → ${c.b ?? '—'}` : `cell ${c.index ?? '?'}`;
      const item = h('div', { class: 'nbflow-diff-cell', 'data-status': status }, h('div', { class: 'nbflow-hint' }, `${where}: ${status}`));
      for (const key of ['source', 'outputs', 'source_diff', 'outputs_diff']) {
        if (typeof c[key] === 'string' && c[key]) {
          item.append(diffBlock(c[key]));
        }
      }
      for (const r of c.rich ?? []) {
        item.append(h('div', { class: 'nbflow-hint' }, `${r.mime} changed: ${hashCell(r.a)} → ${hashCell(r.b)}`));
      }
      box.append(item);
    }
    return box;
  }
}

/** A unified diff with added and removed lines marked. */
function diffBlock(text: string): HTMLElement {
  const pre = h('pre', { class: 'nbflow-diff' });
  for (const line of text.split('\n')) {
    const kind = line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : '';
    pre.append(h('span', { class: 'nbflow-diff-line', 'data-kind': kind }, line + '\n'));
  }
  return pre;
}
