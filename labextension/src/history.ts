/**
 * The History tab: runs as columns (newest left), tasks as rows, a coloured cell per task state (the Airflow grid);
 * above each column the run's status, trigger, start and the parameters that differ from the run before. Filters by
 * status and trigger; runs where nothing ran are hidden unless asked for; queued runs come first. Tick two runs to
 * compare them; click a column to show that run on the graph.
 */
import { IHistory, IRunSummary, NbflowApi } from './api';
import { button, formatDuration, formatTime, h, shortRun, stateBadge } from './dom';
import { STATE_LABELS } from './graph';

const HISTORY_PAGE = 12;
const HIDDEN_PARAMS = new Set(['run_id']);
const TRIGGERS: Array<[string, string]> = [
  ['', 'any trigger'],
  ['manual', 'manual (CLI)'],
  ['jupyter', 'the panel'],
  ['schedule:', 'a schedule'],
  ['sensor:', 'a sensor'],
  ['backfill', 'backfill']
];
const STATUSES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'crashed'];

/** What the history view asks of the panel. */
export interface IRunHistoryHandlers {
  shownRun: () => string | undefined;
  showRun: (run: string) => void;
  /** Tasks in pipeline order (the grid's rows). */
  taskNames: () => string[];
  compare: (a: string, b: string) => void;
  cancelQueued: (run: string) => void;
}

/** The parameters of `run` that differ from `previous` (all of them for the oldest shown). */
export function changedParameters(run: IRunSummary, previous: IRunSummary | undefined): Array<[string, unknown]> {
  return Object.entries(run.parameters ?? {}).filter(
    ([k, v]) => !HIDDEN_PARAMS.has(k) && (!previous || JSON.stringify(previous.parameters?.[k]) !== JSON.stringify(v))
  );
}

export class RunHistory {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-history' });
  private offset = 0;
  private status = '';
  private trigger = '';
  private showAll = false;
  private picked: string[] = [];
  private filters: HTMLElement;
  private body = h('div', { class: 'nbflow-history-body' });

  constructor(
    private api: NbflowApi,
    private handlers: IRunHistoryHandlers
  ) {
    const status = h('select', { class: 'nbflow-filter-status', title: 'Status' });
    status.append(...STATUSES.map(s => new Option(s ? (STATE_LABELS[s] ?? s) : 'any status', s)));
    status.addEventListener('change', () => this.refilter(() => (this.status = status.value)));
    const trigger = h('select', { class: 'nbflow-filter-trigger', title: 'Trigger' });
    trigger.append(...TRIGGERS.map(([v, l]) => new Option(l, v)));
    trigger.addEventListener('change', () => this.refilter(() => (this.trigger = trigger.value)));
    const all = h('input', { type: 'checkbox', class: 'nbflow-filter-all' });
    all.addEventListener('change', () => this.refilter(() => (this.showAll = all.checked)));
    const compare = button('Compare selected', 'nbflow-compare-button', () => {
      if (this.picked.length === 2) {
        this.handlers.compare(this.picked[1], this.picked[0]);
      }
    });
    compare.title = 'Tick two runs, then compare them side by side';
    this.filters = h(
      'div',
      { class: 'nbflow-history-filters' },
      status,
      trigger,
      h('label', { title: 'Runs where every task was up to date are hidden by default' }, all, ' show runs where nothing ran'),
      h('span', { class: 'nbflow-spacer' }),
      compare
    );
    this.node.append(this.filters, this.body);
  }

  private refilter(change: () => void): void {
    change();
    this.offset = 0;
    void this.render();
  }

  /** Refetch the current page and redraw it. */
  async render(): Promise<void> {
    let data: IHistory;
    try {
      data = await this.api.runs({
        limit: HISTORY_PAGE,
        offset: this.offset,
        status: this.status ? [this.status] : [],
        trigger: this.trigger,
        ranOnly: !this.showAll,
        all: this.showAll
      });
    } catch (e) {
      this.body.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load the run history: ${(e as Error).message}`));
      return;
    }
    const runs = [...(data.queued ?? []), ...data.runs];
    (this.filters.querySelector('.nbflow-compare-button') as HTMLButtonElement).disabled = this.picked.length !== 2;
    const tasks = this.handlers.taskNames();
    const grid = h('table', { class: 'nbflow-table nbflow-grid' });
    const head = h('tr', {}, h('th', { class: 'nbflow-grid-corner' }, 'Task \\ run'));
    for (let i = 0; i < runs.length; i++) {
      head.append(this.columnHead(runs[i], runs.slice(i + 1).find(r => r.status !== 'queued')));
    }
    const body = h('tbody');
    for (const task of tasks) {
      const row = h('tr', { 'data-task': task }, h('th', { class: 'nbflow-grid-task', title: task }, task));
      for (const r of runs) {
        const state = r.status === 'queued' ? 'queued' : (r.tasks?.[task] ?? '');
        const d = r.durations?.[task];
        const cell = h('td', { class: 'nbflow-grid-cell', 'data-state': state, 'data-run-id': r.id },
          h('span', { class: 'nbflow-sr' }, state));
        cell.title = state ? `${task} in ${r.id}: ${STATE_LABELS[state] ?? state}${d ? `, ${formatDuration(d)}` : ''}` : `${task} was not in run ${r.id}`;
        cell.addEventListener('click', () => r.status !== 'queued' && this.handlers.showRun(r.id));
        row.append(cell);
      }
      body.append(row);
    }
    grid.append(h('thead', {}, head), body);
    const first = data.total ? this.offset + 1 : 0;
    const last = this.offset + data.runs.length;
    const newer = button('Newer', 'nbflow-page-newer', () => {
      this.offset = Math.max(0, this.offset - HISTORY_PAGE);
      void this.render();
    });
    newer.disabled = this.offset === 0;
    const older = button('Older', 'nbflow-page-older', () => {
      this.offset += HISTORY_PAGE;
      void this.render();
    });
    older.disabled = last >= data.total;
    const hiddenNote = this.showAll ? '' : ' (runs where nothing ran are hidden)';
    const pager = h('div', { class: 'nbflow-pager' }, newer, h('span', {}, ` ${first}–${last} of ${data.total}${hiddenNote} `), older);
    this.body.replaceChildren(runs.length ? h('div', { class: 'nbflow-grid-scroll' }, grid) : h('p', { class: 'nbflow-hint' }, 'No runs match.'), pager);
    this.node.setAttribute('data-total', String(data.total));
  }

  private columnHead(r: IRunSummary, previous: IRunSummary | undefined): HTMLElement {
    const shown = this.handlers.shownRun();
    const pick = h('input', { type: 'checkbox', class: 'nbflow-pick-run', title: 'Select for comparison' });
    pick.checked = this.picked.includes(r.id);
    pick.disabled = r.status === 'queued';
    pick.addEventListener('click', ev => ev.stopPropagation());
    pick.addEventListener('change', () => {
      this.picked = pick.checked ? [...this.picked.filter(x => x !== r.id), r.id].slice(-2) : this.picked.filter(x => x !== r.id);
      void this.render();
    });
    const changed = changedParameters(r, previous);
    const params = h('div', { class: 'nbflow-run-params', title: JSON.stringify(r.parameters, null, 1) });
    for (const [k, v] of changed.slice(0, 4)) {
      params.append(h('div', {}, h('span', { class: 'nbflow-hint' }, `${k}=`), JSON.stringify(v)));
    }
    if (changed.length > 4) {
      params.append(h('div', { class: 'nbflow-hint' }, `+${changed.length - 4} more`));
    }
    const th = h(
      'th',
      { class: 'nbflow-run-row nbflow-run-col', 'data-run-id': r.id, 'data-status': r.status, title: `${r.id}\nShow this run on the graph` },
      h('div', {}, pick, ' ', h('span', { class: 'nbflow-mono' }, shortRun(r.id))),
      h('div', {}, stateBadge(r.status)),
      h('div', { class: 'nbflow-hint' }, r.status === 'queued' ? `queued ${formatTime(r.queued_at)}` : `${r.trigger} · ${formatTime(r.started)}`),
      h('div', { class: 'nbflow-hint' }, r.status === 'queued' ? '' : formatDuration(r.duration)),
      params
    );
    if (r.status === 'queued') {
      th.append(button('Unqueue', 'nbflow-unqueue', () => this.handlers.cancelQueued(r.id)));
    } else {
      th.addEventListener('click', () => this.handlers.showRun(r.id));
    }
    th.classList.toggle('nbflow-mod-current', r.id === shown);
    return th;
  }
}
