/**
 * A read-only rendering of an executed notebook (its JSON from `GET notebook`), with JupyterLab's rendermime:
 * markdown, code and every output (figures, tables, text) as untrusted content, so no script runs and no kernel
 * starts. Used for the task detail's inline preview and for watching a running notebook.
 */
import { OutputAreaModel, SimplifiedOutputArea } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';

import { h } from './dom';

/** Papermill's per-cell status in a (possibly still running) executed notebook: done cells, the running one. */
export function cellProgress(nb: { cells: any[] }): { cell: number; cells: number; since: number | null } {
  const code = nb.cells.filter(c => c.cell_type === 'code' && !(c.metadata?.tags ?? []).includes('injected-parameters'));
  let done = 0;
  let since: number | null = null;
  for (const c of code) {
    const pm = c.metadata?.papermill ?? {};
    if (pm.status === 'completed') {
      done++;
    } else if (pm.status === 'running') {
      since = pm.start_time ? Date.parse(pm.start_time) / 1000 : null;
    }
  }
  return { cell: Math.min(done + 1, code.length), cells: code.length, since };
}

export class NotebookPreview {
  readonly node = h('div', { class: 'nbflow-preview' });
  private areas: SimplifiedOutputArea[] = [];

  constructor(private rendermime: IRenderMimeRegistry | null) {}

  clear(): void {
    for (const a of this.areas) {
      a.dispose();
    }
    this.areas = [];
    this.node.replaceChildren();
  }

  /** Render the notebook's cells (replacing what was shown). */
  async render(nb: { cells: any[] }): Promise<void> {
    const old = this.areas;
    this.areas = [];
    const cells: HTMLElement[] = [];
    let index = 0;
    for (const cell of nb.cells) {
      const source = Array.isArray(cell.source) ? cell.source.join('') : String(cell.source ?? '');
      const tags: string[] = cell.metadata?.tags ?? [];
      const box = h('div', { class: `nbflow-preview-cell nbflow-preview-${cell.cell_type}`, 'data-index': String(index++) });
      if (cell.cell_type === 'markdown' && this.rendermime) {
        const renderer = this.rendermime.createRenderer('text/markdown');
        await renderer.renderModel(new MimeModel({ data: { 'text/markdown': source }, trusted: false }));
        box.append(renderer.node);
      } else if (cell.cell_type === 'code') {
        const status = cell.metadata?.papermill?.status;
        const prompt = cell.execution_count ? `[${cell.execution_count}]` : status === 'running' ? '[*]' : '[ ]';
        box.setAttribute('data-status', status ?? '');
        box.append(h('div', { class: 'nbflow-preview-input' }, h('span', { class: 'nbflow-preview-prompt' }, prompt), h('pre', {}, source)));
        if (tags.length) {
          box.append(h('div', { class: 'nbflow-preview-tags' }, tags.join(' · ')));
        }
        if (cell.outputs?.length && this.rendermime) {
          const model = new OutputAreaModel({ values: cell.outputs, trusted: false });
          const area = new SimplifiedOutputArea({ model, rendermime: this.rendermime });
          this.areas.push(area);
          box.append(area.node);
        }
      } else {
        box.append(h('pre', {}, source));
      }
      cells.push(box);
    }
    this.node.replaceChildren(...cells);
    for (const a of old) {
      a.dispose();
    }
  }
}
