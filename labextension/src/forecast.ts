/**
 * Forecasts in words (issue 13): a running run's ETA along its critical path, and a task's usual duration (median
 * and p90 of its recent successes) with, while it runs, when it should end.
 */
import { IRunSummary, ITask } from './api';
import { formatDuration, h } from './dom';

function clock(t: number): string {
  return new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "ETA 14:32:10 (about 2 min 5 s left)" for a running run with a forecast, else null. */
export function etaBadge(run: IRunSummary | null): HTMLElement | null {
  const eta = run?.status === 'running' ? run.eta : null;
  if (!eta) {
    return null;
  }
  const unknown = eta.unknown.length ? `; no history yet for ${eta.unknown.join(', ')}` : '';
  return h(
    'span',
    { class: 'nbflow-eta', 'data-eta': String(eta.eta), title: `Critical path: ${eta.critical_path.join(' → ') || '-'}${unknown}` },
    `ETA ${clock(eta.eta)} (about ${formatDuration(Math.max(0, eta.remaining))} left)`
  );
}

/** The task detail's forecast rows: its usual duration, and its expected end while it runs. */
export function expectedRows(t: ITask): Array<[string, Node | string]> {
  const rows: Array<[string, Node | string]> = [];
  const e = t.expected;
  if (e) {
    rows.push([
      'Expected',
      h(
        'span',
        { class: 'nbflow-expected', 'data-median': String(e.median), title: `from its last ${e.samples} successful attempts` },
        `median ${formatDuration(e.median)} · p90 ${formatDuration(e.p90)} (${e.samples} ${e.samples === 1 ? 'run' : 'runs'})`
      )
    ]);
  }
  if (t.state === 'running' && t.expected_end) {
    rows.push(['Should end', h('span', { class: 'nbflow-expected-end' }, clock(t.expected_end))]);
  }
  return rows;
}
