/**
 * The Lineage tab: for a task, what its last succeeded attempt read and wrote (and who read that since);
 * for a file, the tree of versions it was made from. Each dataset shows its hash and the attempt that wrote it.
 */
import { IDatasetVersion, ILineageAttempt, ILineageTree, ITaskLineage, NbflowApi } from './api';
import { formatTime, h, stateBadge } from './dom';

export type LineageKind = 'task' | 'path';

/** What the lineage view asks of the panel. */
export interface ILineageHandlers {
  /** Task names offered as the form's suggestions. */
  taskNames: () => string[];
  /** Show this run on the graph. */
  showRun: (run: string) => void;
}

export class LineageView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-lineage' });

  constructor(
    private api: NbflowApi,
    private handlers: ILineageHandlers
  ) {}

  /** Draw the form the first time the view is shown. */
  ensureForm(): void {
    if (!this.node.firstChild) {
      this.renderForm();
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
      out.replaceChildren('task' in data ? this.taskLineage(data.task) : this.tree(data.path));
    } catch (e) {
      out.replaceChildren(h('p', { class: 'nbflow-error' }, (e as Error).message));
    }
  }

  private renderForm(): void {
    const kind = h('select', { class: 'nbflow-lineage-kind' }, h('option', { value: 'task' }, 'Task'), h('option', { value: 'path' }, 'File'));
    const listId = `nbflow-tasks-${Math.random().toString(36).slice(2)}`;
    const list = h('datalist', { id: listId });
    for (const name of this.handlers.taskNames()) {
      list.append(h('option', { value: name }));
    }
    const input = h('input', { type: 'text', class: 'nbflow-lineage-target', list: listId, placeholder: 'task name or data/file.csv' });
    const form = h('form', { class: 'nbflow-lineage-form' }, kind, input, list, h('button', { class: 'jp-Button nbflow-button', type: 'submit' }, 'Show lineage'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.show(kind.value as LineageKind, input.value.trim());
    });
    this.node.replaceChildren(form, h('div', { class: 'nbflow-lineage-result' }));
  }

  private taskLineage(t: ITaskLineage): HTMLElement {
    const a = t.attempt;
    const reads = h('ul', { class: 'nbflow-tree' });
    for (const r of t.reads) {
      reads.append(this.treeItem(r));
    }
    const writes = h('ul', { class: 'nbflow-tree' });
    for (const w of t.writes) {
      const consumers = h('ul', {});
      for (const c of w.consumers) {
        consumers.append(h('li', {}, 'read by ', this.producerText(c)));
      }
      writes.append(h('li', {}, datasetLabel(w), ' — ', this.producerText(w.producer), consumers));
    }
    return h(
      'div',
      { class: 'nbflow-lineage-task' },
      h('h3', {}, `Task ${t.task}`),
      h('p', {}, 'Last succeeded attempt: ', this.runLink(a.run_id), ` #${a.number}, ${formatTime(a.started_at)}`),
      h('h4', {}, 'Upstream: what it read'),
      t.reads.length ? reads : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.'),
      h('h4', {}, 'Downstream: what it wrote, and who read it'),
      t.writes.length ? writes : h('p', { class: 'nbflow-hint' }, 'Nothing recorded.')
    );
  }

  private tree(node: ILineageTree): HTMLElement {
    return h('ul', { class: 'nbflow-tree' }, this.treeItem(node));
  }

  private treeItem(node: ILineageTree): HTMLElement {
    const li = h('li', {}, datasetLabel(node), ' — ', this.producerText(node.producer));
    if (node.repeated) {
      li.append(' (shown above)');
    }
    if (node.inputs.length) {
      const ul = h('ul', {});
      for (const i of node.inputs) {
        ul.append(this.treeItem(i));
      }
      li.append(ul);
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
    const a = h('a', { class: 'nbflow-run-link', href: '#' }, id);
    a.addEventListener('click', ev => {
      ev.preventDefault();
      this.handlers.showRun(id);
    });
    return a;
  }
}

/** A dataset version: its path, short hash (the full one as tooltip) and size. */
function datasetLabel(d: IDatasetVersion): HTMLElement {
  const hash = d.hash.slice(0, 12);
  return h(
    'span',
    { class: 'nbflow-dataset', 'data-path': d.path },
    h('code', {}, d.path),
    ' ',
    h('span', { class: 'nbflow-hash', title: d.hash }, hash ? `sha256:${hash}` : ''),
    d.size !== null ? ` ${d.size} ${d.size === 1 ? 'byte' : 'bytes'}` : ''
  );
}
