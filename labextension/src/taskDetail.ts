/**
 * The detail pane beside the graph: the selected task's facts, error, buttons and attempts (with their logs).
 */
import { IAttempt, IPipeline, NbflowApi } from './api';
import { button, formatDuration, formatTime, h, stateBadge } from './dom';

const HINT = 'Click a task to see its status, attempts and error.';

/** What the detail pane asks of the panel. */
export interface ITaskDetailHandlers {
  /** Open a file (path relative to the server root) as a JupyterLab document. */
  openDocument: (path: string) => void;
  /** Show the lineage of this task. */
  showLineage: (task: string) => void;
}

export class TaskDetail {
  readonly node = h('div', { class: 'nbflow-detail' }, h('p', { class: 'nbflow-hint' }, HINT));
  private pipeline: IPipeline | null = null;
  private task: string | null = null;
  private key = '';

  constructor(
    private api: NbflowApi,
    private handlers: ITaskDetailHandlers
  ) {}

  /** Show this task, from the last pipeline given to `update`. */
  select(task: string): void {
    this.task = task;
    this.key = '';
    void this.render();
  }

  /** Take a newly loaded pipeline; the pane is redrawn only if its task changed. */
  update(pipeline: IPipeline): void {
    this.pipeline = pipeline;
    if (this.task) {
      void this.render();
    }
  }

  private async render(): Promise<void> {
    const t = this.pipeline?.tasks.find(x => x.name === this.task);
    if (!t) {
      this.node.replaceChildren(h('p', { class: 'nbflow-hint' }, HINT));
      return;
    }
    const run = this.pipeline?.run ?? null;
    const key = JSON.stringify([run?.id, t]);
    if (key === this.key) {
      return; // nothing changed for this task: keep the pane (and an open log) as it is
    }
    this.key = key;
    const rows: Array<[string, Node | string]> = [
      ['Status', stateBadge(t.state)],
      ['Notebook', t.notebook ?? t.path ?? '-'],
      ['Upstream', t.upstream.length ? t.upstream.join(', ') : '-'],
      ['Attempts', String(t.attempts ?? 0)],
      ['Started', formatTime(t.started)],
      ['Duration', formatDuration(t.duration)]
    ];
    if (t.reason) {
      rows.push(['Reason', t.reason]);
    }
    const dl = h('dl', { class: 'nbflow-facts' });
    for (const [k, v] of rows) {
      dl.append(h('dt', {}, k), h('dd', {}, v));
    }
    const { openDocument, showLineage } = this.handlers;
    const actions = h('div', { class: 'nbflow-actions' });
    const openExecuted = button('Open executed notebook', 'nbflow-open-executed', () => t.executed && openDocument(t.executed));
    openExecuted.disabled = !t.executed || t.executed_openable === false;
    const openSource = button('Open source notebook', 'nbflow-open-source', () => t.path && openDocument(t.path));
    openSource.disabled = !t.path;
    const lineage = button('Lineage', 'nbflow-open-lineage', () => showLineage(t.name));
    actions.append(openExecuted, openSource, lineage);
    const parts: Node[] = [h('h3', { class: 'nbflow-detail-title' }, t.name), dl];
    if (t.error) {
      parts.push(errorBlock(t.error.cell, t.error.message ?? [t.error.ename, t.error.evalue].filter(Boolean).join(': ')));
    }
    parts.push(actions);
    if (t.executed && t.executed_openable === false) {
      parts.push(
        h(
          'p',
          { class: 'nbflow-hint' },
          `The executed notebook ${t.executed} is in a hidden folder, which JupyterLab does not open. ` +
            'Start Jupyter with --ContentsManager.allow_hidden=True, or set artifacts to a visible folder in nbflow.toml.'
        )
      );
    }
    const attempts = h('div', { class: 'nbflow-attempts' });
    parts.push(attempts);
    this.node.replaceChildren(...parts);
    this.node.setAttribute('data-task', t.name);
    if (run && t.attempts) {
      try {
        const detail = await this.api.run(run.id);
        const task = detail.tasks.find(x => x.name === t.name);
        if (task && this.task === t.name) {
          attempts.replaceChildren(this.attemptsTable(run.id, t.name, task.attempts));
        }
      } catch (e) {
        attempts.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load attempts: ${(e as Error).message}`));
      }
    }
  }

  private attemptsTable(run: string, task: string, attempts: IAttempt[]): HTMLElement {
    const table = h('table', { class: 'nbflow-table nbflow-attempts-table' });
    table.append(h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Status'), h('th', {}, 'Duration'), h('th', {}, 'Error'), h('th', {}, ''))));
    const body = h('tbody');
    const logBox = h('pre', { class: 'nbflow-log' });
    logBox.hidden = true;
    for (const a of attempts) {
      const err = a.error ? (a.error_cell !== null && a.error_cell !== undefined ? `cell ${a.error_cell}: ${a.error}` : a.error) : '';
      const showLog = button('Log', 'nbflow-log-button', async () => {
        try {
          const log = await this.api.log(run, task, a.attempt);
          logBox.textContent = log.log || '(no output)';
        } catch (e) {
          logBox.textContent = `Cannot load the log: ${(e as Error).message}`;
        }
        logBox.hidden = false;
      });
      body.append(
        h('tr', { 'data-attempt': String(a.attempt) }, h('td', {}, String(a.attempt)), h('td', {}, stateBadge(a.status)),
          h('td', {}, formatDuration(a.duration)), h('td', { class: 'nbflow-attempt-error' }, err), h('td', {}, showLog))
      );
    }
    table.append(body);
    return h('div', {}, h('h4', {}, 'Attempts'), table, logBox);
  }
}

/** A task's error, with the cell it happened in (counted from 0) when known. */
function errorBlock(cell: number | null, message: string): HTMLElement {
  const where = cell === null || cell === undefined ? 'Error' : `Error in cell ${cell}`;
  const block = h('div', { class: 'nbflow-error' }, h('strong', { title: 'cell index, counted from 0' }, where + ': '), message);
  block.setAttribute('data-cell', cell === null || cell === undefined ? '' : String(cell));
  return block;
}
