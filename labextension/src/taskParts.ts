/**
 * Parts of the task detail pane: the attempts table (one line per attempt, logs in their own viewer), the files an
 * attempt read and wrote, the error block, and the extra facts later servers add to attempts.
 */
import { IAttempt, IAttemptIO, NbflowApi } from './api';
import { button, formatBytes, formatDuration, h, linkButton, stateBadge } from './dom';

/** Attempt fields shown in the detail's facts when the server fills them (issue 12: where the attempt ran, a Dask
 * worker's address and its host, and its kernel's peak memory and CPU time). Add a field here and it appears. */
export const ATTEMPT_FACTS: Array<[string, string, (v: unknown) => string]> = [
  ['worker', 'Worker', v => String(v)],
  ['host', 'Host', v => String(v)],
  ['peak_rss', 'Peak memory', v => formatBytes(Number(v))],
  ['cpu_seconds', 'CPU time', v => formatDuration(Number(v))]
];

/** Where the last attempt ran and what it used, as [key, label, text] (keys the server leaves out are skipped). */
export function attemptFacts(a: IAttempt | undefined): Array<[string, string, string]> {
  if (!a) {
    return [];
  }
  return ATTEMPT_FACTS.filter(([k]) => a[k] !== undefined && a[k] !== null).map(([k, label, fmt]) => [k, label, fmt(a[k])]);
}

/** A task's error, with the cell it happened in (counted from 0) when known. */
export function errorBlock(cell: number | null | undefined, message: string, label?: string | null): HTMLElement {
  // The server's label ("cell 5 (In [5])", issue 15) when it gives one, else the 0-based index
  const where = label ? `Error in ${label}` : cell === null || cell === undefined ? 'Error' : `Error in cell ${cell}`;
  const block = h('div', { class: 'nbflow-error' }, h('strong', { title: 'cell index, counted from 0' }, where + ': '), message);
  block.setAttribute('data-cell', cell === null || cell === undefined ? '' : String(cell));
  return block;
}

export interface IAttemptsHandlers {
  /** Show a log in its own scrollable viewer (a main-area tab). */
  openLog: (title: string, text: string) => void;
}

/** The attempts table: number, status, duration, the error on one line (full text on hover and on click), Log. */
export function attemptsTable(api: NbflowApi, run: string, task: string, attempts: IAttempt[], handlers: IAttemptsHandlers): HTMLElement {
  const table = h('table', { class: 'nbflow-table nbflow-attempts-table' });
  table.append(h('thead', {}, h('tr', {}, ...['#', 'Status', 'Duration', 'Error', ''].map(c => h('th', {}, c)))));
  const body = h('tbody');
  for (const a of attempts) {
    const label = (a.error_cell_label as string | undefined) ?? (a.error_cell !== null && a.error_cell !== undefined ? `cell ${a.error_cell}` : '');
    const err = a.error ? (label ? `${label}: ${a.error}` : a.error) : '';
    const errCell = h('td', { class: 'nbflow-attempt-error', title: err }, err);
    errCell.addEventListener('click', () => errCell.classList.toggle('nbflow-mod-expanded'));
    const showLog = button('Log', 'nbflow-log-button', async () => {
      let text: string;
      try {
        const log = await api.log(run, task, a.attempt);
        text = log.log || '(no output)';
        if (log.error) {
          text += `\n\n--- error ---\n${log.error}`;
        }
      } catch (e) {
        text = `Cannot load the log: ${(e as Error).message}`;
      }
      handlers.openLog(`log: ${task} #${a.attempt} · run ${run}`, text);
    });
    body.append(
      h(
        'tr',
        { 'data-attempt': String(a.attempt) },
        h('td', {}, String(a.attempt)),
        h('td', {}, stateBadge(a.status)),
        h('td', {}, formatDuration(a.duration)),
        errCell,
        h('td', {}, showLog)
      )
    );
  }
  table.append(body);
  return h('div', { class: 'nbflow-attempts-box' }, h('h4', {}, 'Attempts'), table);
}

/** What an attempt read and wrote: path (opens the file), size, short hash (full on hover), producer. */
export function ioList(io: IAttemptIO, openDocument: (path: string) => void, showRun: (run: string) => void): HTMLElement {
  const section = (title: string, files: IAttemptIO['reads'], cls: string) => {
    const list = h('ul', { class: `nbflow-io ${cls}` });
    for (const f of files) {
      const name = f.open ? linkButton(f.path, 'nbflow-open-file', () => openDocument(f.open as string), `Open ${f.path}`) : h('code', {}, f.path);
      const producer = f.producer
        ? h('span', { class: 'nbflow-hint' }, ` from ${f.producer.task} #${f.producer.number} in `, linkButton(f.producer.run_id, 'nbflow-run-link', () => showRun(f.producer!.run_id)))
        : cls === 'nbflow-reads'
          ? h('span', { class: 'nbflow-hint' }, ' external input')
          : null;
      list.append(
        h('li', { 'data-path': f.path }, name, ` ${formatBytes(f.size)} `, h('span', { class: 'nbflow-hash', title: f.hash }, `sha256:${f.hash.slice(0, 10)}`), producer)
      );
    }
    return files.length ? h('div', {}, h('h4', {}, title), list) : null;
  };
  return h('div', { class: 'nbflow-io-box' }, section('Read', io.reads, 'nbflow-reads'), section('Wrote', io.writes, 'nbflow-writes'));
}
