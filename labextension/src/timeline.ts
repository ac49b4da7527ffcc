/**
 * The Timeline tab: a Gantt chart of the shown run's attempts, one row per task. Each attempt is drawn as its
 * phases: queued (decided to run, waiting for a slot), kernel start (until its first cell began) and running
 * (coloured by the attempt's outcome); a retry is a further bar on the same row. The critical path (the chain of
 * tasks that made the run as long as it was) is outlined. Redrawn live while the run goes.
 */
import { ITimeline, ITimelineAttempt, NbflowApi } from './api';
import { formatDuration, h, shortRun } from './dom';
import { el } from './graphParts';

const ROW = 24;
const LABEL_W = 170;
const AXIS_H = 22;

export interface ITimelineHandlers {
  shownRun: () => string | undefined;
  upstreamOf: (task: string) => string[];
  selectTask: (task: string) => void;
}

/** The tasks on the critical path: from the task that ended last, back through the upstream task that ended last. */
export function criticalPath(ends: Map<string, number>, upstreamOf: (t: string) => string[]): Set<string> {
  const path = new Set<string>();
  let current: string | undefined = [...ends.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  while (current && !path.has(current)) {
    path.add(current);
    const ups: string[] = upstreamOf(current).filter(u => ends.has(u));
    current = ups.sort((a, b) => (ends.get(b) ?? 0) - (ends.get(a) ?? 0))[0];
  }
  return path;
}

export class TimelineView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-timeline' });

  constructor(
    private api: NbflowApi,
    private handlers: ITimelineHandlers
  ) {}

  async render(): Promise<void> {
    const run = this.handlers.shownRun();
    if (!run) {
      this.node.replaceChildren(h('p', { class: 'nbflow-hint' }, 'No runs yet.'));
      return;
    }
    let data: ITimeline;
    try {
      data = await this.api.timeline(run);
    } catch (e) {
      this.node.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load the timeline: ${(e as Error).message}`));
      return;
    }
    this.draw(data);
  }

  private draw(data: ITimeline): void {
    const attempts = data.attempts.filter(a => a.started !== null);
    if (!attempts.length) {
      this.node.replaceChildren(h('p', { class: 'nbflow-hint' }, `Nothing ran in run ${data.run.id} (every task was up to date or did not start).`));
      this.node.setAttribute('data-run-id', data.run.id);
      return;
    }
    const live = data.run.status === 'running';
    const t0 = Math.min(...attempts.map(a => a.queued ?? a.started ?? Infinity), data.run.started ?? Infinity);
    const t1 = Math.max(live ? data.now : 0, ...attempts.map(a => a.ended ?? data.now), data.run.ended ?? 0);
    const span = Math.max(0.5, t1 - t0);
    const byTask = new Map<string, ITimelineAttempt[]>();
    for (const a of attempts) {
      byTask.set(a.task, [...(byTask.get(a.task) ?? []), a]);
    }
    const rows = [...byTask.keys()].sort((a, b) => firstStart(byTask.get(a)!) - firstStart(byTask.get(b)!));
    const ends = new Map(rows.map(t => [t, Math.max(...byTask.get(t)!.map(a => a.ended ?? data.now))]));
    const critical = criticalPath(ends, this.handlers.upstreamOf);
    const width = Math.max(480, (this.node.clientWidth || 900) - 24);
    const chartW = width - LABEL_W - 12;
    const x = (t: number) => LABEL_W + ((t - t0) / span) * chartW;
    const height = AXIS_H + rows.length * ROW + 8;
    const svg = el('svg', { class: 'nbflow-gantt', width, height, viewBox: `0 0 ${width} ${height}` });
    for (const tick of ticks(span)) {
      const tx = x(t0 + tick);
      svg.append(el('line', { x1: tx, x2: tx, y1: AXIS_H - 4, y2: height, class: 'nbflow-gantt-grid' }), el('text', { x: tx + 2, y: 13, class: 'nbflow-gantt-axis' }, formatDuration(tick)));
    }
    rows.forEach((task, i) => {
      const y = AXIS_H + i * ROW;
      const g = el('g', { class: 'nbflow-gantt-row', 'data-task': task });
      g.classList.toggle('nbflow-critical', critical.has(task));
      const label = el('text', { x: LABEL_W - 8, y: y + ROW / 2 + 4, 'text-anchor': 'end', class: 'nbflow-gantt-label' }, task.length > 24 ? '…' + task.slice(-23) : task);
      label.addEventListener('click', () => this.handlers.selectTask(task));
      g.append(el('title', {}, task), label);
      for (const a of byTask.get(task)!) {
        const end = a.ended ?? data.now;
        const phases: Array<[string, number | null, number | null]> = [
          ['queued', a.queued, a.started],
          ['kernel', a.started, a.cells_started ?? (a.ended === null ? null : a.started)],
          [a.status, a.cells_started ?? a.started, end]
        ];
        for (const [phase, s, e] of phases) {
          if (s === null || e === null || e <= s) {
            continue;
          }
          const bar = el('rect', { x: x(s), y: y + 4, width: Math.max(1.5, x(e) - x(s)), height: ROW - 8, rx: 2, class: 'nbflow-gantt-bar' });
          bar.setAttribute('data-phase', phase === a.status ? 'running' : phase);
          bar.setAttribute('data-state', phase === a.status ? a.status : phase);
          bar.setAttribute('data-attempt', String(a.attempt));
          const what = phase === 'queued' ? 'queued' : phase === 'kernel' ? 'kernel start' : a.status;
          bar.appendChild(el('title', {}, `${task} #${a.attempt}: ${what}, ${formatDuration(e - s)}${a.error && phase === a.status ? `\n${a.error}` : ''}`));
          g.append(bar);
        }
      }
      svg.append(g);
    });
    if (live) {
      svg.append(el('line', { x1: x(data.now), x2: x(data.now), y1: AXIS_H - 6, y2: height, class: 'nbflow-gantt-now' }));
    }
    const legend = h('div', { class: 'nbflow-gantt-legend' },
      ...[['queued', 'queued'], ['kernel', 'kernel start'], ['running', 'running'], ['succeeded', 'succeeded'], ['failed', 'failed']].map(([s, l]) =>
        h('span', {}, h('span', { class: 'nbflow-swatch', 'data-state': s }), ` ${l}`)),
      h('span', {}, h('span', { class: 'nbflow-swatch nbflow-swatch-critical' }), ' critical path'));
    const title = h('p', {}, `Run ${shortRun(data.run.id)}: ${data.run.status}, ${formatDuration(t1 - t0)}${live ? ' so far (live)' : ''}; critical path: ${[...critical].reverse().join(' → ')}`);
    this.node.replaceChildren(title, legend, svg);
    this.node.setAttribute('data-run-id', data.run.id);
    this.node.setAttribute('data-critical', [...critical].reverse().join(','));
  }
}

function firstStart(attempts: ITimelineAttempt[]): number {
  return Math.min(...attempts.map(a => a.queued ?? a.started ?? Infinity));
}

/** About six round tick values (in seconds) across a span. */
function ticks(span: number): number[] {
  const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
  const step = steps.find(s => span / s <= 6) ?? 86400;
  const out = [];
  for (let t = 0; t <= span; t += step) {
    out.push(t);
  }
  return out;
}
