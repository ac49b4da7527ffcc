/**
 * The Schedules tab: whether a scheduler runs (and a clear message when none does), each schedule with its cron in
 * words, time zone, next fire times, paused/active, catch-up and overlap, slot counts and recent slots (with their
 * runs and skip reasons); pause/resume/remove; sensors with their triggered and waiting files; the backfill this
 * server started, with its progress. The add and backfill forms are in scheduleForm.ts.
 */
import { ISchedule, ISchedules, ISensor, NbflowApi } from './api';
import { button, h, linkButton, shortRun, stateBadge } from './dom';
import { BackfillForm, ScheduleForm } from './scheduleForm';

const BACKFILL_POLL_MS = 2000;

export interface ISchedulesHandlers {
  taskNames: () => string[];
  showRun: (run: string) => void;
}

export class SchedulesView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-schedules' });
  private content = h('div', { class: 'nbflow-schedules-body' });
  private addForm: ScheduleForm;
  private backfillForm: BackfillForm;
  private data: ISchedules | null = null;
  private words = new Map<string, string>();

  constructor(
    private api: NbflowApi,
    private handlers: ISchedulesHandlers
  ) {
    this.addForm = new ScheduleForm(api, handlers.taskNames, () => void this.render());
    this.backfillForm = new BackfillForm(api, () => (this.data?.schedules ?? []).map(s => s.name), () => void this.render());
    const bar = h(
      'div',
      { class: 'nbflow-history-filters' },
      button('Add schedule…', 'nbflow-open-schedule-form jp-mod-accept', () => this.addForm.open()),
      button('Backfill…', 'nbflow-open-backfill', () => this.backfillForm.open())
    );
    this.node.append(bar, this.addForm.node, this.backfillForm.node, this.content);
  }

  async render(): Promise<void> {
    try {
      this.data = await this.api.schedules();
    } catch (e) {
      this.content.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load the schedules: ${(e as Error).message}`));
      return;
    }
    const d = this.data;
    await this.describe(d.schedules);
    const status = d.scheduler.running
      ? h('p', { class: 'nbflow-scheduler-status', 'data-running': 'true' }, stateBadge('running'),
          ` A scheduler is running (pid ${d.scheduler.holder?.pid} on ${d.scheduler.holder?.host}, seen ${Math.round(d.scheduler.holder?.heartbeat_age ?? 0)} s ago).`)
      : h('div', { class: 'nbflow-message nbflow-scheduler-status', 'data-level': 'info', 'data-running': 'false' },
          'No scheduler is running for this project, so schedules and sensors do not fire. Start one in a terminal: ',
          h('code', {}, 'nbflow scheduler'), ' (or as a service: see the README, "Running it as a service").');
    const parts: Node[] = [status];
    if (d.backfill) {
      parts.push(this.backfill(d));
      if (d.backfill.running) {
        // The backfill process's exit records no store event: look again until it is done, while the tab shows.
        window.setTimeout(() => !this.node.hidden && this.node.isConnected && void this.render(), BACKFILL_POLL_MS);
      }
    }
    parts.push(h('h3', {}, 'Schedules'));
    parts.push(d.schedules.length ? this.table(d.schedules) : h('p', { class: 'nbflow-hint' }, 'No schedules. Add one here, or declare [schedules.NAME] in nbflow.toml.'));
    parts.push(h('h3', {}, 'Sensors'));
    parts.push(d.sensors.length ? h('div', {}, ...d.sensors.map(s => this.sensor(s))) : h('p', { class: 'nbflow-hint' }, 'No sensors ([sensors.NAME] in nbflow.toml).'));
    this.content.replaceChildren(...parts);
  }

  /** The cron of each schedule in words (from the server's cron-descriptor), cached by expression. */
  private async describe(schedules: ISchedule[]): Promise<void> {
    await Promise.all(
      schedules.filter(s => !this.words.has(`${s.cron}|${s.timezone}`)).map(async s => {
        try {
          const p = await this.api.cron(s.cron, s.timezone);
          this.words.set(`${s.cron}|${s.timezone}`, p.description ?? '');
        } catch {
          this.words.set(`${s.cron}|${s.timezone}`, '');
        }
      })
    );
  }

  private table(schedules: ISchedule[]): HTMLElement {
    const table = h('table', { class: 'nbflow-table nbflow-schedules-table' });
    table.append(h('thead', {}, h('tr', {}, ...['Schedule', 'When', 'Next fire times', 'State', 'Policy', 'Slots', ''].map(c => h('th', {}, c)))));
    const body = h('tbody');
    for (const s of schedules) {
      const words = this.words.get(`${s.cron}|${s.timezone}`);
      const slots = Object.entries(s.slots).map(([k, n]) => `${n} ${k}`).join(', ') || 'none yet';
      const actions = h('td', { class: 'nbflow-schedule-actions' },
        button(s.paused ? 'Resume' : 'Pause', `nbflow-${s.paused ? 'resume' : 'pause'}-schedule`, () => void this.act(s.name, s.paused ? 'resume' : 'pause')),
        button('Slots', 'nbflow-show-slots', () => void this.slots(s.name, row)),
        button('Backfill…', 'nbflow-backfill-schedule', () => this.backfillForm.open(s.name)));
      if (s.source !== 'config') {
        actions.append(button('Remove', 'nbflow-remove-schedule', () => void this.act(s.name, 'remove')));
      }
      const row = h('tr', { 'data-schedule': s.name, 'data-paused': String(s.paused) },
        h('td', {}, h('strong', {}, s.name), h('div', { class: 'nbflow-hint' }, s.source === 'config' ? 'nbflow.toml' : 'added here / CLI')),
        h('td', {}, h('div', { class: 'nbflow-cron-words' }, words || s.cron), h('div', { class: 'nbflow-hint nbflow-mono' }, `${s.cron} · ${s.timezone}`)),
        h('td', { class: 'nbflow-next-fires' }, ...(s.paused ? [h('span', { class: 'nbflow-hint' }, 'paused')] : s.next_fires.map(t => h('div', {}, t.replace('T', ' ').slice(0, 16))))),
        h('td', {}, stateBadge(s.paused ? 'cancelled' : 'succeeded'), ` ${s.paused ? 'paused' : 'active'}`),
        h('td', { class: 'nbflow-hint' }, `catch-up ${s.catchup}; ${s.overlap} when ${s.max_concurrent} running`),
        h('td', {}, slots, s.last_slot ? h('div', { class: 'nbflow-hint' }, `last: ${s.last_slot.run_date} ${s.last_slot.status}`) : null),
        actions);
      body.append(row);
    }
    table.append(body);
    return table;
  }

  private async act(name: string, action: 'pause' | 'resume' | 'remove'): Promise<void> {
    try {
      await this.api.scheduleAction(name, action);
    } catch (e) {
      this.content.prepend(h('p', { class: 'nbflow-error' }, `Cannot ${action} ${name}: ${(e as Error).message}`));
      return;
    }
    await this.render();
  }

  /** Recent slots of a schedule, in a row under it. */
  private async slots(name: string, row: HTMLElement): Promise<void> {
    const next = row.nextElementSibling;
    if (next?.classList.contains('nbflow-slots-row')) {
      next.remove();
      return;
    }
    const found = await this.api.slots(name, 20);
    const list = h('table', { class: 'nbflow-table nbflow-slots' });
    for (const s of found.slots) {
      list.append(h('tr', { 'data-status': s.status }, h('td', {}, s.run_date), h('td', {}, stateBadge(s.status === 'skipped' ? 'skipped' : s.status)),
        h('td', {}, s.run_id ? linkButton(shortRun(s.run_id), 'nbflow-run-link', () => this.handlers.showRun(s.run_id as string), s.run_id) : '—'),
        h('td', { class: 'nbflow-hint' }, s.reason ?? '')));
    }
    const cell = h('td', { colspan: '7' }, found.slots.length ? list : h('p', { class: 'nbflow-hint' }, 'No slots recorded yet.'));
    row.after(h('tr', { class: 'nbflow-slots-row' }, cell));
  }

  private sensor(s: ISensor): HTMLElement {
    const files = h('ul', {}, ...s.files.slice(0, 10).map(f => h('li', {}, h('code', {}, f.path), ' ', stateBadge(f.status),
      f.run_id ? h('span', {}, ' ', linkButton(shortRun(f.run_id), 'nbflow-run-link', () => this.handlers.showRun(f.run_id as string))) : null)));
    const waiting = h('ul', {}, ...s.pending.map(p => h('li', {}, h('code', {}, p.path), ' waiting')));
    return h('div', { class: 'nbflow-sensor', 'data-sensor': s.name }, h('strong', {}, s.name), ` watches `, h('code', {}, s.glob), ` → parameter ${s.parameter}`,
      s.files.length ? files : null, s.pending.length ? waiting : null);
  }

  private backfill(d: ISchedules): HTMLElement {
    const b = d.backfill!;
    const done = Object.entries(b.counts).filter(([k]) => ['succeeded', 'failed', 'skipped'].includes(k)).reduce((n, [, v]) => n + v, 0);
    const bar = h('progress', { max: String(Math.max(1, b.total)), value: String(done), class: 'nbflow-backfill-progress' });
    const counts = Object.entries(b.counts).map(([k, n]) => `${n} ${k}`).join(', ');
    return h('div', { class: 'nbflow-backfill', 'data-running': String(b.running) },
      h('strong', {}, `Backfill ${b.start} → ${b.end}${b.schedule ? ` (${b.schedule})` : ''}: `), bar,
      ` ${done} of ${b.total} slots done${counts ? ` (${counts})` : ''}; ${b.running ? 'running' : `finished, exit code ${b.exit_code}`}. Log: `, h('code', {}, b.log));
  }
}
