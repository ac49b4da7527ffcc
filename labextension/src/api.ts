/**
 * Typed client of nbflow's REST API (docs/rest-api.md). Every call goes through
 * ServerConnection.makeRequest so the token, XSRF header and base_url are handled by JupyterLab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export type TaskState =
  | 'pending'
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'check_failed'
  | 'upstream_failed'
  | 'skipped'
  | 'cancelled';

export interface ITaskError {
  cell: number | null;
  ename?: string;
  evalue?: string;
  message?: string;
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
  logical_date?: string;
}

export interface IPipeline {
  project: string;
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
}

export interface IRunDetail extends IRunSummary {
  tasks: Array<{ name: string; state: string; attempts: IAttempt[]; reason: string | null }>;
}

export interface IAttemptLog {
  log: string;
  error: string | null;
  error_cell: number | null;
  status?: string;
  executed: string | null;
}

/** The body of `POST runs`. */
export interface IRunRequest {
  parameters: Record<string, unknown>;
  only: string[];
  force: boolean;
}

/** The answer of `POST runs`: the new run and any warnings about its parameters. */
export interface IStartedRun {
  run_id: string;
  warnings?: string[];
}

/** An attempt that wrote or read a dataset version (the store's `_version` producer, `version_consumers` rows). */
export interface ILineageAttempt {
  /** The attempt's id in the store. */
  attempt: number;
  run_id: string;
  task: string;
  /** The attempt's number within its task and run, from 1. */
  number: number;
  status: string;
  started_at: number | null;
  ended_at: number | null;
}

/** One dataset version: a file's content as one attempt wrote it (or as found, for an external input). */
export interface IDatasetVersion {
  path: string;
  /** sha256 hex of the content. */
  hash: string;
  size: number | null;
  version_id: number;
  /** null: an external input, written by no task. */
  producer: ILineageAttempt | null;
}

/** A version with what its producer read, recursively (the store's `_tree`). */
export interface ILineageTree extends IDatasetVersion {
  inputs: ILineageTree[];
  /** Met before in this answer: shown once, its inputs not repeated. */
  repeated?: true;
  /** The depth limit was reached before its (existing) inputs. */
  truncated?: boolean;
}

/** A version a task wrote, with the attempts that have read it since. */
export interface IDatasetWrite extends IDatasetVersion {
  created_at: number | null;
  consumers: ILineageAttempt[];
}

/** The `attempts` row of the task's last succeeded attempt, less `log` and `fingerprint`, plus `executed`. */
export interface ILineageTaskAttempt {
  id: number;
  run_id: string;
  task: string;
  number: number;
  status: string;
  started_at: number | null;
  ended_at: number | null;
  cache_key: string | null;
  artifact: string | null;
  error_kind: string | null;
  error: string | null;
  error_cell: number | null;
  host: string | null;
  pid: number | null;
  /** The executed notebook, relative to the server root (null outside it). */
  executed: string | null;
}

/** What a task's last succeeded attempt read (as lineage trees) and wrote (with who read it since). */
export interface ITaskLineage {
  task: string;
  attempt: ILineageTaskAttempt;
  reads: ILineageTree[];
  writes: IDatasetWrite[];
}

/** The answer of `lineage?task=T` or of `lineage?path=F`. */
export type LineageResponse = { task: ITaskLineage } | { path: ILineageTree };

/** An error answer of the API, with the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

export class NbflowApi {
  constructor(
    readonly project: string,
    private settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  pipeline(run: string | null): Promise<IPipeline> {
    return this.get('pipeline', run ? { run } : {});
  }

  changes(since: number, timeout: number, signal?: AbortSignal): Promise<{ event_id: number; changed: boolean }> {
    return this.get('changes', { since: String(since), timeout: String(timeout) }, signal);
  }

  runs(limit: number, offset: number): Promise<{ runs: IRunSummary[]; total: number }> {
    return this.get('runs', { limit: String(limit), offset: String(offset) });
  }

  run(id: string): Promise<IRunDetail> {
    return this.get(`runs/${encodeURIComponent(id)}`);
  }

  log(run: string, task: string, attempt: number): Promise<IAttemptLog> {
    return this.get(`runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task)}/attempts/${attempt}/log`);
  }

  lineage(query: { task: string } | { path: string }): Promise<LineageResponse> {
    return this.get('lineage', query);
  }

  startRun(body: IRunRequest): Promise<IStartedRun> {
    return this.request('runs', {}, { method: 'POST', body: JSON.stringify(body) });
  }

  cancel(run: string): Promise<{ run_id: string }> {
    return this.request(`runs/${encodeURIComponent(run)}/cancel`, {}, { method: 'POST', body: '{}' });
  }

  private get<T>(route: string, query: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
    return this.request(route, query, { method: 'GET', signal });
  }

  private async request<T>(route: string, query: Record<string, string>, init: RequestInit): Promise<T> {
    const params = new URLSearchParams({ project: this.project, ...query });
    const url = URLExt.join(this.settings.baseUrl, 'nbflow/api', route) + '?' + params.toString();
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (e) {
      if ((e as Error).name === 'AbortError') {
        throw e;
      }
      throw new ApiError(0, `cannot reach the Jupyter server: ${e}`);
    }
    const text = await response.text();
    let data: any = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      let message = data && data.message ? data.message : `${response.status} ${response.statusText}`;
      if (response.status === 404 && !(data && data.message)) {
        message = 'the nbflow server extension does not answer (404). Fix: check `jupyter server extension list` shows nbflow.server enabled, then restart Jupyter';
      }
      throw new ApiError(response.status, message);
    }
    return data as T;
  }
}
