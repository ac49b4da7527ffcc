/**
 * Editing dependencies from the graph (issue 16): drag from a task's handle to another task to give the dragged-to
 * task an `upstream:` tag; select an `upstream:` edge and press Delete (or right-click it) to remove the tag; an edge
 * made by reads:/writes: paths says which tags make it and opens those cells. Undo (Ctrl+Z, or the message's button)
 * applies the inverse edits.
 *
 * Where an edit goes: into the open document when JupyterLab has the notebook open (its shared model, so unsaved
 * edits are neither lost nor overwritten; a notebook with no unsaved changes is saved at once, one with unsaved
 * changes is left unsaved and the graph shows the edge dashed until it is saved); otherwise through the server's
 * `dependencies` / `notebook-tags` routes, which edit the file with nbformat and refuse a cycle. The graph's side
 * (handles, the drag line, the edge card) is depGraph.ts.
 */
import { NotebookPanel } from '@jupyterlab/notebook';

import { ApiError, IEdge, IPipeline, ITagEdit, NbflowApi } from './api';
import { button, h } from './dom';
import { GraphEditing } from './depGraph';
import { GraphView } from './graph';

/** What the editor needs from JupyterLab. */
export interface IDepHost {
  /** The open notebook widget of a file (path relative to the server root), or null. */
  findNotebook(path: string): NotebookPanel | null;
  /** Open a notebook and make one cell active, scrolled into view. */
  openCell(path: string, cell: number): Promise<void>;
}

/** What the editor needs from the panel. */
export interface IDepUi {
  pipeline(): IPipeline | null;
  /** Draw a pipeline the server answered with (edges pass through `overlay`). */
  show(p: IPipeline): void;
  refresh(): void;
  message(content: string | HTMLElement, level: 'error' | 'info', kind?: string): void;
}

/** A cell's tags as the shared model holds them. */
export function cellTags(panel: NotebookPanel, cell: number): string[] {
  const model = panel.content.model?.cells.get(cell);
  const tags = model?.getMetadata('tags');
  return Array.isArray(tags) ? (tags as string[]).slice() : [];
}

/** Change one cell's tags in the open document (its shared model: the user's other edits stay as they are). */
export function setCellTags(panel: NotebookPanel, cell: number, add: string[], remove: string[]): void {
  const model = panel.content.model?.cells.get(cell);
  if (!model) {
    throw new Error(`${panel.context.path} has no cell ${cell}`);
  }
  const tags = cellTags(panel, cell).filter(t => !remove.includes(t));
  for (const t of add) {
    if (!tags.includes(t)) {
      tags.push(t);
    }
  }
  if (tags.length) {
    model.setMetadata('tags', tags);
  } else {
    model.deleteMetadata('tags');
  }
}

/** Where a new `upstream:` tag goes (as the server's Project.edit_dependency chooses): the first cell with an
 * upstream: tag, else the parameters cell, else the first code cell. */
export function chooseCell(cells: Array<{ type: string; tags: string[] }>): number {
  const up = cells.findIndex(c => c.tags.some(t => t.startsWith('upstream:')));
  if (up >= 0) {
    return up;
  }
  const params = cells.findIndex(c => c.tags.includes('parameters'));
  return params >= 0 ? params : Math.max(0, cells.findIndex(c => c.type === 'code'));
}

/** The cycle that giving `to` the dependency `from` would make (`from → to → … → from`), or null. */
export function findCycle(edges: IEdge[], from: string, to: string): string[] | null {
  if (from === to) {
    return [from, from];
  }
  const next = new Map<string, string[]>();
  for (const e of edges) {
    next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  }
  const back = new Map<string, string>([[to, '']]);
  const queue = [to];
  while (queue.length) {
    const n = queue.shift() as string;
    if (n === from) {
      const path = [n];
      for (let p = back.get(n); p; p = back.get(p)) {
        path.unshift(p);
      }
      return [from, ...path];
    }
    for (const m of next.get(n) ?? []) {
      if (!back.has(m)) {
        back.set(m, n);
        queue.push(m);
      }
    }
  }
  return null;
}

/** A cycle as people read it. */
export function cycleText(cycle: string[]): string {
  return cycle.join(' → ');
}

export function vias(e: IEdge): string[] {
  return Array.isArray(e.via) ? e.via : [e.via];
}

/** One edit that can be undone: the cells it changed, each with its notebook (server-root-relative). */
interface IChange {
  label: string;
  steps: ITagEdit[];
}

interface IPending {
  source: string;
  target: string;
  add: boolean;
  path: string;
}

export class DependencyEditor {
  private undoStack: IChange[] = [];
  /** Edits made in open notebooks not yet saved: drawn over the server's pipeline until saved. */
  private pending = new Map<string, IPending>();
  private watched = new WeakSet<NotebookPanel>();
  private graph: GraphEditing | null = null;

  constructor(
    private api: NbflowApi,
    private host: IDepHost,
    private ui: IDepUi
  ) {}

  /** Hook the editor into a graph: handles on tasks, edge selection, Delete, the edge card (depGraph.ts). */
  attach(graph: GraphView): void {
    this.graph = new GraphEditing(graph, this, this.api, this.host, () => this.ui.pipeline());
  }

  /** Mark the drawn edges (call after each GraphView.show). */
  mark(): void {
    this.graph?.mark();
  }

  /** The server's edges with the unsaved edits of open notebooks drawn over them. */
  overlay(edges: IEdge[]): IEdge[] {
    for (const [key, p] of this.pending) {
      const doc = this.host.findNotebook(p.path);
      if (!doc || !doc.context.model.dirty) {
        this.pending.delete(key); // saved (the server has it now) or closed without saving (gone)
      }
    }
    let out = edges.slice();
    for (const p of this.pending.values()) {
      out = out.filter(e => !(e.source === p.source && e.target === p.target));
      if (p.add) {
        out.push({ source: p.source, target: p.target, via: ['upstream tag (unsaved)'] });
      }
    }
    return out;
  }

  /** Ctrl+Z: undo the last edit. */
  async undo(): Promise<void> {
    const change = this.undoStack.pop();
    if (!change) {
      this.ui.message('Nothing to undo.', 'info', 'dep-undo');
      return;
    }
    try {
      for (const s of change.steps.slice().reverse()) {
        await this.apply({ ...s, add: s.remove, remove: s.add });
      }
      this.ui.message(`Undone: ${change.label}.`, 'info', 'dep-undone');
    } catch (e) {
      this.ui.message(`Cannot undo ${change.label}: ${(e as Error).message}`, 'error', 'dep-error');
    }
    this.ui.refresh();
  }

  /** Give `to` the dependency `from` (an `upstream:from` tag in its notebook). */
  async addDependency(from: string, to: string): Promise<void> {
    const label = `${to} depends on ${from} (upstream:${from})`;
    const target = this.ui.pipeline()?.tasks.find(t => t.name === to);
    const doc = target?.path ? this.host.findNotebook(target.path) : null;
    try {
      if (doc && target?.path) {
        const cycle = findCycle(this.overlay(this.ui.pipeline()?.edges ?? []), from, to);
        if (cycle) {
          return this.refused(cycle, '');
        }
        const cells = this.cells(doc);
        if (cells.some(c => c.tags.includes(`upstream:${from}`))) {
          return this.ui.message(`${to} already has upstream:${from}.`, 'info', 'dep-noop');
        }
        const step = { notebook: target.path, cell: chooseCell(cells), add: [`upstream:${from}`], remove: [] };
        await this.inDocument(doc, step, { source: from, target: to, add: true, path: target.path });
        this.done({ label, steps: [step] }, doc);
      } else {
        const r = await this.api.editDependency(to, from, 'add');
        this.ui.show(r.pipeline);
        this.done({ label, steps: r.edits }, null);
      }
    } catch (e) {
      this.failed(e, `Cannot add upstream:${from} to ${to}`);
    }
  }

  /** Take the `upstream:` tag that makes an edge off its notebook. */
  async removeEdge(edge: IEdge): Promise<void> {
    const { source: from, target: to } = edge;
    if (!vias(edge).some(v => v.startsWith('upstream tag'))) {
      this.ui.message(`${from} → ${to} is made by ${vias(edge).join(', ')}, not an upstream: tag: open those cells to change it.`, 'info', 'dep-path');
      return;
    }
    const label = `${to} no longer depends on ${from} (upstream:${from} removed)`;
    const target = this.ui.pipeline()?.tasks.find(t => t.name === to);
    const doc = target?.path ? this.host.findNotebook(target.path) : null;
    this.graph?.closeCard();
    try {
      if (doc && target?.path) {
        const tag = `upstream:${from}`;
        const steps = this.cells(doc)
          .map((c, i) => ({ notebook: target.path as string, cell: i, add: [] as string[], remove: c.tags.includes(tag) ? [tag] : [] }))
          .filter(s => s.remove.length);
        if (!steps.length) {
          return this.ui.message(`${target.path} has no ${tag} tag (its unsaved version).`, 'info', 'dep-noop');
        }
        for (const s of steps) {
          await this.inDocument(doc, s, { source: from, target: to, add: false, path: target.path });
        }
        this.done({ label, steps }, doc);
      } else {
        const r = await this.api.editDependency(to, from, 'remove');
        this.ui.show(r.pipeline);
        this.done({ label, steps: r.edits }, null);
      }
    } catch (e) {
      this.failed(e, `Cannot remove upstream:${from} from ${to}`);
    }
  }

  private cells(doc: NotebookPanel): Array<{ type: string; tags: string[] }> {
    const out = [];
    const cells = doc.content.model?.cells;
    for (let i = 0; i < (cells?.length ?? 0); i++) {
      out.push({ type: cells?.get(i).type ?? 'code', tags: cellTags(doc, i) });
    }
    return out;
  }

  /** Apply one step where it belongs: the open document, else the server's route. */
  private async apply(step: ITagEdit): Promise<void> {
    const doc = this.host.findNotebook(step.notebook);
    if (doc) {
      const task = this.ui.pipeline()?.tasks.find(t => t.path === step.notebook)?.name ?? '';
      const tag = [...step.add, ...step.remove].find(t => t.startsWith('upstream:'));
      const pend = tag ? { source: tag.slice(9), target: task, add: step.add.includes(tag), path: step.notebook } : null;
      await this.inDocument(doc, step, pend);
    } else {
      this.ui.show(await this.api.editTags(step));
    }
  }

  /** Edit the open document; save it when it had no unsaved changes, else leave it unsaved and draw the edge over. */
  private async inDocument(doc: NotebookPanel, step: ITagEdit, pend: IPending | null): Promise<void> {
    const wasDirty = doc.context.model.dirty;
    setCellTags(doc, step.cell, step.add, step.remove);
    if (!wasDirty) {
      await doc.context.save();
      return;
    }
    if (pend) {
      this.pending.set(`${pend.source}>${pend.target}`, pend);
    }
    if (!this.watched.has(doc)) {
      this.watched.add(doc);
      doc.context.saveState.connect((_, state) => state === 'completed' && this.ui.refresh());
      doc.disposed.connect(() => this.ui.refresh());
    }
    const p = this.ui.pipeline();
    if (p) {
      this.ui.show(p);
    }
  }

  private done(change: IChange, doc: NotebookPanel | null): void {
    if (!change.steps.length) {
      this.ui.message(`Nothing to change: ${change.label} already.`, 'info', 'dep-noop');
      return;
    }
    this.undoStack.push(change);
    const cells = change.steps.map(s => `cell ${s.cell}`).join(', ');
    const where = doc
      ? doc.context.model.dirty
        ? ` in ${doc.context.path}, ${cells} (open, with unsaved changes: save it to make it part of the pipeline)`
        : ` in ${doc.context.path}, ${cells} (open; saved)`
      : ` in ${change.steps[0].notebook}, ${cells}`;
    const undo = button('Undo', 'nbflow-undo-button', () => void this.undo());
    undo.title = 'Undo this edit (Ctrl+Z)';
    this.ui.message(h('span', { class: 'nbflow-dep-message' }, `${change.label}${where}. `, undo), 'info', 'dep-edited');
    this.ui.refresh();
  }

  /** A refused edit: the cycle on its own line, then the server's explanation (which tags make it, the fix). */
  private refused(cycle: string[], text: string): void {
    const detail = text.split('\n').slice(1).join('\n');
    const shown = h('span', { class: 'nbflow-dep-message' }, 'Refused, nothing was written: the change would make a dependency cycle.',
      h('div', { class: 'nbflow-cycle' }, `Cycle: ${cycleText(cycle)}`), detail ? h('div', { class: 'nbflow-cycle-detail' }, detail) : null);
    this.ui.message(shown, 'error', 'dep-cycle');
  }

  private failed(e: unknown, what: string): void {
    const err = e as ApiError;
    if (err.status === 409 && Array.isArray(err.body?.cycle)) {
      this.refused(err.body.cycle as string[], err.message);
    } else {
      this.ui.message(`${what}: ${err.message}`, 'error', 'dep-error');
    }
  }
}
