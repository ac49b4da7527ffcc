/**
 * The nbflow panel: toolbar (run, cancel, which run is shown), graph with a detail pane,
 * run history and lineage. It follows the store live by long-polling the `changes` route.
 * Each part is its own module; this one composes them, switches tabs and keeps them up to date.
 */
import { Widget } from '@lumino/widgets';

import { IPipeline, IStartedRun, NbflowApi } from './api';
import { h, stateBadge } from './dom';
import { GraphView, STATE_LABELS } from './graph';
import { RunHistory } from './history';
import { LineageView } from './lineage';
import { RunForm } from './runForm';
import { TaskDetail } from './taskDetail';
import { Tab, Toolbar } from './toolbar';

const POLL_TIMEOUT_S = 20;

export interface IPanelOptions {
  project: string;
  /** Open a file (path relative to the server root) as a normal JupyterLab document. */
  openDocument: (path: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

export class NbflowPanel extends Widget {
  readonly api: NbflowApi;
  private pipeline: IPipeline | null = null;
  private selectedRun: string | null = null; // null: follow the latest run
  private eventId = 0;
  private tab: Tab = 'graph';
  private abort = new AbortController();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;

  private toolbar: Toolbar;
  private graph: GraphView;
  private detail: TaskDetail;
  private form: RunForm;
  private history: RunHistory;
  private lineage: LineageView;
  private message = h('div', { class: 'nbflow-message', role: 'alert' });
  private graphView = h('div', { class: 'nbflow-view nbflow-view-graph' });

  constructor(options: IPanelOptions) {
    super();
    this.api = new NbflowApi(options.project);
    this.addClass('nbflow-panel');
    this.node.setAttribute('data-project', options.project);
    this.toolbar = new Toolbar({
      toggleForm: () => this.form.toggle(this.pipeline),
      cancelRun: () => void this.cancelRun(),
      showLatest: () => this.showRun(null),
      setTab: tab => this.setTab(tab)
    });
    this.graph = new GraphView(task => this.selectTask(task));
    this.detail = new TaskDetail(this.api, {
      openDocument: options.openDocument,
      showLineage: task => this.showLineage(task)
    });
    this.form = new RunForm(this.api, run => this.runStarted(run));
    this.history = new RunHistory(this.api, {
      shownRun: () => this.pipeline?.run?.id,
      showRun: run => this.showRun(run)
    });
    this.lineage = new LineageView(this.api, {
      taskNames: () => (this.pipeline?.tasks ?? []).map(t => t.name),
      showRun: run => this.showRun(run)
    });
    this.graphView.append(this.graph.node, this.detail.node);
    this.node.append(
      this.toolbar.node,
      this.message,
      this.form.node,
      h('div', { class: 'nbflow-body' }, this.graphView, this.history.node, this.lineage.node),
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
      this.node.setAttribute('data-run-id', p.run?.id ?? '');
      this.node.setAttribute('data-run-status', p.run?.status ?? '');
      this.toolbar.showRun(p.run, this.selectedRun);
      this.detail.update(p);
      const kind = this.message.getAttribute('data-kind');
      if (kind === 'load-error' || (kind === 'started' && p.run?.status !== 'running')) {
        this.setMessage('', '');
      }
    } catch (e) {
      this.setMessage(`Cannot load the pipeline: ${(e as Error).message}`, 'error', 'load-error');
    }
    if (this.tab === 'history') {
      await this.history.render();
    }
  }

  private setMessage(text: string, kind: '' | 'error' | 'info', tag = ''): void {
    this.message.textContent = text;
    this.message.setAttribute('data-level', kind);
    this.message.setAttribute('data-kind', tag);
    this.message.hidden = !text;
  }

  private setTab(tab: Tab): void {
    this.tab = tab;
    this.toolbar.markTab(tab);
    this.graphView.hidden = tab !== 'graph';
    this.history.node.hidden = tab !== 'history';
    this.lineage.node.hidden = tab !== 'lineage';
    if (tab === 'history') {
      void this.history.render();
    } else if (tab === 'lineage') {
      this.lineage.ensureForm();
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
    this.graph.select(task);
    this.detail.select(task);
  }

  private showLineage(task: string): void {
    this.setTab('lineage');
    void this.lineage.show('task', task);
  }

  private async runStarted(r: IStartedRun): Promise<void> {
    const warnings = r.warnings?.length ? ` Warnings: ${r.warnings.join(' ')}` : '';
    this.setMessage(`Started run ${r.run_id}.${warnings}`, 'info', warnings ? '' : 'started');
    this.selectedRun = null;
    await this.refresh();
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
}
