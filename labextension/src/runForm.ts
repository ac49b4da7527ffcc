/**
 * The "Run…" form: the pipeline's parameters (prefilled with their defaults), which tasks, force; it starts a run.
 */
import { ApiError, IPipeline, IRunRequest, IStartedRun, NbflowApi } from './api';
import { button, h } from './dom';

export class RunForm {
  readonly node = h('form', { class: 'nbflow-run-form' });

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
  toggle(pipeline: IPipeline | null): void {
    if (!this.node.hidden) {
      this.node.hidden = true;
      return;
    }
    this.render(pipeline);
    this.node.hidden = false;
  }

  private render(p: IPipeline | null): void {
    const params = p?.parameters ?? {};
    const fields = h('fieldset', { class: 'nbflow-params' }, h('legend', {}, 'Parameters'));
    for (const [name, value] of Object.entries(params)) {
      const id = `nbflow-param-${name}`;
      let input: HTMLInputElement;
      if (typeof value === 'boolean') {
        input = h('input', { type: 'checkbox', name, id, 'data-kind': 'boolean' });
        input.checked = value;
      } else {
        const kind = typeof value === 'number' ? 'number' : typeof value === 'string' ? 'string' : 'json';
        input = h('input', { type: 'text', name, id, 'data-kind': kind });
        input.value = kind === 'json' ? JSON.stringify(value) : String(value);
      }
      input.setAttribute('data-default', JSON.stringify(value));
      input.classList.add('nbflow-param');
      fields.append(h('label', { for: id }, name), input);
    }
    if (!Object.keys(params).length) {
      fields.append(h('p', { class: 'nbflow-hint' }, 'No parameters cells in this pipeline.'));
    }
    const tasks = h('fieldset', { class: 'nbflow-only' }, h('legend', {}, 'Only these tasks (none checked: all)'));
    for (const t of p?.tasks ?? []) {
      const box = h('input', { type: 'checkbox', value: t.name, class: 'nbflow-only-task' });
      box.checked = false;
      tasks.append(h('label', {}, box, ` ${t.name}`));
    }
    const force = h('input', { type: 'checkbox', class: 'nbflow-force' });
    const start = h('button', { class: 'jp-Button jp-mod-accept nbflow-button nbflow-start', type: 'submit' }, 'Start run');
    const close = button('Close', 'nbflow-close-form', () => (this.node.hidden = true));
    this.node.replaceChildren(
      fields,
      tasks,
      h('div', { class: 'nbflow-form-row' }, h('label', {}, force, ' Force (re-run tasks that are up to date)'), start, close),
      h('div', { class: 'nbflow-form-message', role: 'alert' })
    );
  }

  /** The request the form describes; throws on a value that does not parse, naming the parameter. */
  private read(): IRunRequest {
    const parameters: Record<string, unknown> = {};
    for (const input of Array.from(this.node.querySelectorAll<HTMLInputElement>('input.nbflow-param'))) {
      const kind = input.getAttribute('data-kind');
      const original = JSON.parse(input.getAttribute('data-default') ?? 'null');
      let value: unknown;
      if (kind === 'boolean') {
        value = input.checked;
      } else if (kind === 'number') {
        value = Number(input.value);
        if (input.value.trim() === '' || Number.isNaN(value)) {
          throw new Error(`parameter ${input.name}: '${input.value}' is not a number`);
        }
      } else if (kind === 'json') {
        try {
          value = JSON.parse(input.value);
        } catch {
          throw new Error(`parameter ${input.name}: '${input.value}' is not valid JSON`);
        }
      } else {
        value = input.value;
      }
      if (JSON.stringify(value) !== JSON.stringify(original)) {
        parameters[input.name] = value; // only what the user changed: defaults stay the notebooks' own
      }
    }
    const only = Array.from(this.node.querySelectorAll<HTMLInputElement>('input.nbflow-only-task'))
      .filter(b => b.checked)
      .map(b => b.value);
    const force = this.node.querySelector<HTMLInputElement>('input.nbflow-force')?.checked ?? false;
    return { parameters, only, force };
  }

  private async start(): Promise<void> {
    const formMessage = this.node.querySelector('.nbflow-form-message') as HTMLElement;
    const start = this.node.querySelector('.nbflow-start') as HTMLButtonElement;
    formMessage.textContent = '';
    try {
      const body = this.read();
      start.disabled = true;
      formMessage.textContent = 'Starting…';
      const r = await this.api.startRun(body);
      this.node.hidden = true;
      formMessage.textContent = '';
      await this.onStarted(r);
    } catch (e) {
      const status = e instanceof ApiError && e.status ? ` (${e.status})` : '';
      const text = `Cannot start the run${status}: ${(e as Error).message}`;
      formMessage.textContent = text;
      formMessage.setAttribute('data-level', 'error');
    } finally {
      start.disabled = false;
    }
  }
}
