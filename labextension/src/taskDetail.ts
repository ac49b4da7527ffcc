/**
 * The detail pane beside the graph: the selected task's facts (with this run's parameters and its duration trend),
 * error, buttons, the files it read and wrote, its attempts, and a read-only preview of its executed notebook that
 * follows a running task live ("Watch"). The pane is resizable by its left edge.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { IPipeline, ITask, NbflowApi } from './api';
import { button, formatDuration, formatElapsed, formatTime, h, sparkline, stateBadge } from './dom';
import { NotebookPreview, cellProgress } from './notebookPreview';
import { expectedRows } from './forecast';
import { attemptFacts, attemptsTable, errorBlock, ioList } from './taskParts';

const HINT = 'Click a task to see its status, parameters, attempts, files and executed notebook.';
const WATCH_MS = 2000; // the runner saves a running notebook every 2 s

/** What the detail pane asks of the panel. */
export interface ITaskDetailHandlers {
  /** Open a file (path relative to the server root) as a JupyterLab document. */
  openDocument: (path: string) => void;
  /** Open an executed notebook read-only, without a kernel, marked as an artifact of its run. */
  openArtifact: (path: string, run: string) => void;
  openLog: (title: string, text: string) => void;
  showLineage: (task: string) => void;
  showRun: (run: string) => void;
}

function hidden(path: string): boolean {
  return path.split('/').some(p => p.startsWith('.'));
}

export class TaskDetail {
  readonly node = h('div', { class: 'nbflow-detail' });
  private body = h('div', { class: 'nbflow-detail-body' }, h('p', { class: 'nbflow-hint' }, HINT));
  private previewBox = h('div', { class: 'nbflow-preview-box' });
  private preview: NotebookPreview;
  private pipeline: IPipeline | null = null;
  private task: string | null = null;
  private key = '';
  private watching = false; // following the running task's notebook as it is saved
  private watchTimer = 0;
  private shownMtime = 0;
  private watchedCells: { cell: number; cells: number } | null = null; // from the watched notebook's papermill times

  constructor(
    private api: NbflowApi,
    private handlers: ITaskDetailHandlers,
    rendermime: IRenderMimeRegistry | null,
    private onClose: () => void = () => undefined
  ) {
    this.preview = new NotebookPreview(rendermime);
    const grip = h('div', { class: 'nbflow-resize-handle', title: 'Drag to resize' });
    grip.addEventListener('pointerdown', ev => this.resize(ev));
    this.node.append(grip, this.body);
    this.node.hidden = true; // the graph gets the whole width until a task is selected
  }

  /** Close the pane (the graph takes the width back). */
  close(): void {
    this.stopWatch();
    this.task = null;
    this.node.hidden = true;
    this.onClose();
  }

  /** Show this task, from the last pipeline given to `update`. */
  select(task: string): void {
    if (task !== this.task) {
      this.stopWatch();
      this.preview.clear();
      this.previewBox.replaceChildren();
      this.previewBox.removeAttribute('data-cell');
      this.previewBox.removeAttribute('data-cells');
      this.shownMtime = 0;
      this.watchedCells = null;
    }
    this.task = task;
    this.key = '';
    this.node.hidden = false;
    void this.render();
  }

  /** Take a newly loaded pipeline; the pane is redrawn only if its task changed. */
  update(pipeline: IPipeline): void {
    this.pipeline = pipeline;
    if (this.task) {
      void this.render();
    }
  }

  dispose(): void {
    this.stopWatch();
    this.preview.clear();
  }

  private async render(): Promise<void> {
    const t = this.pipeline?.tasks.find(x => x.name === this.task);
    if (!t) {
      this.body.replaceChildren(h('p', { class: 'nbflow-hint' }, HINT));
      return;
    }
    const run = this.pipeline?.run ?? null;
    const key = JSON.stringify([run?.id, t]);
    if (key === this.key) {
      return; // nothing changed for this task: keep the pane (and the preview) as it is
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
    const progress = this.progressText(t);
    if (progress) {
      rows.splice(1, 0, ['Progress', h('span', { class: 'nbflow-progress-text' }, progress)]);
    }
    if (t.reason) {
      rows.push(['Reason', t.reason]);
    }
    rows.push(...expectedRows(t));
    const dl = h('dl', { class: 'nbflow-facts' });
    for (const [k, v] of rows) {
      dl.append(h('dt', {}, k), h('dd', {}, v));
    }
    const params = this.parametersOf(t);
    const { openDocument, openArtifact, showLineage } = this.handlers;
    const actions = h('div', { class: 'nbflow-actions' });
    const openExecuted = button(t.state === 'running' ? 'Open running notebook' : 'Open executed notebook', 'nbflow-open-executed', () => {
      if (t.executed && run) {
        openArtifact(t.executed, run.id);
      }
    });
    openExecuted.disabled = !t.executed || (t.executed_openable === false && hidden(t.executed));
    const openSource = button('Open source notebook', 'nbflow-open-source', () => t.path && openDocument(t.path));
    openSource.disabled = !t.path;
    const lineage = button('Lineage', 'nbflow-open-lineage', () => showLineage(t.name));
    const watchLabel = t.state === 'running' ? (this.watching ? 'Stop watching' : 'Watch') : 'Preview';
    const watch = button(watchLabel, 'nbflow-watch-button', () => void this.togglePreview(t));
    watch.disabled = !t.executed && t.state !== 'running'; // a running task is watched from its first save on
    actions.append(openExecuted, openSource, lineage, watch);
    const trend = h('div', { class: 'nbflow-trend' });
    const io = h('div', { class: 'nbflow-io-slot' });
    const attempts = h('div', { class: 'nbflow-attempts' });
    const closeButton = h('button', { class: 'nbflow-link nbflow-close-detail', type: 'button', title: 'Close the detail pane' }, '×');
    closeButton.addEventListener('click', () => this.close());
    const parts: Array<Node | null> = [h('h3', { class: 'nbflow-detail-title' }, t.name, closeButton), dl, trend, params];
    if (t.error) {
      parts.push(errorBlock(t.error.cell, t.error.message ?? [t.error.ename, t.error.evalue].filter(Boolean).join(': '), t.error.cell_label));
    }
    parts.push(actions);
    if (t.executed && t.executed_openable === false && hidden(t.executed)) {
      parts.push(
        h('p', { class: 'nbflow-hint' },
          `The executed notebook ${t.executed} is in a hidden folder, which JupyterLab does not open. ` +
            'Start Jupyter with --ContentsManager.allow_hidden=True, or set artifacts to a visible folder in nbflow.toml.')
      );
    } else if (t.state === 'running' && !t.executed) {
      parts.push(h('p', { class: 'nbflow-hint' }, 'The executed notebook is written at the first save (within 2 s of the first cell).'));
    }
    parts.push(io, attempts, this.previewBox);
    this.body.replaceChildren(...parts.filter((p): p is Node => p !== null));
    this.node.setAttribute('data-task', t.name);
    if (this.watching && t.state !== 'running') {
      void this.refreshPreview(); // the task ended: show its final notebook once more, then stop
      this.stopWatch();
    }
    void this.loadTrend(t, trend);
    if (run && t.attempts) {
      try {
        const detail = await this.api.run(run.id);
        const task = (detail.tasks as any[]).find(x => x.name === t.name);
        if (task && this.task === t.name) {
          const last = task.attempts[task.attempts.length - 1];
          for (const [key, label, value] of attemptFacts(last)) {
            dl.append(h('dt', {}, label), h('dd', { class: 'nbflow-fact', 'data-fact': key }, value));
          }
          attempts.replaceChildren(attemptsTable(this.api, run.id, t.name, task.attempts, this.handlers));
          if (last && t.state !== 'running') {
            const found = await this.api.io(run.id, t.name, last.attempt);
            io.replaceChildren(ioList(found, openDocument, this.handlers.showRun));
          }
        }
      } catch (e) {
        attempts.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load attempts: ${(e as Error).message}`));
      }
    }
  }

  /** "cell 4 of 10, 2 m 13 s" for a running task (from the server's progress, else from the watched notebook). */
  private progressText(t: ITask): string {
    if (t.state !== 'running') {
      return '';
    }
    const p = t.progress ?? (this.watching ? this.watchedCells : null);
    if (p) {
      return `cell ${p.cell} of ${p.cells}, ${formatElapsed(Date.now() / 1000 - (t.started ?? Date.now() / 1000))}`;
    }
    return t.started ? `running for ${formatElapsed(Date.now() / 1000 - t.started)}` : 'starting';
  }

  private parametersOf(t: ITask): HTMLElement | null {
    const run = this.pipeline?.run;
    if (!run) {
      return null;
    }
    const names = [...(t.parameters ?? []), 'run_date'].filter((n, i, all) => all.indexOf(n) === i && n in run.parameters);
    if (!names.length) {
      return null;
    }
    const dl = h('dl', { class: 'nbflow-facts nbflow-task-params' });
    for (const n of names) {
      dl.append(h('dt', {}, n), h('dd', { class: 'nbflow-mono' }, JSON.stringify(run.parameters[n])));
    }
    return h('div', {}, h('h4', {}, 'Parameters in this run'), dl);
  }

  private async loadTrend(t: ITask, into: HTMLElement): Promise<void> {
    try {
      const found = await this.api.taskHistory(t.name, 30);
      const ok = found.attempts.filter(a => a.duration !== null).reverse();
      if (ok.length < 2) {
        return;
      }
      const values = ok.map(a => a.duration);
      const last = values[values.length - 1] as number;
      const median = [...values].sort((a, b) => (a as number) - (b as number))[Math.floor(values.length / 2)] as number;
      into.replaceChildren(
        h('span', { class: 'nbflow-hint' }, `Duration, last ${ok.length} attempts: `),
        sparkline(values, 140, 24, ok.map(a => `${a.run_id} #${a.attempt}: ${formatDuration(a.duration)}`).join('\n')),
        h('span', { class: 'nbflow-hint' }, ` last ${formatDuration(last)}, median ${formatDuration(median)}`)
      );
    } catch {
      into.replaceChildren();
    }
  }

  private async togglePreview(t: ITask): Promise<void> {
    if (this.watching) {
      this.stopWatch();
      this.key = '';
      void this.render();
      return;
    }
    const running = t.state === 'running';
    this.shownMtime = 0;
    this.previewBox.replaceChildren(h('h4', {}, running ? 'Running notebook (live)' : 'Executed notebook'), this.preview.node);
    if (running) {
      this.watching = true;
      this.watchTimer = window.setInterval(() => void this.refreshPreview(), WATCH_MS);
      this.key = '';
      void this.render();
    }
    await this.refreshPreview();
  }

  /** Show the task's executed notebook as it stands now (the path comes from the latest pipeline: a running task
   * has one from its first save on). */
  private async refreshPreview(): Promise<void> {
    let path = this.pipeline?.tasks.find(x => x.name === this.task)?.executed;
    if (!path && this.watching && this.pipeline?.run) {
      // A save records no event, so the panel's pipeline may predate the first save: ask for the path again.
      try {
        const fresh = await this.api.pipeline(this.pipeline.run.id);
        path = fresh.tasks.find(x => x.name === this.task)?.executed ?? null;
      } catch {
        path = null;
      }
    }
    this.tickProgress();
    if (!path) {
      this.preview.node.replaceChildren(h('p', { class: 'nbflow-hint' }, 'Waiting for the first save of the notebook…'));
      return;
    }
    try {
      const found = await this.api.notebook(path);
      if (found.mtime === this.shownMtime) {
        return;
      }
      this.shownMtime = found.mtime;
      await this.preview.render(found.notebook);
      const p = cellProgress(found.notebook);
      this.watchedCells = p.cells ? { cell: p.cell, cells: p.cells } : null;
      this.previewBox.setAttribute('data-cell', String(p.cell));
      this.previewBox.setAttribute('data-cells', String(p.cells));
      this.tickProgress();
    } catch (e) {
      this.preview.node.replaceChildren(h('p', { class: 'nbflow-hint' }, (e as Error).message));
    }
  }

  /** Rewrite the progress line in place (cells done, time so far) between redraws of the pane. */
  private tickProgress(): void {
    const t = this.pipeline?.tasks.find(x => x.name === this.task);
    const text = this.body.querySelector('.nbflow-progress-text');
    if (t && text) {
      text.textContent = this.progressText(t);
    }
  }

  private stopWatch(): void {
    window.clearInterval(this.watchTimer);
    this.watchTimer = 0;
    this.watching = false;
  }

  private resize(ev: PointerEvent): void {
    ev.preventDefault();
    const x0 = ev.clientX;
    const w0 = this.node.getBoundingClientRect().width;
    const move = (e: PointerEvent) => {
      this.node.style.width = `${Math.max(240, Math.min(window.innerWidth * 0.8, w0 + x0 - e.clientX))}px`;
    };
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }
}
