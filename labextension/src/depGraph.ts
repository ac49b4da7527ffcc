/**
 * The graph's side of dependency editing (depEdit.ts does the edits): a handle on each task to drag a new dependency
 * from, edge selection (click; Delete removes an upstream: edge), and the edge card (click or right click) saying
 * what makes an edge, with Remove for an upstream: tag and buttons opening the reads:/writes: cells.
 */
import { IEdge, IPipeline, NbflowApi } from './api';
import { DependencyEditor, IDepHost, vias } from './depEdit';
import { button, h } from './dom';
import { GraphView } from './graph';

const SVG = 'http://www.w3.org/2000/svg';

export class GraphEditing {
  private selectedEdge: IEdge | null = null;
  private svg: SVGSVGElement | null = null;
  private card = h('div', { class: 'nbflow-edge-card', role: 'dialog' });

  constructor(
    graph: GraphView,
    private editor: DependencyEditor,
    private api: NbflowApi,
    private host: IDepHost,
    private pipeline: () => IPipeline | null
  ) {
    this.card.hidden = true;
    graph.node.append(this.card);
    graph.onDrawn = svg => this.decorate(graph, svg);
    const canvas = graph.viewport.canvas;
    canvas.addEventListener('keydown', ev => {
      if ((ev.key === 'Delete' || ev.key === 'Backspace') && this.selectedEdge) {
        ev.preventDefault();
        void this.editor.removeEdge(this.selectedEdge);
      } else if (ev.key === 'Escape') {
        this.closeCard();
      }
    });
    canvas.addEventListener('click', ev => {
      if (!(ev.target as Element).closest('.nbflow-edge-group') && !graph.viewport.dragged) {
        this.selectEdge(graph, null);
      }
    });
  }

  private decorate(graph: GraphView, svg: SVGSVGElement): void {
    this.selectedEdge = null;
    this.closeCard();
    const tb = svg.getAttribute('data-rankdir') === 'TB';
    for (const g of Array.from(svg.querySelectorAll<SVGGElement>('.nbflow-node[data-task]'))) {
      const rect = g.querySelector('rect') as SVGRectElement;
      const w = Number(rect.getAttribute('width'));
      const hgt = Number(rect.getAttribute('height'));
      const handle = document.createElementNS(SVG, 'circle');
      handle.setAttribute('class', 'nbflow-handle');
      handle.setAttribute('cx', String(tb ? w / 2 : w));
      handle.setAttribute('cy', String(tb ? hgt : hgt / 2));
      handle.setAttribute('r', '6');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = 'Drag to another task to make it depend on this one (adds upstream: to it)';
      handle.append(title);
      handle.addEventListener('pointerdown', ev => this.dragFrom(graph, svg, g, handle, ev));
      handle.addEventListener('click', ev => ev.stopPropagation());
      g.append(handle);
    }
    for (const group of Array.from(svg.querySelectorAll<SVGGElement>('.nbflow-edge-group'))) {
      group.addEventListener('click', ev => {
        const edge = this.edgeOf(group);
        if (edge && !graph.viewport.dragged) {
          ev.stopPropagation();
          graph.viewport.canvas.focus();
          this.selectEdge(graph, edge, ev);
        }
      });
      group.addEventListener('contextmenu', ev => {
        const edge = this.edgeOf(group);
        if (edge) {
          ev.preventDefault();
          ev.stopPropagation();
          graph.viewport.canvas.focus();
          this.selectEdge(graph, edge, ev);
        }
      });
    }
    this.svg = svg;
    this.mark();
  }

  /** The edge a drawn edge group stands for (null: an edge between collapsed folders). */
  private edgeOf(group: Element): IEdge | null {
    const s = group.getAttribute('data-source');
    const t = group.getAttribute('data-target');
    return this.editor.overlay(this.pipeline()?.edges ?? []).find(e => e.source === s && e.target === t) ?? null;
  }

  /** Mark each drawn edge by what makes it (an upstream: tag, a path) and whether it is an unsaved edit; call after
   * each GraphView.show (a redraw happens only when the graph's shape changes). */
  mark(): void {
    for (const group of Array.from(this.svg?.querySelectorAll<SVGGElement>('.nbflow-edge-group') ?? [])) {
      const edge = this.edgeOf(group);
      if (edge) {
        group.setAttribute('data-via', vias(edge).some(v => v.startsWith('upstream tag')) ? 'upstream' : 'path');
        group.toggleAttribute('data-unsaved', vias(edge).some(v => v.includes('unsaved')));
      }
    }
  }

  private selectEdge(graph: GraphView, edge: IEdge | null, ev?: MouseEvent): void {
    this.selectedEdge = edge;
    for (const g of Array.from(graph.node.querySelectorAll('.nbflow-edge-group'))) {
      g.classList.toggle('nbflow-edge-selected', !!edge && g.getAttribute('data-source') === edge.source && g.getAttribute('data-target') === edge.target);
    }
    if (!edge || !ev) {
      this.closeCard();
      return;
    }
    const box = graph.node.getBoundingClientRect();
    this.card.style.left = `${Math.min(ev.clientX - box.left + 8, box.width - 330)}px`;
    this.card.style.top = `${ev.clientY - box.top + 8}px`;
    void this.fillCard(edge);
  }

  closeCard(): void {
    this.card.hidden = true;
    this.card.replaceChildren();
  }

  /** What makes an edge, with its cells to open; Remove for an upstream: tag. */
  private async fillCard(edge: IEdge): Promise<void> {
    const p = this.pipeline();
    const path = (task: string) => p?.tasks.find(t => t.name === task)?.path ?? null;
    const close = button('×', 'nbflow-edge-card-close', () => this.closeCard());
    close.title = 'Close (Esc)';
    this.card.replaceChildren(h('div', { class: 'nbflow-edge-card-title' }, `${edge.source} → ${edge.target}`, close));
    this.card.setAttribute('data-source', edge.source);
    this.card.setAttribute('data-target', edge.target);
    this.card.hidden = false;
    const open = (label: string, notebook: string | null, cell: number | undefined): HTMLElement =>
      notebook !== null && cell !== undefined ? button(label, 'nbflow-open-cell', () => void this.host.openCell(notebook, cell)) : h('span', {});
    const [src, dst] = await Promise.all(
      [edge.source, edge.target].map(t => (path(t) ? this.api.notebookTags(path(t) as string).catch(() => null) : Promise.resolve(null)))
    );
    for (const via of vias(edge)) {
      const row = h('div', { class: 'nbflow-edge-card-row' });
      if (via.startsWith('upstream tag')) {
        const cell = dst?.upstream_cells.find(c => c.task === edge.source)?.cell;
        const unsaved = via.includes('unsaved') ? ' (unsaved)' : '';
        row.append(
          h('div', {}, `tag upstream:${edge.source} in ${dst?.relpath ?? edge.target}${cell !== undefined ? `, cell ${cell}` : ''}${unsaved}`),
          button('Remove dependency', 'nbflow-remove-dep', () => void this.editor.removeEdge(edge)),
          open('Open cell', path(edge.target), cell)
        );
      } else if (via.startsWith('path ')) {
        const file = via.slice(5);
        const same = (a: string) => a === file || file.endsWith('/' + a) || a.endsWith('/' + file);
        const w = src?.writes.find(x => same(x.path)) ?? src?.writes[0];
        const r = dst?.reads.find(x => same(x.path)) ?? dst?.reads[0];
        row.append(
          h('div', {}, `made by the file ${file}: writes:${w?.path ?? file} in ${src?.relpath ?? edge.source}${w ? `, cell ${w.cell}` : ''} → ` +
            `reads:${r?.path ?? file} in ${dst?.relpath ?? edge.target}${r ? `, cell ${r.cell}` : ''}. Change those tags to change it.`),
          open('Open writes: cell', path(edge.source), w?.cell),
          open('Open reads: cell', path(edge.target), r?.cell)
        );
      } else {
        const cell = dst?.parameters_cell ?? undefined;
        row.append(h('div', {}, `${via}: declared in ${dst?.relpath ?? edge.target}'s parameters cell.`), open('Open cell', path(edge.target), cell));
      }
      this.card.append(row);
    }
  }

  /** Drag a line from a task's handle; dropping it on another task gives that task the dependency. */
  private dragFrom(graph: GraphView, svg: SVGSVGElement, node: SVGGElement, handle: SVGCircleElement, ev: PointerEvent): void {
    if (ev.button !== 0) {
      return;
    }
    ev.stopPropagation();
    ev.preventDefault();
    const from = node.getAttribute('data-task') as string;
    const layer = node.parentNode as SVGGElement;
    const toLocal = (x: number, y: number) => new DOMPoint(x, y).matrixTransform(layer.getScreenCTM()?.inverse());
    const start = toLocal(ev.clientX, ev.clientY);
    const line = document.createElementNS(SVG, 'line');
    line.setAttribute('class', 'nbflow-drag-line');
    line.setAttribute('x1', String(start.x));
    line.setAttribute('y1', String(start.y));
    line.setAttribute('x2', String(start.x));
    line.setAttribute('y2', String(start.y));
    layer.append(line);
    svg.classList.add('nbflow-mod-linking');
    let over: SVGGElement | null = null;
    const under = (e: PointerEvent) => {
      const hit = document.elementFromPoint(e.clientX, e.clientY)?.closest('.nbflow-node[data-task]') as SVGGElement | null;
      return hit && hit !== node ? hit : null;
    };
    const move = (e: PointerEvent) => {
      const p = toLocal(e.clientX, e.clientY);
      line.setAttribute('x2', String(p.x));
      line.setAttribute('y2', String(p.y));
      over?.classList.remove('nbflow-drop-target');
      over = under(e);
      over?.classList.add('nbflow-drop-target');
    };
    const up = (e: PointerEvent) => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      line.remove();
      svg.classList.remove('nbflow-mod-linking');
      over?.classList.remove('nbflow-drop-target');
      const to = under(e)?.getAttribute('data-task');
      if (to) {
        void this.editor.addDependency(from, to);
      }
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    void handle;
  }
}
