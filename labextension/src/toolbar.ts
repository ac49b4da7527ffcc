/**
 * The panel's toolbar: Run…, Cancel, Resume / Retry failed, which run the graph shows (with a running run's ETA, and
 * the way back to the latest), the tabs.
 */
import { IRunSummary } from './api';
import { button, formatDuration, formatTime, h, stateBadge } from './dom';
import { etaBadge } from './forecast';

export type Tab = 'graph' | 'history' | 'timeline' | 'compare' | 'schedules' | 'operations' | 'lineage';

const TABS: Array<[Tab, string]> = [
  ['graph', 'Graph'],
  ['history', 'History'],
  ['timeline', 'Timeline'],
  ['compare', 'Compare'],
  ['schedules', 'Schedules'],
  ['operations', 'Operations'],
  ['lineage', 'Lineage']
];

/** What the toolbar's buttons ask of the panel. */
export interface IToolbarHandlers {
  toggleForm: () => void;
  cancelRun: () => void;
  resumeRun: () => void;
  showLatest: () => void;
  setTab: (tab: Tab) => void;
}

export class Toolbar {
  readonly node: HTMLDivElement;
  private runLabel = h('span', { class: 'nbflow-run-label' });
  private cancelButton: HTMLButtonElement;
  private resumeButton: HTMLButtonElement;
  private latestButton: HTMLButtonElement;
  private tabButtons = new Map<Tab, HTMLButtonElement>();

  constructor(handlers: IToolbarHandlers) {
    this.cancelButton = button('Cancel run', 'nbflow-cancel-button', handlers.cancelRun);
    this.resumeButton = button('Resume', 'nbflow-resume-button', handlers.resumeRun);
    this.latestButton = button('Show latest run', 'nbflow-latest-button', handlers.showLatest);
    const tabs = h('span', { class: 'nbflow-tabs', role: 'tablist' });
    for (const [tab, label] of TABS) {
      const b = button(label, 'nbflow-tab', () => handlers.setTab(tab));
      b.setAttribute('data-tab', tab);
      b.setAttribute('role', 'tab');
      tabs.append(b);
      this.tabButtons.set(tab, b);
    }
    this.node = h(
      'div',
      { class: 'nbflow-toolbar' },
      button('Run…', 'nbflow-run-button jp-mod-accept', handlers.toggleForm),
      this.cancelButton,
      this.resumeButton,
      this.runLabel,
      this.latestButton,
      h('span', { class: 'nbflow-spacer' }),
      tabs
    );
  }

  /** Say which run the graph shows; `selected` is null while the panel follows the latest run. */
  showRun(run: IRunSummary | null, selected: string | null): void {
    this.runLabel.textContent = '';
    if (!run) {
      this.runLabel.append(selected ? `Run ${selected} not found` : 'No runs yet');
    } else {
      this.runLabel.append(
        `${selected ? 'Showing run' : 'Latest run'} ${run.id} `,
        stateBadge(run.status),
        ` ${formatTime(run.started)} · ${formatDuration(run.duration)}`
      );
      const eta = etaBadge(run);
      if (eta) {
        this.runLabel.append(' · ', eta);
      }
    }
    this.cancelButton.hidden = run?.status !== 'running';
    // A failed run: run again what failed ("Retry failed"); a cancelled or crashed one: go on where it stopped.
    const status = run?.status ?? '';
    this.resumeButton.hidden = !['failed', 'cancelled', 'crashed'].includes(status);
    this.resumeButton.textContent = status === 'failed' ? 'Retry failed' : 'Resume';
    this.resumeButton.title =
      status === 'failed'
        ? 'Run the failed tasks (and what they block) again in this run, keeping what succeeded'
        : 'Run what was cancelled or never finished in this run, keeping what succeeded';
    this.latestButton.hidden = selected === null;
  }

  /** Mark this tab as the active one. */
  markTab(tab: Tab): void {
    for (const [t, b] of this.tabButtons) {
      b.classList.toggle('nbflow-mod-active', t === tab);
      b.setAttribute('aria-selected', String(t === tab));
    }
  }
}
