/**
 * The shapes of nbflow's REST answers (docs/rest-api.md), shared by the API client and the views.
 */

export type TaskState =
  | 'pending'
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'check_failed'
  | 'upstream_failed'
  | 'skipped'
  | 'cancelled'
  | 'crashed'
  | 'blocked';

export interface ITaskError {
  cell: number | null;
  /** How to name the cell ("cell 5 (In [5])"), from servers that have it (issue 15). */
  cell_label?: string | null;
  kind?: string | null;
  ename?: string | null;
  evalue?: string | null;
  message?: string;
}

/** Per-cell progress of a running task (issue 15's field of GET pipeline; absent on older servers). */
export interface IProgress {
  cell: number;
  cells: number;
  since: number;
}

export interface ITask {
  name: string;
  path: string | null;
  notebook?: string;
  upstream: string[];
  state: TaskState;
  attempts: number;
  started: number | null;
  ended: number | null;
  duration: number | null;
  reason: string | null;
  error: ITaskError | null;
  executed: string | null;
  executed_openable?: boolean;
  /** Names of the parameters its parameters cell declares. */
  parameters?: string[];
  progress?: IProgress | null;
  /** Its usual duration from the history of its successes (issue 13's forecast), null with too little history. */
  expected?: IExpected | null;
  /** While the run runs: when this task should end (epoch seconds). */
  expected_end?: number | null;
}

/** A task's expected duration in seconds (median, p90, p95 of its last `samples` successes). */
export interface IExpected {
  median: number;
  p90: number;
  p95?: number;
  samples: number;
}

/** A running run's forecast: when it should end, along which critical path. */
export interface IEta {
  eta: number;
  remaining: number;
  critical_path: string[];
  unknown: string[];
}

export interface IEdge {
  source: string;
  target: string;
  via: string[] | string;
}

export interface IRunSummary {
  id: string;
  status: string;
  trigger: string;
  started: number | null;
  ended: number | null;
  duration: number | null;
  parameters: Record<string, unknown>;
  logical_date?: string | null;
  /** GET runs?tasks=1: each task's state and duration in this run. */
  tasks?: Record<string, string>;
  durations?: Record<string, number | null>;
  /** How many tasks were attempted (0: everything was up to date). */
  ran?: number;
  queued_at?: number;
  /** GET pipeline, while the run runs: its forecast (null without enough history). */
  eta?: IEta | null;
}

export interface IPipeline {
  project: string;
  folder?: string;
  run: IRunSummary | null;
  parameters: Record<string, unknown>;
  tasks: ITask[];
  edges: IEdge[];
  event_id: number;
}

export interface IAttempt {
  attempt: number;
  status: string;
  started: number | null;
  ended: number | null;
  duration: number | null;
  error_cell: number | null;
  error: string | null;
  error_kind?: string | null;
  executed: string | null;
  partial?: boolean;
  /** Filled by later servers (Dask executor, resource accounting): shown when present. */
  [extra: string]: unknown;
}

export interface IRunDetail extends IRunSummary {
  tasks: any;
}

export interface IRunTasks extends IRunSummary {
  tasks: any;
}

export interface IAttemptLog {
  log: string;
  error: string | null;
  error_cell: number | null;
  status?: string;
  executed: string | null;
}

/** The body of `POST runs` and `POST dry-run`. */
export interface IRunRequest {
  parameters: Record<string, unknown>;
  only: string[];
  force: boolean;
  queue?: boolean;
  /** Where the run's tasks execute; left out: the project's own (nbflow.toml `executor`). */
  executor?: 'local' | 'dask';
}

/** The Run form's executor choice (GET parameters). */
export interface IExecutorOptions {
  default: 'local' | 'dask';
  choices: Array<'local' | 'dask'>;
  dask: { address: string | null; local_workers: number | null; where: string; installed: boolean };
}

/** One delivery of an alert to one target (GET alerts). */
export interface IDelivery {
  id: number;
  target: string;
  status: 'sent' | 'failed' | 'pending';
  attempts: number;
  error: string | null;
  created_at: number;
  updated_at: number;
}

/** An alert with its deliveries (GET alerts), like `nbflow alerts`. */
export interface IAlert {
  id: number;
  created_at: number;
  severity: 'critical' | 'warning' | 'info';
  event: string;
  run_id: string | null;
  task: string | null;
  title: string;
  body: string;
  outcome: 'routed' | 'grouped' | 'rate_limited' | string;
  deliveries: IDelivery[];
}

/** A circuit breaker (GET breakers), like `nbflow breakers`. */
export interface IBreaker {
  name: string;
  state: 'closed' | 'open' | 'half_open';
  failures: number;
  threshold: number;
  window: number;
  cooldown: number;
  opened_at: number | null;
  next_probe: number | null;
  last_error: string | null;
  probe: string | null;
  used_by: string[];
}

/** The answer of `POST runs`: the new (or queued) run and any warnings about its parameters. */
export interface IStartedRun {
  run_id: string;
  warnings?: string[];
  queued?: boolean;
  position?: number;
}

/** One field of the Run form (GET parameters). */
export interface IParameterField {
  name: string;
  value: unknown;
  type: string;
  declared_in: string[];
  source: 'notebook' | 'config' | 'run';
  default: unknown;
  editable: boolean;
}

export interface IPlannedTask {
  task: string;
  action: 'run' | 'skip';
  reason: string;
}

export interface IDryRun {
  tasks: IPlannedTask[];
  parameters: Record<string, unknown>;
  warnings: string[];
}

/** An attempt that wrote or read a dataset version. */
export interface ILineageAttempt {
  attempt: number;
  run_id: string;
  task: string;
  number: number;
  status: string;
  started_at: number | null;
  ended_at: number | null;
}

export interface IDatasetVersion {
  path: string;
  hash: string;
  size: number | null;
  version_id: number;
  producer: ILineageAttempt | null;
}

export interface ILineageTree extends IDatasetVersion {
  inputs: ILineageTree[];
  repeated?: true;
  truncated?: boolean;
}

export interface IDatasetWrite extends IDatasetVersion {
  created_at: number | null;
  consumers: ILineageAttempt[];
}

/** A task's attempt in its lineage: an ILineageAttempt whose id is `id`, with its executed notebook's path. */
export interface ILineageTaskAttempt extends Omit<ILineageAttempt, 'attempt'> {
  id: number;
  executed: string | null;
}

export interface ITaskLineage {
  task: string;
  attempt: ILineageTaskAttempt;
  reads: ILineageTree[];
  writes: IDatasetWrite[];
}

export type LineageResponse = { task: ITaskLineage } | { path: ILineageTree };

/** A file an attempt read or wrote (GET .../attempts/N/io). */
export interface IAttemptFile {
  path: string;
  hash: string;
  size: number | null;
  /** Server-root-relative path to open it in JupyterLab (null outside the root). */
  open: string | null;
  producer: ILineageAttempt | null;
}

export interface IAttemptIO {
  reads: IAttemptFile[];
  writes: IAttemptFile[];
}

/** GET tasks/T/history. */
export interface ITaskHistory {
  task: string;
  attempts: Array<{ run_id: string; attempt: number; status: string; started: number | null; duration: number | null }>;
}

/** GET runs/ID/timeline. */
export interface ITimelineAttempt {
  task: string;
  attempt: number;
  status: string;
  queued: number | null;
  started: number | null;
  cells_started: number | null;
  ended: number | null;
  error: string | null;
}

export interface ITimeline {
  run: { id: string; status: string; started: number | null; ended: number | null };
  attempts: ITimelineAttempt[];
  tasks: Array<{ task: string; status: string; started: number | null; ended: number | null }>;
  now: number;
}

/** GET notebook?path=: an executed notebook's JSON. */
export interface INotebookJSON {
  path: string | null;
  mtime: number;
  notebook: { cells: any[]; metadata: any };
}

export interface ISchedule {
  name: string;
  source: string;
  cron: string;
  timezone: string;
  parameters: Record<string, unknown>;
  only: string[];
  catchup: string;
  max_concurrent: number;
  overlap: string;
  paused: boolean;
  next_fire: string | null;
  next_fires: string[];
  last_slot: ISlot | null;
  slots: Record<string, number>;
}

export interface ISlot {
  slot: string;
  run_date: string;
  trigger?: string;
  status: string;
  reason: string | null;
  run_id: string | null;
  claimed_at?: number | null;
  ended_at?: number | null;
}

export interface ISensor {
  name: string;
  glob: string;
  parameter: string;
  files: Array<{ path: string; status: string; reason: string | null; run_id: string | null }>;
  pending: Array<{ path: string; size: number }>;
  counts: Record<string, number>;
}

export interface IBackfill {
  schedule: string | null;
  start: string;
  end: string;
  total: number;
  counts: Record<string, number>;
  running: boolean;
  exit_code: number | null;
  log: string;
}

export interface ISchedules {
  schedules: ISchedule[];
  sensors: ISensor[];
  scheduler: { running: boolean; holder: { pid: number; host: string; heartbeat_age: number } | null };
  backfill: IBackfill | null;
}

export interface ICronPreview {
  cron: string;
  timezone: string;
  description: string | null;
  next: string[];
}

/** GET runs/compare (Project.diff, issue 15): loosely typed, the view reads what is there. */
export type CompareResponse = Record<string, any>;

/** GET notebook-tags: one notebook as a task, for the pipeline sidebar and the graph's edge card (issue 16). */
export interface INotebookTags {
  project: string;
  task: string;
  path: string;
  relpath: string;
  format: string;
  paired: string | null;
  ploomber: string | null;
  upstream: string[];
  downstream: string[];
  parameters_cell: number | null;
  check_cells: number[];
  upstream_cells: Array<{ task: string; cell: number }>;
  reads: Array<{ path: string; cell: number }>;
  writes: Array<{ path: string; cell: number }>;
  cell_tags: string[][];
  cell_lines: number[];
  tasks: string[];
  written: string[];
}

/** One cell's tag change (POST notebook-tags; swapping add and remove undoes it). */
export interface ITagEdit {
  notebook: string;
  cell: number;
  add: string[];
  remove: string[];
}
