/**
 * The Lineage tab: for a task, what its last succeeded attempt read and wrote (and who read that since); for a file,
 * the tree of versions it was made from, as a list and as a graph. The form is pre-filled from the selected task and
 * suggests paths lineage knows; files open on click; sizes in KB/MB; run ids are links to that run on the graph.
 */
import { IDatasetVersion, ILineageAttempt, ILineageTree, ITaskLineage, NbflowApi } from './api';
import { formatBytes, formatTime, h, linkButton, stateBadge } from './dom';
import { lineageGraph } from './lineageGraph';

export type LineageKind = 'task' | 'path';

/** What the lineage view asks of the panel. */
export interface ILineageHandlers {
  taskNames: () => string[];
  showRun: (run: string) => void;
  /** Open a project-relative file in JupyterLab. */
  openFile: (path: string) => void;
}

export class LineageView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-lineage' });
  private suggestTimer = 0;

  constructor(
    private api: NbflowApi,
    private handlers: ILineageHandlers
  ) {}

  /** Draw the form the first time the view is shown; pre-fill it with `task` when it is empty. */
  ensureForm(task: string | null = null): void {
    if (!this.node.firstChild) {
      this.renderForm();
    }
    const input = this.node.querySelector('.nbflow-lineage-target') as HTMLInputElement;
    if (task && !input.value) {
      void this.show('task', task);
    }
  }

  /** Fill the form with this target and show its lineage. */
  async show(kind: LineageKind, target: string): Promise<void> {
    this.ensureForm();
    (this.node.querySelector('.nbflow-lineage-kind') as HTMLSelectElement).value = kind;
    (this.node.querySelector('.nbflow-lineage-target') as HTMLInputElement).value = target;
    const out = this.node.querySelector('.nbflow-lineage-result') as HTMLElement;
    if (!target) {
      return;
    }
    out.replaceChildren(h('p', { class: 'nbflow-hint' }, 'Loading…'));
    try {
      const data = await this.api.lineage(kind === 'task' ? { task: target } : { path: target });
      out.replaceChildren(
        'task' in data ? this.taskLineage(data.task) : h('div', {}, this.tree(data.path), lineageGraph({ ...data.path }, this.handlers.openFile))
      );
    } catch (e) {
      out.replaceChildren(h('p', { class: 'nbflow-error' }, (e as Error).message));
    }
  }

  private renderForm(): void {
    const kind = h('select', { class: 'nbflow-lineage-kind' }, h('option', { value: 'task' }, 'Task'), h('option', { value: 'path' }, 'File'));
    const listId = `nbflow-lineage-${Math.random().toString(36).slice(2)}`;
    const list = h('datalist', { id: listId });
    const input = h('input', { type: 'text', class: 'nbflow-lineage-target', list: listId, placeholder: 'task name or data/file.csv' });
    const suggest = () => {
      window.clearTimeout(this.suggestTimer);
      this.suggestTimer = window.setTimeout(async () => {
        let options = this.handlers.taskNames();
        if (kind.value === 'path') {
          try {
            options = (await this.api.datasets(input.value.trim())).paths;
          } catch {
            options = [];
          }
        }
        list.replaceChildren(...options.map(o => h('option', { value: o })));
        list.setAttribute('data-count', String(options.length));
      }, 150);
    };
    input.addEventListener('input', suggest);
    input.addEventListener('focus', suggest);
    kind.addEventListener('change', suggest);
    const form = h('form', { class: 'nbflow-lineage-form' }, kind, input, list, h('button', { class: 'jp-Button nbflow-button', type: 'submit' }, 'Show lineage'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.show(kind.value as LineageKind, input.value.trim());
    });
    this.node.replaceChildren(form, h('div', { class: 'nbflow-lineage-result' }));
    suggest();
  }

  private taskLineage(t: ITaskLineage): HTMLElement {
    const a = t.attempt;
    const reads = h('ul', { class: 'nbflow-tree' }, ...t.reads.map(r => this.treeItem(r)));
    const writes = h('ul', { class: 'nbflow-tree' });
    for (const w of t.writes) {
      const consumers = h('ul', {}, ...w.consumers.map(c => h('li', {}, 'read by ', this.producerText(c))));
      writes.append(h('li', {}, this.datasetLabel(w), ' — ', this.producerText(w.producer), consumers));
    }
    const graphRoot: ILineageTree = { path: `task ${t.task}`, hash: '', size: null, version_id: -1, producer: null, inputs: t.reads };
    return h(
      'div',
      { class: 'nbflow-lineage-task' },
      h('h3', {}, `Task ${t.task}`),
      h('p', {}, 'Last succeeded attempt: ', this.runLink(a.run_id), ` #${a.number}, ${formatTime(a.started_at)}`),
      h('h4', {}, 'Upstream: what it read'),
      t.reads.length ? reads : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.'),
      h('h4', {}, 'Downstream: what it wrote, and who read it'),
      t.writes.length ? writes : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.'),
      t.reads.length ? lineageGraph(graphRoot, this.handlers.openFile) : null
    );
  }

  private tree(node: ILineageTree): HTMLElement {
    return h('ul', { class: 'nbflow-tree' }, this.treeItem(node));
  }

  private treeItem(node: ILineageTree): HTMLElement {
    const li = h('li', {}, this.datasetLabel(node), ' — ', this.producerText(node.producer));
    if (node.repeated) {
      li.append(' (shown above)');
    }
    if (node.inputs.length) {
      li.append(h('ul', {}, ...node.inputs.map(i => this.treeItem(i))));
    }
    return li;
  }

  private producerText(p: ILineageAttempt | null): HTMLElement {
    if (!p) {
      return h('span', { class: 'nbflow-hint' }, 'external input');
    }
    return h('span', {}, `${p.task} #${p.number} (`, stateBadge(p.status), ') in run ', this.runLink(p.run_id));
  }

  private runLink(id: string): HTMLElement {
    return linkButton(id, 'nbflow-run-link', () => this.handlers.showRun(id), 'Show this run on the graph');
  }

  /** A dataset version: its path (opens the file), short hash (the full one as tooltip) and size. */
  private datasetLabel(d: IDatasetVersion): HTMLElement {
    const hash = d.hash.slice(0, 12);
    return h(
      'span',
      { class: 'nbflow-dataset', 'data-path': d.path },
      linkButton(d.path, 'nbflow-open-file', () => this.handlers.openFile(d.path), `Open ${d.path}`),
      ' ',
      h('span', { class: 'nbflow-hash', title: d.hash }, hash ? `sha256:${hash}` : ''),
      d.size !== null ? h('span', { class: 'nbflow-size' }, ` ${formatBytes(d.size)}`) : ''
    );
  }
}
