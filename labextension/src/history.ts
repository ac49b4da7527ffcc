/**
 * The History tab: the project's runs, newest first, a page at a time; clicking one shows it on the graph.
 */
import { IRunSummary, NbflowApi } from './api';
import { button, formatDuration, formatTime, h, stateBadge } from './dom';

const HISTORY_PAGE = 10;

/** What the history view asks of the panel. */
export interface IRunHistoryHandlers {
  /** The run the graph shows now (its row is marked), if any. */
  shownRun: () => string | undefined;
  /** Show this run on the graph. */
  showRun: (run: string) => void;
}

export class RunHistory {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-history' });
  private offset = 0;

  constructor(
    private api: NbflowApi,
    private handlers: IRunHistoryHandlers
  ) {}

  /** Refetch the current page and redraw it. */
  async render(): Promise<void> {
    let data: { runs: IRunSummary[]; total: number };
    try {
      data = await this.api.runs(HISTORY_PAGE, this.offset);
    } catch (e) {
      this.node.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load the run history: ${(e as Error).message}`));
      return;
    }
    const shown = this.handlers.shownRun();
    const table = h('table', { class: 'nbflow-table nbflow-history-table' });
    table.append(
      h('thead', {}, h('tr', {}, ...['Run', 'Status', 'Trigger', 'Started', 'Duration'].map(c => h('th', {}, c))))
    );
    const body = h('tbody');
    for (const r of data.runs) {
      const row = h(
        'tr',
        { class: 'nbflow-run-row', 'data-run-id': r.id, 'data-status': r.status, title: 'Show this run on the graph' },
        h('td', { class: 'nbflow-mono' }, r.id),
        h('td', {}, stateBadge(r.status)),
        h('td', {}, r.trigger ?? '-'),
        h('td', {}, formatTime(r.started)),
        h('td', {}, formatDuration(r.duration))
      );
      row.classList.toggle('nbflow-mod-current', r.id === shown);
      row.addEventListener('click', () => this.handlers.showRun(r.id));
      body.append(row);
    }
    table.append(body);
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
    const pager = h('div', { class: 'nbflow-pager' }, newer, h('span', {}, ` ${first}–${last} of ${data.total} `), older);
    this.node.replaceChildren(data.runs.length ? table : h('p', { class: 'nbflow-hint' }, 'No runs yet.'), pager);
    this.node.setAttribute('data-total', String(data.total));
  }
}
