/**
 * The nbflow panel: toolbar (run, cancel, resume, which run is shown), graph with a detail pane, run history,
 * timeline, comparison, schedules, operations (alerts, breakers) and lineage. It follows the store and the
 * pipeline's sources live by long-polling the `changes` route. Each part is its own module; this one composes them, switches tabs and keeps them up to date.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { IPipeline, IStartedRun, NbflowApi } from './api';
import { CompareView } from './compare';
import { DependencyEditor, IDepHost } from './depEdit';
import { h, stateBadge } from './dom';
import { GraphView, STATE_LABELS } from './graph';
import { RunHistory } from './history';
import { LineageView } from './lineage';
import { OperationsView } from './operations';
import { RunForm } from './runForm';
import { SchedulesView } from './schedules';
import { TaskDetail } from './taskDetail';
import { TimelineView } from './timeline';
import { Tab, Toolbar } from './toolbar';

const POLL_TIMEOUT_S = 20;

export interface IPanelOptions {
  project: string;
  /** Open a file (path relative to the server root) as a normal JupyterLab document. */
  openDocument: (path: string) => void;
  /** Open an executed notebook read-only, without a kernel, as an artifact of `run`. */
  openArtifact: (path: string, run: string) => void;
  /** Show a text (a log) in its own scrollable tab. */
  openLog: (title: string, text: string) => void;
  rendermime: IRenderMimeRegistry | null;
  /** Open notebooks and cells, for editing dependencies from the graph (depEdit.ts). */
  deps?: IDepHost;
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

export class NbflowPanel extends Widget {
  readonly api: NbflowApi;
  /** Emits the project folder as the server resolved it (the nearest folder with nbflow.toml), once known. */
  readonly resolved = new Signal<this, string>(this);
  resolvedProject: string | null = null;
  private pipeline: IPipeline | null = null;
  private selectedRun: string | null = null; // null: follow the latest run
  private selectedTask: string | null = null;
  private eventId = 0;
  private sources = '';
  private tab: Tab = 'graph';
  private abort = new AbortController();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;

  private toolbar: Toolbar;
  private graph: GraphView;
  private detail: TaskDetail;
  private form: RunForm;
  private history: RunHistory;
  private timeline: TimelineView;
  private compare: CompareView;
  private schedules: SchedulesView;
  private operations: OperationsView;
  private lineage: LineageView;
  private message = h('div', { class: 'nbflow-message', role: 'alert' });
  private graphView = h('div', { class: 'nbflow-view nbflow-view-graph' });
  private deps: DependencyEditor;

  constructor(options: IPanelOptions) {
    super();
    this.api = new NbflowApi(options.project);
    this.addClass('nbflow-panel');
    this.node.setAttribute('data-project', options.project);
    const taskNames = () => (this.pipeline?.tasks ?? []).map(t => t.name);
    this.toolbar = new Toolbar({
      toggleForm: () => void this.form.toggle(this.pipeline),
      cancelRun: () => void this.cancelRun(),
      resumeRun: () => void this.resumeRun(),
      showLatest: () => this.showRun(null),
      setTab: tab => this.setTab(tab)
    });
    this.graph = new GraphView(task => this.selectTask(task));
    this.detail = new TaskDetail(
      this.api,
      {
        openDocument: options.openDocument,
        openArtifact: options.openArtifact,
        openLog: options.openLog,
        showLineage: task => this.showLineage(task),
        showRun: run => this.showRun(run)
      },
      options.rendermime,
      () => {
        this.selectedTask = null;
        this.graph.select(null);
      }
    );
    this.form = new RunForm(this.api, run => this.runStarted(run));
    this.history = new RunHistory(this.api, {
      shownRun: () => this.pipeline?.run?.id,
      showRun: run => this.showRun(run),
      taskNames,
      compare: (a, b) => {
        this.setTab('compare');
        void this.compare.show(a, b);
      },
      cancelQueued: run => void this.unqueue(run)
    });
    this.timeline = new TimelineView(this.api, {
      shownRun: () => this.pipeline?.run?.id,
      upstreamOf: task => this.pipeline?.tasks.find(t => t.name === task)?.upstream ?? [],
      selectTask: task => {
        this.setTab('graph');
        this.selectTask(task);
      }
    });
    this.compare = new CompareView(this.api, { showRun: run => this.showRun(run) });
    this.schedules = new SchedulesView(this.api, { taskNames, showRun: run => this.showRun(run) });
    this.operations = new OperationsView(this.api, { showRun: run => this.showRun(run) });
    this.lineage = new LineageView(this.api, {
      taskNames,
      showRun: run => this.showRun(run),
      openFile: path => options.openDocument(this.serverPath(path))
    });
    this.deps = new DependencyEditor(this.api, options.deps ?? { findNotebook: () => null, openCell: async p => options.openDocument(p) }, {
      pipeline: () => this.pipeline,
      show: p => this.showEdited(p),
      refresh: () => void this.refresh(),
      message: (content, level, kind) => this.showMessage(content, level, kind)
    });
    this.deps.attach(this.graph);
    this.node.addEventListener('keydown', ev => {
      const inField = (ev.target as Element).closest('input, textarea, select, .jp-Notebook');
      if ((ev.ctrlKey || ev.metaKey) && !ev.shiftKey && ev.key.toLowerCase() === 'z' && !inField) {
        ev.preventDefault();
        void this.deps.undo();
      }
    });
    this.graphView.append(this.graph.node, this.detail.node);
    this.node.append(
      this.toolbar.node,
      this.message,
      this.form.node,
      h(
        'div',
        { class: 'nbflow-body' },
        ...[this.graphView, this.history.node, this.timeline.node, this.compare.node, this.schedules.node, this.operations.node, this.lineage.node]
      ),
      this.legend()
    );
    this.setMessage('', '');
    this.setTab('graph');
    void this.start();
  }

  dispose(): void {
    this.abort.abort();
    this.detail.dispose();
    super.dispose();
  }

  /** Show one run's states on the graph (null: always the latest). */
  showRun(run: string | null): void {
    this.selectedRun = run;
    this.setTab('graph');
    void this.refresh();
  }

  /** A project-relative path as the server-root-relative path JupyterLab opens. */
  private serverPath(path: string): string {
    const base = this.pipeline?.project ?? this.api.project;
    return !base || base === '.' ? path : `${base}/${path}`;
  }

  private async start(): Promise<void> {
    await this.refresh();
    void this.pollLoop();
  }

  /** Long-poll `changes`; on any new store event, or an edit of nbflow.toml or a notebook, refetch what is shown. */
  private async pollLoop(): Promise<void> {
    while (!this.isDisposed) {
      try {
        const r = await this.api.changes(this.eventId, POLL_TIMEOUT_S, this.sources, this.abort.signal);
        if (this.isDisposed) {
          return;
        }
        const sourcesMoved = !!r.sources && !!this.sources && r.sources !== this.sources;
        this.sources = r.sources ?? this.sources;
        if (r.changed || sourcesMoved) {
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

  /** Refetch the pipeline (and the visible tab); calls made while one is running are merged into one more. */
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
      const name = p.project && p.project !== '.' ? p.project : (p.folder ?? '/');
      this.title.label = `nbflow: ${name}`;
      if (this.resolvedProject === null) {
        this.resolvedProject = p.project === '.' ? '' : p.project;
        this.resolved.emit(this.resolvedProject);
      }
      this.node.setAttribute('data-event-id', String(p.event_id));
      this.graph.show(p.tasks, this.deps.overlay(p.edges));
      this.deps.mark();
      this.node.setAttribute('data-run-id', p.run?.id ?? '');
      this.node.setAttribute('data-run-status', p.run?.status ?? '');
      this.toolbar.showRun(p.run, this.selectedRun);
      this.detail.update(p);
      const kind = this.message.getAttribute('data-kind');
      const ended = p.run?.status !== 'running';
      if (kind === 'load-error' || ((kind === 'started' || kind === 'cancelling') && ended)) {
        this.setMessage('', '');
      }
    } catch (e) {
      this.setMessage(`Cannot load the pipeline: ${(e as Error).message}`, 'error', 'load-error');
    }
    await this.renderTab();
  }

  private async renderTab(): Promise<void> {
    if (this.tab === 'history') {
      await this.history.render();
    } else if (this.tab === 'timeline') {
      await this.timeline.render();
    } else if (this.tab === 'schedules') {
      await this.schedules.render();
    } else if (this.tab === 'operations') {
      await this.operations.render();
    }
  }

  private setMessage(text: string, kind: '' | 'error' | 'info', tag = ''): void {
    this.message.textContent = text;
    this.message.setAttribute('data-level', kind);
    this.message.setAttribute('data-kind', tag);
    this.message.hidden = !text;
  }

  /** A message with parts (the dependency editor's Undo button). */
  private showMessage(content: string | HTMLElement, kind: 'error' | 'info', tag = ''): void {
    this.setMessage(typeof content === 'string' ? content : ' ', kind, tag);
    if (typeof content !== 'string') {
      this.message.replaceChildren(content);
    }
  }

  /** The graph after a dependency edit, at once: the server's new edges over the shown run's states. */
  private showEdited(p: IPipeline): void {
    if (!this.pipeline) {
      return;
    }
    const upstream = new Map(p.tasks.map(t => [t.name, t.upstream]));
    this.pipeline = { ...this.pipeline, edges: p.edges, tasks: this.pipeline.tasks.map(t => ({ ...t, upstream: upstream.get(t.name) ?? t.upstream })) };
    this.graph.show(this.pipeline.tasks, this.deps.overlay(this.pipeline.edges));
    this.deps.mark();
  }

  private setTab(tab: Tab): void {
    this.tab = tab;
    this.toolbar.markTab(tab);
    this.node.setAttribute('data-tab', tab);
    this.graphView.hidden = tab !== 'graph';
    this.history.node.hidden = tab !== 'history';
    this.timeline.node.hidden = tab !== 'timeline';
    this.compare.node.hidden = tab !== 'compare';
    this.schedules.node.hidden = tab !== 'schedules';
    this.operations.node.hidden = tab !== 'operations';
    this.lineage.node.hidden = tab !== 'lineage';
    if (tab === 'lineage') {
      this.lineage.ensureForm(this.selectedTask);
    } else {
      void this.renderTab();
    }
  }

  private legend(): HTMLElement {
    const legend = h('div', { class: 'nbflow-legend' });
    for (const state of Object.keys(STATE_LABELS)) {
      legend.append(stateBadge(state));
    }
    return legend;
  }

  private selectTask(task: string): void {
    this.selectedTask = task;
    this.graph.select(task);
    this.detail.select(task);
  }

  private showLineage(task: string): void {
    this.setTab('lineage');
    void this.lineage.show('task', task);
  }

  private async runStarted(r: IStartedRun): Promise<void> {
    const warnings = r.warnings?.length ? ` Warnings: ${r.warnings.join(' ')}` : '';
    if (r.queued) {
      this.setMessage(`Queued run ${r.run_id} (position ${r.position}): it starts when the running run ends.${warnings}`, 'info', 'queued');
    } else {
      this.setMessage(`Started run ${r.run_id}.${warnings}`, 'info', warnings ? '' : 'started');
      this.selectedRun = null;
    }
    await this.refresh();
  }

  private async cancelRun(): Promise<void> {
    const run = this.pipeline?.run;
    if (!run) {
      return;
    }
    try {
      await this.api.cancel(run.id);
      this.setMessage(`Cancelling run ${run.id}…`, 'info', 'cancelling');
    } catch (e) {
      this.setMessage(`Cannot cancel run ${run.id}: ${(e as Error).message}`, 'error');
    }
  }

  private async resumeRun(): Promise<void> {
    const run = this.pipeline?.run;
    if (!run) {
      return;
    }
    try {
      await this.api.resume(run.id);
      this.setMessage(`Resumed run ${run.id}.`, 'info', 'started');
    } catch (e) {
      this.setMessage(`Cannot resume run ${run.id}: ${(e as Error).message}`, 'error');
    }
    await this.refresh();
  }

  private async unqueue(run: string): Promise<void> {
    try {
      await this.api.cancel(run);
      this.setMessage(`Run ${run} taken out of the queue.`, 'info');
    } catch (e) {
      this.setMessage(`Cannot unqueue ${run}: ${(e as Error).message}`, 'error');
    }
    await this.refresh();
  }
}
