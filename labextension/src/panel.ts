/**
 * The nbflow panel: toolbar (run, cancel, which run is shown), graph with a detail pane,
 * run history and lineage. It follows the store live by long-polling the `changes` route.
 */
import { Widget } from '@lumino/widgets';

import { ApiError, IAttempt, IPipeline, IRunSummary, ITask, NbflowApi } from './api';
import { GraphView, STATE_LABELS } from './graph';

const HISTORY_PAGE = 10;
const POLL_TIMEOUT_S = 20;

type Tab = 'graph' | 'history' | 'lineage';

export interface IPanelOptions {
  project: string;
  /** Open a file (path relative to the server root) as a normal JupyterLab document. */
  openDocument: (path: string) => void;
}

function h<K extends keyof HTMLElementTagNameMap>(
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

function button(label: string, cls: string, onClick: () => void): HTMLButtonElement {
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

function stateBadge(state: string): HTMLSpanElement {
  return h('span', { class: 'nbflow-badge', 'data-state': state }, STATE_LABELS[state] ?? state);
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

export class NbflowPanel extends Widget {
  readonly api: NbflowApi;
  private openDocument: (path: string) => void;
  private pipeline: IPipeline | null = null;
  private selectedRun: string | null = null; // null: follow the latest run
  private selectedTask: string | null = null;
  private eventId = 0;
  private historyOffset = 0;
  private tab: Tab = 'graph';
  private abort = new AbortController();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private detailKey = '';

  private graph: GraphView;
  private runLabel = h('span', { class: 'nbflow-run-label' });
  private message = h('div', { class: 'nbflow-message', role: 'alert' });
  private form = h('form', { class: 'nbflow-run-form' });
  private detail = h('div', { class: 'nbflow-detail' });
  private history = h('div', { class: 'nbflow-view nbflow-view-history' });
  private lineage = h('div', { class: 'nbflow-view nbflow-view-lineage' });
  private graphView = h('div', { class: 'nbflow-view nbflow-view-graph' });
  private cancelButton: HTMLButtonElement;
  private latestButton: HTMLButtonElement;
  private tabButtons = new Map<Tab, HTMLButtonElement>();

  constructor(options: IPanelOptions) {
    super();
    this.api = new NbflowApi(options.project);
    this.openDocument = options.openDocument;
    this.addClass('nbflow-panel');
    this.node.setAttribute('data-project', options.project);
    this.graph = new GraphView(task => this.selectTask(task));

    this.cancelButton = button('Cancel run', 'nbflow-cancel-button', () => void this.cancelRun());
    this.latestButton = button('Show latest run', 'nbflow-latest-button', () => this.showRun(null));
    const tabs = h('span', { class: 'nbflow-tabs', role: 'tablist' });
    for (const [tab, label] of [
      ['graph', 'Graph'],
      ['history', 'History'],
      ['lineage', 'Lineage']
    ] as Array<[Tab, string]>) {
      const b = button(label, 'nbflow-tab', () => this.setTab(tab));
      b.setAttribute('data-tab', tab);
      b.setAttribute('role', 'tab');
      tabs.append(b);
      this.tabButtons.set(tab, b);
    }
    const toolbar = h(
      'div',
      { class: 'nbflow-toolbar' },
      button('Run…', 'nbflow-run-button jp-mod-accept', () => this.toggleForm()),
      this.cancelButton,
      this.runLabel,
      this.latestButton,
      h('span', { class: 'nbflow-spacer' }),
      tabs
    );
    this.form.hidden = true;
    this.form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.startRun();
    });
    this.graphView.append(this.graph.node, this.detail);
    this.detail.append(h('p', { class: 'nbflow-hint' }, 'Click a task to see its status, attempts and error.'));
    this.node.append(
      toolbar,
      this.message,
      this.form,
      h('div', { class: 'nbflow-body' }, this.graphView, this.history, this.lineage),
      this.legend()
    );
    this.setTab('graph');
    void this.start();
  }

  dispose(): void {
    this.abort.abort();
    super.dispose();
  }

  /** Show one run's states on the graph (null: always the latest). */
  showRun(run: string | null): void {
    this.selectedRun = run;
    this.setTab('graph');
    void this.refresh();
  }

  private async start(): Promise<void> {
    await this.refresh();
    void this.pollLoop();
  }

  /** Long-poll `changes`; on any new store event refetch what is shown. */
  private async pollLoop(): Promise<void> {
    while (!this.isDisposed) {
      try {
        const r = await this.api.changes(this.eventId, POLL_TIMEOUT_S, this.abort.signal);
        if (this.isDisposed) {
          return;
        }
        if (r.changed) {
          this.eventId = Math.max(this.eventId, r.event_id);
          await this.refresh();
        } else {
          this.eventId = r.event_id;
        }
      } catch (e) {
        if (this.isDisposed) {
          return;
        }
        await sleep(2000);
      }
    }
  }

  /** Refetch the pipeline (and the history); calls made while one is running are merged into one more. */
  private refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.load();
      } while (this.refreshAgain && !this.isDisposed);
      this.refreshing = null;
    })();
    return this.refreshing;
  }

  private async load(): Promise<void> {
    try {
      const p = await this.api.pipeline(this.selectedRun);
      if (this.isDisposed) {
        return;
      }
      this.pipeline = p;
      this.eventId = Math.max(this.eventId, p.event_id);
      this.title.label = `nbflow: ${p.project && p.project !== '.' ? p.project : '/'}`;
      this.node.setAttribute('data-event-id', String(p.event_id));
      this.graph.show(p.tasks, p.edges);
      this.showRunLabel(p.run);
      if (this.selectedTask) {
        void this.renderDetail();
      }
      const kind = this.message.getAttribute('data-kind');
      if (kind === 'load-error' || (kind === 'started' && p.run?.status !== 'running')) {
        this.setMessage('', '');
      }
    } catch (e) {
      this.setMessage(`Cannot load the pipeline: ${(e as Error).message}`, 'error', 'load-error');
    }
    if (this.tab === 'history') {
      await this.renderHistory();
    }
  }

  private showRunLabel(run: IRunSummary | null): void {
    this.runLabel.textContent = '';
    this.node.setAttribute('data-run-id', run?.id ?? '');
    this.node.setAttribute('data-run-status', run?.status ?? '');
    if (!run) {
      this.runLabel.append(this.selectedRun ? `Run ${this.selectedRun} not found` : 'No runs yet');
    } else {
      this.runLabel.append(
        `${this.selectedRun ? 'Showing run' : 'Latest run'} ${run.id} `,
        stateBadge(run.status),
        ` ${formatTime(run.started)} · ${formatDuration(run.duration)}`
      );
    }
    this.cancelButton.hidden = run?.status !== 'running';
    this.latestButton.hidden = this.selectedRun === null;
  }

  private setMessage(text: string, kind: '' | 'error' | 'info', tag = ''): void {
    this.message.textContent = text;
    this.message.setAttribute('data-level', kind);
    this.message.setAttribute('data-kind', tag);
    this.message.hidden = !text;
  }

  private setTab(tab: Tab): void {
    this.tab = tab;
    for (const [t, b] of this.tabButtons) {
      b.classList.toggle('nbflow-mod-active', t === tab);
      b.setAttribute('aria-selected', String(t === tab));
    }
    this.graphView.hidden = tab !== 'graph';
    this.history.hidden = tab !== 'history';
    this.lineage.hidden = tab !== 'lineage';
    if (tab === 'history') {
      void this.renderHistory();
    } else if (tab === 'lineage' && !this.lineage.firstChild) {
      this.renderLineageForm();
    }
  }

  private legend(): HTMLElement {
    const legend = h('div', { class: 'nbflow-legend' });
    for (const state of Object.keys(STATE_LABELS)) {
      legend.append(stateBadge(state));
    }
    return legend;
  }

  // ---- task detail -------------------------------------------------------------------------

  private selectTask(task: string): void {
    this.selectedTask = task;
    this.detailKey = '';
    this.graph.select(task);
    void this.renderDetail();
  }

  private async renderDetail(): Promise<void> {
    const t = this.pipeline?.tasks.find(x => x.name === this.selectedTask);
    if (!t) {
      this.detail.replaceChildren(h('p', { class: 'nbflow-hint' }, 'Click a task to see its status, attempts and error.'));
      return;
    }
    const run = this.pipeline?.run ?? null;
    const key = JSON.stringify([run?.id, t]);
    if (key === this.detailKey) {
      return; // nothing changed for this task: keep the pane (and an open log) as it is
    }
    this.detailKey = key;
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
    const actions = h('div', { class: 'nbflow-actions' });
    const openExecuted = button('Open executed notebook', 'nbflow-open-executed', () => t.executed && this.openDocument(t.executed));
    openExecuted.disabled = !t.executed || t.executed_openable === false;
    const openSource = button('Open source notebook', 'nbflow-open-source', () => t.path && this.openDocument(t.path));
    openSource.disabled = !t.path;
    const lineage = button('Lineage', 'nbflow-open-lineage', () => {
      this.setTab('lineage');
      void this.showLineage('task', t.name);
    });
    actions.append(openExecuted, openSource, lineage);
    const parts: Node[] = [h('h3', { class: 'nbflow-detail-title' }, t.name), dl];
    if (t.error) {
      parts.push(this.errorBlock(t.error.cell, t.error.message ?? [t.error.ename, t.error.evalue].filter(Boolean).join(': ')));
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
    this.detail.replaceChildren(...parts);
    this.detail.setAttribute('data-task', t.name);
    if (run && t.attempts) {
      try {
        const detail = await this.api.run(run.id);
        const task = detail.tasks.find(x => x.name === t.name);
        if (task && this.selectedTask === t.name) {
          attempts.replaceChildren(this.attemptsTable(run.id, t.name, task.attempts));
        }
      } catch (e) {
        attempts.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load attempts: ${(e as Error).message}`));
      }
    }
  }

  private errorBlock(cell: number | null, message: string): HTMLElement {
    const where = cell === null || cell === undefined ? 'Error' : `Error in cell ${cell}`;
    const block = h('div', { class: 'nbflow-error' }, h('strong', { title: 'cell index, counted from 0' }, where + ': '), message);
    block.setAttribute('data-cell', cell === null || cell === undefined ? '' : String(cell));
    return block;
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

  // ---- running -----------------------------------------------------------------------------

  private toggleForm(): void {
    if (!this.form.hidden) {
      this.form.hidden = true;
      return;
    }
    this.renderForm();
    this.form.hidden = false;
  }

  private renderForm(): void {
    const p = this.pipeline;
    const params = p?.parameters ?? {};
    const fields = h('fieldset', { class: 'nbflow-params' }, h('legend', {}, 'Parameters'));
    for (const [name, value] of Object.entries(params)) {
      const id = `nbflow-param-${name}`;
      let input: HTMLInputElement;
      if (typeof value === 'boolean') {
        input = h('input', { type: 'checkbox', name, id, 'data-kind': 'boolean' });
        input.checked = value;
      } else {
        const kind = typeof value === 'number' ? 'number' : typeof value === 'string' ? 'string' : 'json';
        input = h('input', { type: 'text', name, id, 'data-kind': kind });
        input.value = kind === 'json' ? JSON.stringify(value) : String(value);
      }
      input.setAttribute('data-default', JSON.stringify(value));
      input.classList.add('nbflow-param');
      fields.append(h('label', { for: id }, name), input);
    }
    if (!Object.keys(params).length) {
      fields.append(h('p', { class: 'nbflow-hint' }, 'No parameters cells in this pipeline.'));
    }
    const tasks = h('fieldset', { class: 'nbflow-only' }, h('legend', {}, 'Only these tasks (none checked: all)'));
    for (const t of p?.tasks ?? []) {
      const box = h('input', { type: 'checkbox', value: t.name, class: 'nbflow-only-task' });
      box.checked = false;
      tasks.append(h('label', {}, box, ` ${t.name}`));
    }
    const force = h('input', { type: 'checkbox', class: 'nbflow-force' });
    const start = h('button', { class: 'jp-Button jp-mod-accept nbflow-button nbflow-start', type: 'submit' }, 'Start run');
    const close = button('Close', 'nbflow-close-form', () => (this.form.hidden = true));
    this.form.replaceChildren(
      fields,
      tasks,
      h('div', { class: 'nbflow-form-row' }, h('label', {}, force, ' Force (re-run tasks that are up to date)'), start, close),
      h('div', { class: 'nbflow-form-message', role: 'alert' })
    );
  }

  private readForm(): { parameters: Record<string, unknown>; only: string[]; force: boolean } {
    const parameters: Record<string, unknown> = {};
    for (const input of Array.from(this.form.querySelectorAll<HTMLInputElement>('input.nbflow-param'))) {
      const kind = input.getAttribute('data-kind');
      const original = JSON.parse(input.getAttribute('data-default') ?? 'null');
      let value: unknown;
      if (kind === 'boolean') {
        value = input.checked;
      } else if (kind === 'number') {
        value = Number(input.value);
        if (input.value.trim() === '' || Number.isNaN(value)) {
          throw new Error(`parameter ${input.name}: '${input.value}' is not a number`);
        }
      } else if (kind === 'json') {
        try {
          value = JSON.parse(input.value);
        } catch {
          throw new Error(`parameter ${input.name}: '${input.value}' is not valid JSON`);
        }
      } else {
        value = input.value;
      }
      if (JSON.stringify(value) !== JSON.stringify(original)) {
        parameters[input.name] = value; // only what the user changed: defaults stay the notebooks' own
      }
    }
    const only = Array.from(this.form.querySelectorAll<HTMLInputElement>('input.nbflow-only-task'))
      .filter(b => b.checked)
      .map(b => b.value);
    const force = this.form.querySelector<HTMLInputElement>('input.nbflow-force')?.checked ?? false;
    return { parameters, only, force };
  }

  private async startRun(): Promise<void> {
    const formMessage = this.form.querySelector('.nbflow-form-message') as HTMLElement;
    const start = this.form.querySelector('.nbflow-start') as HTMLButtonElement;
    formMessage.textContent = '';
    try {
      const body = this.readForm();
      start.disabled = true;
      formMessage.textContent = 'Starting…';
      const r = await this.api.startRun(body);
      this.form.hidden = true;
      formMessage.textContent = '';
      const warnings = r.warnings?.length ? ` Warnings: ${r.warnings.join(' ')}` : '';
      this.setMessage(`Started run ${r.run_id}.${warnings}`, 'info', warnings ? '' : 'started');
      this.selectedRun = null;
      await this.refresh();
    } catch (e) {
      const status = e instanceof ApiError && e.status ? ` (${e.status})` : '';
      const text = `Cannot start the run${status}: ${(e as Error).message}`;
      formMessage.textContent = text;
      formMessage.setAttribute('data-level', 'error');
    } finally {
      start.disabled = false;
    }
  }

  private async cancelRun(): Promise<void> {
    const run = this.pipeline?.run;
    if (!run) {
      return;
    }
    try {
      await this.api.cancel(run.id);
      this.setMessage(`Cancelling run ${run.id}…`, 'info');
    } catch (e) {
      this.setMessage(`Cannot cancel run ${run.id}: ${(e as Error).message}`, 'error');
    }
  }

  // ---- history -----------------------------------------------------------------------------

  private async renderHistory(): Promise<void> {
    let data: { runs: IRunSummary[]; total: number };
    try {
      data = await this.api.runs(HISTORY_PAGE, this.historyOffset);
    } catch (e) {
      this.history.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load the run history: ${(e as Error).message}`));
      return;
    }
    const shown = this.pipeline?.run?.id;
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
      row.addEventListener('click', () => this.showRun(r.id));
      body.append(row);
    }
    table.append(body);
    const first = data.total ? this.historyOffset + 1 : 0;
    const last = this.historyOffset + data.runs.length;
    const newer = button('Newer', 'nbflow-page-newer', () => {
      this.historyOffset = Math.max(0, this.historyOffset - HISTORY_PAGE);
      void this.renderHistory();
    });
    newer.disabled = this.historyOffset === 0;
    const older = button('Older', 'nbflow-page-older', () => {
      this.historyOffset += HISTORY_PAGE;
      void this.renderHistory();
    });
    older.disabled = last >= data.total;
    const pager = h('div', { class: 'nbflow-pager' }, newer, h('span', {}, ` ${first}–${last} of ${data.total} `), older);
    this.history.replaceChildren(data.runs.length ? table : h('p', { class: 'nbflow-hint' }, 'No runs yet.'), pager);
    this.history.setAttribute('data-total', String(data.total));
  }

  // ---- lineage -----------------------------------------------------------------------------

  private renderLineageForm(): void {
    const kind = h('select', { class: 'nbflow-lineage-kind' }, h('option', { value: 'task' }, 'Task'), h('option', { value: 'path' }, 'File'));
    const listId = `nbflow-tasks-${Math.random().toString(36).slice(2)}`;
    const list = h('datalist', { id: listId });
    for (const t of this.pipeline?.tasks ?? []) {
      list.append(h('option', { value: t.name }));
    }
    const input = h('input', { type: 'text', class: 'nbflow-lineage-target', list: listId, placeholder: 'task name or data/file.csv' });
    const form = h('form', { class: 'nbflow-lineage-form' }, kind, input, list, h('button', { class: 'jp-Button nbflow-button', type: 'submit' }, 'Show lineage'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.showLineage(kind.value as 'task' | 'path', input.value.trim());
    });
    this.lineage.replaceChildren(form, h('div', { class: 'nbflow-lineage-result' }));
  }

  private async showLineage(kind: 'task' | 'path', target: string): Promise<void> {
    if (!this.lineage.firstChild) {
      this.renderLineageForm();
    }
    (this.lineage.querySelector('.nbflow-lineage-kind') as HTMLSelectElement).value = kind;
    (this.lineage.querySelector('.nbflow-lineage-target') as HTMLInputElement).value = target;
    const out = this.lineage.querySelector('.nbflow-lineage-result') as HTMLElement;
    if (!target) {
      return;
    }
    out.replaceChildren(h('p', { class: 'nbflow-hint' }, 'Loading…'));
    try {
      const data = await this.api.lineage(kind === 'task' ? { task: target } : { path: target });
      out.replaceChildren(data.task ? this.taskLineage(data.task) : this.tree(data.path));
    } catch (e) {
      out.replaceChildren(h('p', { class: 'nbflow-error' }, (e as Error).message));
    }
  }

  private taskLineage(t: any): HTMLElement {
    const a = t.attempt ?? {};
    const reads = h('ul', { class: 'nbflow-tree' });
    for (const r of t.reads ?? []) {
      reads.append(this.treeItem(r));
    }
    const writes = h('ul', { class: 'nbflow-tree' });
    for (const w of t.writes ?? []) {
      const consumers = h('ul', {});
      for (const c of w.consumers ?? []) {
        consumers.append(h('li', {}, 'read by ', this.producerText(c)));
      }
      writes.append(h('li', {}, this.datasetLabel(w), ' — ', this.producerText(w.producer), consumers));
    }
    return h(
      'div',
      { class: 'nbflow-lineage-task' },
      h('h3', {}, `Task ${t.task}`),
      h('p', {}, 'Last succeeded attempt: ', this.runLink(a.run_id), ` #${a.number ?? '?'}, ${formatTime(a.started_at)}`),
      h('h4', {}, 'Upstream: what it read'),
      (t.reads ?? []).length ? reads : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.'),
      h('h4', {}, 'Downstream: what it wrote, and who read it'),
      (t.writes ?? []).length ? writes : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.')
    );
  }

  private tree(node: any): HTMLElement {
    return h('ul', { class: 'nbflow-tree' }, this.treeItem(node));
  }

  private treeItem(node: any): HTMLElement {
    const li = h('li', {}, this.datasetLabel(node), ' — ', this.producerText(node.producer));
    if (node.repeated) {
      li.append(' (shown above)');
    }
    if (node.inputs?.length) {
      const ul = h('ul', {});
      for (const i of node.inputs) {
        ul.append(this.treeItem(i));
      }
      li.append(ul);
    }
    return li;
  }

  private datasetLabel(d: any): HTMLElement {
    const hash = String(d.hash ?? '').slice(0, 12);
    return h(
      'span',
      { class: 'nbflow-dataset', 'data-path': d.path ?? '' },
      h('code', {}, d.path ?? '?'),
      ' ',
      h('span', { class: 'nbflow-hash', title: String(d.hash ?? '') }, hash ? `sha256:${hash}` : ''),
      d.size !== undefined && d.size !== null ? ` ${d.size} ${d.size === 1 ? 'byte' : 'bytes'}` : ''
    );
  }

  private producerText(p: any): HTMLElement {
    if (!p) {
      return h('span', { class: 'nbflow-hint' }, 'external input');
    }
    return h('span', {}, `${p.task} #${p.number ?? '?'} (`, stateBadge(p.status ?? ''), ') in run ', this.runLink(p.run_id));
  }

  private runLink(id: string | undefined): HTMLElement {
    const a = h('a', { class: 'nbflow-run-link', href: '#' }, id ?? '?');
    a.addEventListener('click', ev => {
      ev.preventDefault();
      if (id) {
        this.showRun(id);
      }
    });
    return a;
  }
}

export type { ITask };
