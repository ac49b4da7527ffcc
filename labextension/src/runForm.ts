/**
 * The "Run…" form: each parameter pre-filled with the value the run will use (run_date = today), its type and the
 * notebooks that declare it; which tasks; force; queue behind a running run; the executor (local or Dask). "Dry run" shows each task's decision
 * and reason before anything starts; a refused field is highlighted.
 */
import { ApiError, IDryRun, IParameterField, IPipeline, IRunRequest, IStartedRun, NbflowApi } from './api';
import { button, h } from './dom';
import { ExecutorChoice } from './executorChoice';

export class RunForm {
  readonly node = h('form', { class: 'nbflow-run-form' });
  private fields: IParameterField[] = [];
  private executor = new ExecutorChoice(null);

  /** `onStarted` is awaited before the form's Start button is enabled again. */
  constructor(
    private api: NbflowApi,
    private onStarted: (run: IStartedRun) => Promise<void>
  ) {
    this.node.hidden = true;
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.start();
    });
  }

  /** Close the form, or open it afresh for this pipeline. */
  async toggle(pipeline: IPipeline | null): Promise<void> {
    if (!this.node.hidden) {
      this.node.hidden = true;
      return;
    }
    try {
      const answer = await this.api.parameters();
      this.fields = answer.fields;
      this.executor = new ExecutorChoice(answer.executor ?? null);
    } catch (e) {
      this.fields = Object.entries(pipeline?.parameters ?? {}).map(([name, value]) => ({
        name, value, type: typeof value, declared_in: [], source: 'notebook', default: value, editable: true
      }));
    }
    this.render(pipeline);
    this.node.hidden = false;
  }

  private render(p: IPipeline | null): void {
    const fields = h('fieldset', { class: 'nbflow-params' }, h('legend', {}, 'Parameters (the values this run will use)'));
    for (const f of this.fields.filter(x => x.editable)) {
      const id = `nbflow-param-${f.name}`;
      let input: HTMLInputElement;
      if (f.type === 'bool') {
        input = h('input', { type: 'checkbox', name: f.name, id, 'data-kind': 'boolean' });
        input.checked = f.value === true;
      } else {
        const kind = f.type === 'int' || f.type === 'float' ? 'number' : f.type === 'str' ? 'string' : 'json';
        input = h('input', { type: 'text', name: f.name, id, 'data-kind': kind });
        input.value = kind === 'json' ? JSON.stringify(f.value) : String(f.value ?? '');
      }
      input.setAttribute('data-default', JSON.stringify(f.value));
      input.classList.add('nbflow-param');
      input.addEventListener('input', () => input.classList.remove('nbflow-mod-refused'));
      const where =
        f.source === 'run'
          ? 'set by every run'
          : f.source === 'config'
            ? 'nbflow.toml'
            : f.declared_in.length > 2
              ? `${f.declared_in.slice(0, 2).join(', ')} +${f.declared_in.length - 2}`
              : f.declared_in.join(', ');
      const note = f.name === 'run_date' && f.default !== undefined && f.default !== f.value ? ` (notebook default ${JSON.stringify(f.default)})` : '';
      fields.append(
        h('label', { for: id, title: f.declared_in.join('\n') }, f.name),
        input,
        h('span', { class: 'nbflow-param-meta', title: f.declared_in.join('\n') }, h('span', { class: 'nbflow-type' }, f.type), ` ${where}${note}`)
      );
    }
    if (!this.fields.some(x => x.editable)) {
      fields.append(h('p', { class: 'nbflow-hint' }, 'No parameters cells in this pipeline.'));
    }
    const tasks = h('fieldset', { class: 'nbflow-only' }, h('legend', {}, 'Only these tasks (none checked: all)'));
    for (const t of p?.tasks ?? []) {
      const box = h('input', { type: 'checkbox', value: t.name, class: 'nbflow-only-task' });
      tasks.append(h('label', {}, box, ` ${t.name}`));
    }
    const force = h('input', { type: 'checkbox', class: 'nbflow-force' });
    const queue = h('input', { type: 'checkbox', class: 'nbflow-queue' });
    queue.checked = p?.run?.status === 'running';
    const start = h('button', { class: 'jp-Button jp-mod-accept nbflow-button nbflow-start', type: 'submit' }, 'Start run');
    const dry = button('Dry run', 'nbflow-dry-run', () => void this.dryRun());
    const close = button('Close', 'nbflow-close-form', () => (this.node.hidden = true));
    this.node.replaceChildren(
      fields,
      tasks,
      h(
        'div',
        { class: 'nbflow-form-row' },
        h('label', {}, force, ' Force (re-run tasks that are up to date)'),
        h('label', { title: 'If a run of this project is going, start this one when it ends' }, queue, ' Queue if a run is going'),
        this.executor.node,
        dry,
        start,
        close
      ),
      h('div', { class: 'nbflow-form-message', role: 'alert' }),
      h('div', { class: 'nbflow-dry-result' })
    );
  }

  /** The request the form describes; throws on a value that does not parse, naming (and marking) the parameter. */
  private read(): IRunRequest {
    const parameters: Record<string, unknown> = {};
    for (const input of Array.from(this.node.querySelectorAll<HTMLInputElement>('input.nbflow-param'))) {
      const kind = input.getAttribute('data-kind');
      const original = JSON.parse(input.getAttribute('data-default') ?? 'null');
      let value: unknown;
      const refuse = (why: string) => {
        input.classList.add('nbflow-mod-refused');
        return new Error(`parameter ${input.name}: ${why}`);
      };
      if (kind === 'boolean') {
        value = input.checked;
      } else if (kind === 'number') {
        value = Number(input.value);
        if (input.value.trim() === '' || Number.isNaN(value)) {
          throw refuse(`'${input.value}' is not a number`);
        }
      } else if (kind === 'json') {
        try {
          value = JSON.parse(input.value);
        } catch {
          throw refuse(`'${input.value}' is not valid JSON`);
        }
      } else {
        value = input.value;
      }
      if (JSON.stringify(value) !== JSON.stringify(original) || input.name === 'run_date') {
        parameters[input.name] = value; // what the user changed, and run_date as shown (the run uses exactly that)
      }
    }
    const only = Array.from(this.node.querySelectorAll<HTMLInputElement>('input.nbflow-only-task'))
      .filter(b => b.checked)
      .map(b => b.value);
    const force = this.node.querySelector<HTMLInputElement>('input.nbflow-force')?.checked ?? false;
    const queue = this.node.querySelector<HTMLInputElement>('input.nbflow-queue')?.checked ?? false;
    const executor = this.executor.value();
    return executor ? { parameters, only, force, queue, executor } : { parameters, only, force, queue };
  }

  private say(text: string, level: '' | 'error' | 'info'): void {
    const m = this.node.querySelector('.nbflow-form-message') as HTMLElement;
    m.textContent = text;
    m.setAttribute('data-level', level);
  }

  /** Mark the input an error names (the server's `field`, or a parameter named in its message). */
  private markRefused(e: unknown): void {
    const message = (e as Error).message ?? '';
    const named = e instanceof ApiError && e.field ? e.field : null;
    for (const input of Array.from(this.node.querySelectorAll<HTMLInputElement>('input.nbflow-param'))) {
      const n = input.name;
      if (named === n || message.includes(`'${n}'`) || message.includes(`{${n}}`) || message.includes(`parameter ${n}`)) {
        input.classList.add('nbflow-mod-refused');
      }
    }
  }

  private async dryRun(): Promise<void> {
    const out = this.node.querySelector('.nbflow-dry-result') as HTMLElement;
    try {
      const body = this.read();
      this.say('Planning…', 'info');
      const plan: IDryRun = await this.api.dryRun(body);
      this.say(plan.warnings.length ? `Warnings: ${plan.warnings.join(' ')}` : '', plan.warnings.length ? 'info' : '');
      const runs = plan.tasks.filter(t => t.action === 'run').length;
      const table = h('table', { class: 'nbflow-table nbflow-dry-table' });
      table.append(h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Decision'), h('th', {}, 'Why'))));
      const tbody = h('tbody');
      for (const t of plan.tasks) {
        tbody.append(
          h('tr', { 'data-task': t.task, 'data-action': t.action }, h('td', {}, t.task),
            h('td', {}, h('span', { class: 'nbflow-badge', 'data-state': t.action === 'run' ? 'queued' : 'skipped' }, t.action === 'run' ? 'will run' : 'up to date')),
            h('td', {}, t.reason))
        );
      }
      table.append(tbody);
      out.replaceChildren(h('p', {}, `Dry run: ${runs} of ${plan.tasks.length} tasks would run.`), table);
    } catch (e) {
      this.markRefused(e);
      out.replaceChildren();
      this.say(`Dry run refused${e instanceof ApiError && e.status ? ` (${e.status})` : ''}: ${(e as Error).message}`, 'error');
    }
  }

  private async start(): Promise<void> {
    const start = this.node.querySelector('.nbflow-start') as HTMLButtonElement;
    this.say('', '');
    try {
      const body = this.read();
      start.disabled = true;
      this.say('Starting…', 'info');
      const r = await this.api.startRun(body);
      this.node.hidden = true;
      this.say('', '');
      await this.onStarted(r);
    } catch (e) {
      this.markRefused(e);
      const status = e instanceof ApiError && e.status ? ` (${e.status})` : '';
      this.say(`Cannot start the run${status}: ${(e as Error).message}`, 'error');
    } finally {
      start.disabled = false;
    }
  }
}
