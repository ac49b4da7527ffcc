/**
 * The "pipeline" sidebar of the notebook editor (issue 16): for the current notebook, its task name, upstream and
 * downstream tasks, its parameters/check/reads/writes/upstream cells (click to jump), its state in the latest run,
 * and a tag editor for the active cell that completes task names (upstream:) and paths other tasks write (reads:).
 * Tags are written into the open document (depEdit.ts: saved at once when it had no unsaved changes).
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ApiError, INotebookTags, IPipeline, NbflowApi } from './api';
import { cellTags, cycleText, findCycle, setCellTags } from './depEdit';
import { button, h, stateBadge } from './dom';

const MAX_SUGGESTIONS = 12;

/** Make one cell of an open notebook active and scroll it into view. */
export async function jumpToCell(panel: NotebookPanel, cell: number): Promise<void> {
  const nb = panel.content;
  nb.activeCellIndex = cell;
  nb.mode = 'command';
  await nb.scrollToItem(cell, 'center');
  nb.activeCell?.node.focus();
}

export class PipelineSidebar extends Widget {
  private current: NotebookPanel | null = null;
  private info: INotebookTags | null = null;
  private pipeline: IPipeline | null = null;
  private loading = 0;
  private header = h('div', { class: 'nbflow-side-header' });
  private body = h('div', { class: 'nbflow-side-body' });
  private editor = h('div', { class: 'nbflow-side-tags' });
  private input = h('input', { class: 'jp-mod-styled nbflow-tag-input', type: 'text', placeholder: 'Add a tag… (upstream:, reads:, writes:, parameters, check)' });
  private suggestions = h('ul', { class: 'nbflow-tag-suggestions', role: 'listbox' });
  private note = h('div', { class: 'nbflow-side-note', role: 'status' });
  private highlighted = -1;
  private followed = new WeakSet<NotebookPanel>();

  constructor(
    tracker: INotebookTracker,
    private openNotebook: (path: string) => void,
    icon: LabIcon
  ) {
    super();
    this.id = 'nbflow-pipeline-sidebar';
    this.addClass('nbflow-sidebar');
    this.title.icon = icon;
    this.title.caption = 'Pipeline: this notebook as a task';
    this.suggestions.hidden = true;
    this.input.addEventListener('input', () => this.suggest());
    this.input.addEventListener('focus', () => this.suggest());
    this.input.addEventListener('blur', () => setTimeout(() => (this.suggestions.hidden = true), 150));
    this.input.addEventListener('keydown', ev => this.key(ev));
    this.node.append(this.header, this.body, h('div', { class: 'nbflow-side-section' }, h('h3', {}, 'Tags of the active cell'), this.editor,
      h('div', { class: 'nbflow-tag-field' }, this.input, this.suggestions), this.note));
    tracker.currentChanged.connect(() => this.follow(tracker.currentWidget));
    this.follow(tracker.currentWidget);
    void this.watch();
  }

  /** Follow the store while shown: a run's state changes show without switching notebooks (long-poll `changes`). */
  private async watch(): Promise<void> {
    while (!this.isDisposed) {
      const project = this.info?.project;
      const since = this.pipeline?.event_id;
      if (project === undefined || since === undefined || !this.isVisible) {
        await new Promise(resolve => setTimeout(resolve, 1000));
        continue;
      }
      try {
        const r = await new NbflowApi(project).changes(since, 20, '');
        if (r.changed && project === this.info?.project) {
          await this.load();
        }
      } catch {
        await new Promise(resolve => setTimeout(resolve, 2000));
      }
    }
  }

  protected onAfterShow(): void {
    void this.load();
  }

  private follow(panel: NotebookPanel | null): void {
    if (panel === this.current) {
      return;
    }
    this.current = panel;
    this.info = null;
    this.say('', 'info');
    if (!panel) {
      this.render();
      return;
    }
    if (!this.followed.has(panel)) {
      this.followed.add(panel);
      panel.content.activeCellChanged.connect(() => panel === this.current && this.renderTags());
      panel.content.model?.contentChanged.connect(() => panel === this.current && this.renderTags()); // tags set elsewhere too
      panel.context.saveState.connect((_, s) => s === 'completed' && panel === this.current && void this.load());
      panel.context.pathChanged.connect(() => panel === this.current && void this.load());
    }
    void panel.context.ready.then(() => {
      if (panel === this.current) {
        void this.load();
      }
    });
    this.render();
  }

  /** Fetch the notebook as a task (from the file on disk) and the latest run's states. */
  private async load(): Promise<void> {
    const panel = this.current;
    if (!panel) {
      return;
    }
    const seq = ++this.loading;
    const path = panel.context.path.replace(/^[^/:]+:/, ''); // a drive prefix, if any
    try {
      const info = await new NbflowApi('').notebookTags(path);
      const pipeline = await new NbflowApi(info.project).pipeline(null).catch(() => null);
      if (seq === this.loading && panel === this.current) {
        this.info = info;
        this.pipeline = pipeline;
        this.render();
      }
    } catch (e) {
      if (seq === this.loading && panel === this.current) {
        this.info = null;
        this.render((e as ApiError).message);
      }
    }
  }

  private render(error = ''): void {
    const info = this.info;
    this.node.toggleAttribute('data-task', !!info);
    if (info) {
      this.node.setAttribute('data-task', info.task);
    }
    if (!this.current || !info) {
      const text = !this.current ? 'Open a notebook to see it as a pipeline task.' : error ? `Not a pipeline task: ${error}` : 'Loading…';
      this.header.replaceChildren(h('div', { class: 'nbflow-side-empty' }, text));
      this.body.replaceChildren();
      this.renderTags();
      return;
    }
    const task = this.pipeline?.tasks.find(t => t.name === info.task);
    const run = this.pipeline?.run;
    this.header.replaceChildren(
      h('div', { class: 'nbflow-side-task' }, h('span', { class: 'nbflow-side-label' }, 'Task '), h('b', { class: 'nbflow-side-name' }, info.task),
        ' ', stateBadge(task?.state ?? 'pending')),
      h('div', { class: 'nbflow-side-run' }, run ? `latest run ${run.id} (${run.status})` : 'never run'),
      h('div', { class: 'nbflow-side-project' }, `project ${info.project || '.'} · ${info.relpath} · ${info.format}${info.ploomber ? ` · Ploomber (${info.ploomber})` : ''}`)
    );
    const taskLinks = (names: string[]) =>
      names.length
        ? names.map(n => {
            const path = this.pipeline?.tasks.find(t => t.name === n)?.path;
            const b = button(n, 'nbflow-side-link nbflow-side-task-link', () => path && this.openNotebook(path));
            b.title = path ? `Open ${path}` : n;
            return b;
          })
        : [h('span', { class: 'nbflow-side-none' }, 'none')];
    const cells: Array<[string, number]> = [];
    if (info.parameters_cell !== null) {
      cells.push(['parameters', info.parameters_cell]);
    }
    for (const u of info.upstream_cells) {
      cells.push([`upstream:${u.task}`, u.cell]);
    }
    for (const r of info.reads) {
      cells.push([`reads:${r.path}`, r.cell]);
    }
    for (const w of info.writes) {
      cells.push([`writes:${w.path}`, w.cell]);
    }
    for (const c of info.check_cells) {
      cells.push(['check', c]);
    }
    const list = h('ul', { class: 'nbflow-side-cells' });
    for (const [label, cell] of cells) {
      const b = button(`${label}`, 'nbflow-side-link nbflow-side-cell', () => this.current && void jumpToCell(this.current, cell));
      b.setAttribute('data-cell', String(cell));
      b.title = `Go to cell ${cell}`;
      list.append(h('li', {}, b, h('span', { class: 'nbflow-side-cellno' }, ` cell ${cell}`)));
    }
    this.body.replaceChildren(
      h('div', { class: 'nbflow-side-section nbflow-side-upstream' }, h('h3', {}, 'Upstream'), ...taskLinks(info.upstream)),
      h('div', { class: 'nbflow-side-section nbflow-side-downstream' }, h('h3', {}, 'Downstream'), ...taskLinks(info.downstream)),
      h('div', { class: 'nbflow-side-section' }, h('h3', {}, 'Cells'), cells.length ? list : h('span', { class: 'nbflow-side-none' }, 'no tagged cells'))
    );
    this.renderTags();
  }

  private renderTags(): void {
    const panel = this.current;
    const index = panel?.content.activeCellIndex ?? -1;
    this.input.disabled = !panel || index < 0 || !this.info;
    if (!panel || index < 0) {
      this.editor.replaceChildren();
      return;
    }
    const tags = cellTags(panel, index);
    this.editor.setAttribute('data-cell', String(index));
    this.editor.replaceChildren(
      h('span', { class: 'nbflow-side-label' }, `Cell ${index}: `),
      ...(tags.length
        ? tags.map(t => {
            const remove = button('×', 'nbflow-tag-remove', () => void this.edit([], [t]));
            remove.title = `Remove the tag ${t}`;
            return h('span', { class: 'nbflow-tag-chip', 'data-tag': t }, t, remove);
          })
        : [h('span', { class: 'nbflow-side-none' }, 'no tags')])
    );
  }

  /** What the input could become: task names after upstream:, written paths after reads:, the tag kinds. */
  private candidates(): string[] {
    const info = this.info;
    if (!info) {
      return [];
    }
    const current = this.current ? cellTags(this.current, this.current.content.activeCellIndex) : [];
    const all = [
      ...info.tasks.filter(t => t !== info.task).map(t => `upstream:${t}`),
      ...info.written.map(p => `reads:${p}`),
      'parameters',
      'check',
      'writes:',
      'retries:',
      'timeout:'
    ];
    const q = this.input.value.trim().toLowerCase();
    return all.filter(c => !current.includes(c) && (!q || c.toLowerCase().includes(q))).slice(0, MAX_SUGGESTIONS);
  }

  private suggest(): void {
    const found = this.candidates();
    this.highlighted = -1;
    this.suggestions.replaceChildren(
      ...found.map(c => {
        const li = h('li', { class: 'nbflow-tag-suggestion', role: 'option', 'data-value': c }, c);
        li.addEventListener('mousedown', ev => {
          ev.preventDefault(); // keep the focus in the input
          this.accept(c);
        });
        return li;
      })
    );
    this.suggestions.hidden = !found.length || document.activeElement !== this.input;
  }

  private key(ev: KeyboardEvent): void {
    const items = Array.from(this.suggestions.children);
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      this.highlighted = Math.max(0, Math.min(items.length - 1, this.highlighted + (ev.key === 'ArrowDown' ? 1 : -1)));
      items.forEach((li, i) => li.classList.toggle('nbflow-mod-highlighted', i === this.highlighted));
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      const picked = this.highlighted >= 0 ? items[this.highlighted]?.getAttribute('data-value') : null;
      this.accept(picked ?? this.input.value.trim());
    } else if (ev.key === 'Escape') {
      this.suggestions.hidden = true;
    }
    ev.stopPropagation(); // the notebook's shortcuts (a, b, dd...) must not act on what is typed here
  }

  private accept(value: string): void {
    if (value.endsWith(':')) {
      this.input.value = value; // a kind: go on typing its value
      this.suggest();
      return;
    }
    if (value) {
      this.input.value = '';
      this.suggestions.hidden = true;
      void this.edit([value], []);
    }
  }

  /** Change the active cell's tags in the open document; an upstream: tag that would make a cycle is refused. */
  private async edit(add: string[], remove: string[]): Promise<void> {
    const panel = this.current;
    const info = this.info;
    if (!panel || !info) {
      return;
    }
    const cell = panel.content.activeCellIndex;
    for (const tag of add.filter(t => t.startsWith('upstream:'))) {
      const up = tag.slice(9);
      if (!info.tasks.includes(up)) {
        return this.say(`upstream:${up} names no task. Tasks: ${info.tasks.join(', ')}`, 'error');
      }
      const cycle = findCycle(this.pipeline?.edges ?? [], up, info.task);
      if (cycle) {
        return this.say(`Refused: upstream:${up} would make a dependency cycle: ${cycleText(cycle)}`, 'error');
      }
    }
    const wasDirty = panel.context.model.dirty;
    setCellTags(panel, cell, add, remove);
    this.renderTags();
    if (!wasDirty) {
      await panel.context.save();
      this.say(`${add.length ? `Added ${add.join(', ')}` : `Removed ${remove.join(', ')}`} (cell ${cell}; saved).`, 'info');
    } else {
      this.say(`${add.length ? `Added ${add.join(', ')}` : `Removed ${remove.join(', ')}`} (cell ${cell}); save the notebook to make it part of the pipeline.`, 'info');
    }
  }

  private say(text: string, level: 'info' | 'error'): void {
    this.note.textContent = text;
    this.note.setAttribute('data-level', level);
  }
}
