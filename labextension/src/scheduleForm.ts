/**
 * The Schedules tab's forms: add a schedule (cron with a live plain-words preview and its next five fire times, a
 * time zone picker, parameters, task selection, catch-up and overlap), and start a backfill over a date range.
 */
import { ApiError, NbflowApi } from './api';
import { button, h } from './dom';

const ZONES_FALLBACK = ['UTC', 'Europe/London', 'Europe/Paris', 'America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Asia/Tokyo'];

function zones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return ['UTC', ...(intl.supportedValuesOf?.('timeZone') ?? ZONES_FALLBACK.slice(1))];
  } catch {
    return ZONES_FALLBACK;
  }
}

function field(label: string, input: HTMLElement, hint = ''): HTMLElement {
  return h('label', { class: 'nbflow-field' }, h('span', {}, label), input, hint ? h('span', { class: 'nbflow-hint' }, hint) : null);
}

export class ScheduleForm {
  readonly node = h('form', { class: 'nbflow-schedule-form' });
  private preview = h('div', { class: 'nbflow-cron-preview', 'aria-live': 'polite' });
  private message = h('div', { class: 'nbflow-form-message', role: 'alert' });
  private timer = 0;

  constructor(
    private api: NbflowApi,
    private taskNames: () => string[],
    private onChanged: () => void
  ) {
    this.node.hidden = true;
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.submit();
    });
  }

  open(): void {
    const name = h('input', { type: 'text', name: 'name', placeholder: 'nightly', required: '' });
    const cron = h('input', { type: 'text', name: 'cron', value: '30 2 * * *', class: 'nbflow-cron-input' });
    const listId = `nbflow-zones-${Math.random().toString(36).slice(2)}`;
    const tz = h('input', { type: 'text', name: 'timezone', value: 'UTC', list: listId, class: 'nbflow-tz-input' });
    const zoneList = h('datalist', { id: listId }, ...zones().map(z => h('option', { value: z })));
    const params = h('input', { type: 'text', name: 'parameters', placeholder: '{"sample_size": 500}' });
    const only = h('select', { name: 'only', multiple: '', size: '4' }, ...this.taskNames().map(t => new Option(t, t)));
    const catchup = h('select', { name: 'catchup' }, new Option('latest missed slot', 'latest'), new Option('all missed slots', 'all'), new Option('none', 'none'));
    const overlap = h('select', { name: 'overlap' }, new Option('queue', 'queue'), new Option('skip', 'skip'));
    const maxc = h('input', { type: 'number', name: 'max_concurrent', value: '1', min: '1' });
    for (const input of [cron, tz]) {
      input.addEventListener('input', () => this.schedulePreview());
    }
    this.node.replaceChildren(
      h('h4', {}, 'Add a schedule'),
      h('div', { class: 'nbflow-form-grid' },
        field('Name', name),
        field('Cron', cron, 'minute hour day-of-month month day-of-week'),
        field('Time zone', tz),
        zoneList,
        field('Parameters (JSON)', params),
        field('Only these tasks', only, 'none selected: all'),
        field('After downtime run', catchup),
        field('When a run is still going', overlap),
        field('Runs at once', maxc)),
      this.preview,
      h('div', { class: 'nbflow-form-row' },
        h('button', { class: 'jp-Button jp-mod-accept nbflow-button nbflow-add-schedule', type: 'submit' }, 'Add schedule'),
        button('Close', 'nbflow-close-schedule-form', () => (this.node.hidden = true))),
      this.message
    );
    this.node.hidden = false;
    this.schedulePreview();
  }

  private value(name: string): string {
    return (this.node.querySelector(`[name="${name}"]`) as HTMLInputElement).value.trim();
  }

  private schedulePreview(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.updatePreview(), 250);
  }

  private async updatePreview(): Promise<void> {
    const cronInput = this.node.querySelector('[name="cron"]') as HTMLInputElement;
    try {
      const p = await this.api.cron(this.value('cron'), this.value('timezone') || 'UTC');
      cronInput.classList.remove('nbflow-mod-refused');
      this.preview.setAttribute('data-valid', 'true');
      this.preview.replaceChildren(
        h('strong', { class: 'nbflow-cron-words' }, p.description ?? p.cron),
        h('span', { class: 'nbflow-hint' }, ` (${p.timezone}). Next: `),
        h('span', { class: 'nbflow-cron-next' }, p.next.map(t => t.replace('T', ' ').slice(0, 16)).join(' · '))
      );
    } catch (e) {
      cronInput.classList.add('nbflow-mod-refused');
      this.preview.setAttribute('data-valid', 'false');
      this.preview.replaceChildren(h('span', { class: 'nbflow-error' }, (e as Error).message));
    }
  }

  private async submit(): Promise<void> {
    this.message.textContent = '';
    for (const el of Array.from(this.node.querySelectorAll('.nbflow-mod-refused'))) {
      el.classList.remove('nbflow-mod-refused');
    }
    try {
      const raw = this.value('parameters');
      let parameters: unknown = {};
      try {
        parameters = raw ? JSON.parse(raw) : {};
      } catch {
        (this.node.querySelector('[name="parameters"]') as HTMLElement).classList.add('nbflow-mod-refused');
        throw new Error(`parameters: '${raw}' is not a JSON object`);
      }
      const only = Array.from((this.node.querySelector('[name="only"]') as HTMLSelectElement).selectedOptions).map(o => o.value);
      await this.api.addSchedule({
        name: this.value('name'), cron: this.value('cron'), timezone: this.value('timezone') || 'UTC', parameters, only,
        catchup: this.value('catchup'), overlap: this.value('overlap'), max_concurrent: Number(this.value('max_concurrent') || 1)
      });
      this.node.hidden = true;
      this.onChanged();
    } catch (e) {
      const f = e instanceof ApiError ? e.field : null;
      if (f) {
        this.node.querySelector(`[name="${f}"]`)?.classList.add('nbflow-mod-refused');
      }
      this.message.setAttribute('data-level', 'error');
      this.message.textContent = `Cannot add the schedule: ${(e as Error).message}`;
    }
  }
}

/** The backfill form: a date range, a schedule (or a slot a day), how many at once. */
export class BackfillForm {
  readonly node = h('form', { class: 'nbflow-backfill-form' });

  constructor(
    private api: NbflowApi,
    private scheduleNames: () => string[],
    private onStarted: () => void
  ) {
    this.node.hidden = true;
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.submit();
    });
  }

  open(schedule = ''): void {
    const today = new Date().toISOString().slice(0, 10);
    const weekAgo = new Date(Date.now() - 6 * 86400_000).toISOString().slice(0, 10);
    const pick = h('select', { name: 'schedule' }, new Option('a slot a day (00:00 UTC)', ''), ...this.scheduleNames().map(n => new Option(n, n)));
    pick.value = schedule;
    this.node.replaceChildren(
      h('h4', {}, 'Backfill'),
      h('div', { class: 'nbflow-form-grid' },
        field('From', h('input', { type: 'date', name: 'start', value: weekAgo })),
        field('To (inclusive)', h('input', { type: 'date', name: 'end', value: today })),
        field('Slots of', pick),
        field('At once', h('input', { type: 'number', name: 'concurrency', value: '2', min: '1' }))),
      h('div', { class: 'nbflow-form-row' },
        h('button', { class: 'jp-Button jp-mod-accept nbflow-button nbflow-start-backfill', type: 'submit' }, 'Start backfill'),
        button('Close', 'nbflow-close-backfill', () => (this.node.hidden = true))),
      h('div', { class: 'nbflow-form-message', role: 'alert' })
    );
    this.node.hidden = false;
  }

  private async submit(): Promise<void> {
    const get = (n: string) => (this.node.querySelector(`[name="${n}"]`) as HTMLInputElement).value;
    const message = this.node.querySelector('.nbflow-form-message') as HTMLElement;
    try {
      await this.api.backfill({ start: get('start'), end: get('end'), schedule: get('schedule') || null, concurrency: Number(get('concurrency') || 2) });
      this.node.hidden = true;
      this.onStarted();
    } catch (e) {
      message.setAttribute('data-level', 'error');
      message.textContent = `Cannot start the backfill: ${(e as Error).message}`;
    }
  }
}
