/**
 * The Operations tab (issue 13): circuit breakers that are not closed (with Reset) and alert deliveries, sent or
 * failed, newest first: what `nbflow breakers` and `nbflow alerts` print.
 */
import { IAlert, IBreaker, NbflowApi } from './api';
import { button, formatTime, h, linkButton, shortRun } from './dom';

export interface IOperationsHandlers {
  showRun: (run: string) => void;
}

export class OperationsView {
  readonly node = h('div', { class: 'nbflow-view nbflow-view-operations' });

  constructor(
    private api: NbflowApi,
    private handlers: IOperationsHandlers
  ) {}

  async render(): Promise<void> {
    try {
      const [{ breakers }, { alerts }] = await Promise.all([this.api.breakers(), this.api.alerts(50)]);
      this.node.replaceChildren(this.breakers(breakers), this.alerts(alerts));
    } catch (e) {
      this.node.replaceChildren(h('p', { class: 'nbflow-error' }, `Cannot load alerts and breakers: ${(e as Error).message}`));
    }
  }

  private breakers(all: IBreaker[]): HTMLElement {
    const notClosed = all.filter(b => b.state !== 'closed');
    const box = h('section', { class: 'nbflow-breakers', 'data-open': String(notClosed.length) });
    const closed = all.length - notClosed.length;
    box.append(h('h3', {}, 'Circuit breakers'));
    if (!all.length) {
      box.append(h('p', { class: 'nbflow-hint' }, 'No task declares an outside dependency (a uses:NAME tag).'));
      return box;
    }
    if (!notClosed.length) {
      box.append(h('p', { class: 'nbflow-hint' }, `All ${all.length} closed: tasks using them run normally.`));
      return box;
    }
    const table = h('table', { class: 'nbflow-table' });
    table.append(h('thead', {}, h('tr', {}, ...['Breaker', 'State', 'Failures', 'Opened', 'Next probe', 'Used by', 'Last error', ''].map(c => h('th', {}, c)))));
    const body = h('tbody');
    for (const b of notClosed) {
      const reset = button('Reset', 'nbflow-reset-breaker', () => void this.reset(b.name));
      body.append(
        h('tr', { 'data-breaker': b.name, 'data-state': b.state },
          h('td', {}, b.name),
          h('td', {}, h('span', { class: 'nbflow-breaker-state', 'data-state': b.state }, b.state === 'half_open' ? 'half open' : b.state)),
          h('td', {}, `${b.failures} of ${b.threshold}`),
          h('td', {}, formatTime(b.opened_at)),
          h('td', {}, b.probe ? `probing (${b.probe})` : formatTime(b.next_probe)),
          h('td', {}, b.used_by.join(', ') || '-'),
          h('td', { class: 'nbflow-breaker-error', title: b.last_error ?? '' }, b.last_error ?? '-'),
          h('td', {}, reset))
      );
    }
    table.append(body);
    box.append(table);
    if (closed) {
      box.append(h('p', { class: 'nbflow-hint' }, `${closed} more closed.`));
    }
    return box;
  }

  private alerts(alerts: IAlert[]): HTMLElement {
    const box = h('section', { class: 'nbflow-alerts' }, h('h3', {}, 'Alerts'));
    if (!alerts.length) {
      box.append(h('p', { class: 'nbflow-hint' }, 'No alerts yet. Targets are set under [alerts] in nbflow.toml.'));
      return box;
    }
    const table = h('table', { class: 'nbflow-table nbflow-alerts-table' });
    table.append(h('thead', {}, h('tr', {}, ...['When', 'Severity', 'Alert', 'Run', 'Deliveries'].map(c => h('th', {}, c)))));
    const body = h('tbody');
    for (const a of alerts) {
      const run = a.run_id ? linkButton(shortRun(a.run_id), 'nbflow-run-link', () => this.handlers.showRun(a.run_id as string), a.run_id) : '-';
      const deliveries = h('div', { class: 'nbflow-deliveries' });
      if (a.outcome !== 'routed') {
        deliveries.append(h('span', { class: 'nbflow-hint' }, a.outcome === 'grouped' ? 'grouped with the streak' : a.outcome.replace('_', ' ')));
      }
      for (const d of a.deliveries) {
        const why = d.error ? `: ${d.error}` : '';
        deliveries.append(
          h('div', { class: 'nbflow-delivery', 'data-status': d.status, title: `${d.target}\n${d.attempts} attempt(s)${why}` },
            h('span', { class: 'nbflow-delivery-status', 'data-status': d.status }, d.status),
            ` ${d.target}${d.status === 'failed' && d.error ? ` (${d.error})` : ''}`)
        );
      }
      body.append(
        h('tr', { class: 'nbflow-alert-row', 'data-severity': a.severity, 'data-event': a.event, 'data-outcome': a.outcome },
          h('td', {}, formatTime(a.created_at)),
          h('td', {}, h('span', { class: 'nbflow-severity', 'data-severity': a.severity }, a.severity)),
          h('td', { title: a.body }, a.title),
          h('td', {}, run),
          h('td', {}, deliveries))
      );
    }
    table.append(body);
    box.append(table);
    return box;
  }

  private async reset(name: string): Promise<void> {
    try {
      await this.api.resetBreaker(name);
    } catch (e) {
      this.node.prepend(h('p', { class: 'nbflow-error' }, `Cannot reset ${name}: ${(e as Error).message}`));
      return;
    }
    await this.render();
  }
}
