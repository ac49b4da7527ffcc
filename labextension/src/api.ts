/**
 * Typed client of nbflow's REST API (docs/rest-api.md). Every call goes through
 * ServerConnection.makeRequest so the token, XSRF header and base_url are handled by JupyterLab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  CompareResponse,
  IAlert,
  IAttemptIO,
  IAttemptLog,
  IBreaker,
  ICronPreview,
  IDryRun,
  IExecutorOptions,
  INotebookJSON,
  INotebookTags,
  IParameterField,
  IPipeline,
  IRunDetail,
  IRunRequest,
  IRunSummary,
  ISchedules,
  ISlot,
  ITagEdit,
  IStartedRun,
  ITaskHistory,
  ITimeline,
  LineageResponse
} from './types';

export * from './types';

/** An error answer of the API, with the server's message (and the form field it names, if any). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    /** The answer's JSON (a refused dependency edit's `cycle`). */
    readonly body: any = null
  ) {
    super(message);
  }
}

/** History filters: statuses, a trigger prefix, and whether runs where nothing ran are hidden. */
export interface IHistoryQuery {
  limit: number;
  offset: number;
  status?: string[];
  trigger?: string;
  ranOnly?: boolean;
  /** Runs where nothing ran too (`all=1`: the server hides succeeded runs where nothing ran by default). */
  all?: boolean;
}

export interface IHistory {
  runs: IRunSummary[];
  total: number;
  queued: IRunSummary[];
}

const enc = encodeURIComponent;

export class NbflowApi {
  constructor(
    readonly project: string,
    private settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  pipeline(run: string | null): Promise<IPipeline> {
    return this.get('pipeline', run ? { run } : {});
  }

  changes(since: number, timeout: number, sources: string, signal?: AbortSignal): Promise<{ event_id: number; changed: boolean; sources?: string }> {
    return this.get('changes', { since: String(since), timeout: String(timeout), sources }, signal);
  }

  runs(q: IHistoryQuery): Promise<IHistory> {
    const query: Record<string, string> = { limit: String(q.limit), offset: String(q.offset), tasks: '1' };
    if (q.status?.length) {
      query.status = q.status.join(',');
    }
    if (q.trigger) {
      query.trigger = q.trigger;
    }
    if (q.ranOnly) {
      query.ran = '1';
    }
    if (q.all) {
      query.all = '1';
    }
    return this.get('runs', query);
  }

  run(id: string): Promise<IRunDetail> {
    return this.get(`runs/${enc(id)}`);
  }

  log(run: string, task: string, attempt: number): Promise<IAttemptLog> {
    return this.get(`runs/${enc(run)}/tasks/${enc(task)}/attempts/${attempt}/log`);
  }

  io(run: string, task: string, attempt: number): Promise<IAttemptIO> {
    return this.get(`runs/${enc(run)}/tasks/${enc(task)}/attempts/${attempt}/io`);
  }

  timeline(run: string): Promise<ITimeline> {
    return this.get(`runs/${enc(run)}/timeline`);
  }

  compare(a: string, b: string, task?: string): Promise<CompareResponse> {
    return this.get('runs/compare', task ? { a, b, task } : { a, b });
  }

  lineage(query: { task: string } | { path: string }): Promise<LineageResponse> {
    return this.get('lineage', query);
  }

  datasets(prefix: string): Promise<{ paths: string[] }> {
    return this.get('datasets', { prefix });
  }

  taskHistory(task: string, limit = 30): Promise<ITaskHistory> {
    return this.get(`tasks/${enc(task)}/history`, { limit: String(limit) });
  }

  parameters(): Promise<{ fields: IParameterField[]; executor?: IExecutorOptions }> {
    return this.get('parameters');
  }

  notebook(path: string): Promise<INotebookJSON> {
    return this.get('notebook', { path });
  }

  startRun(body: IRunRequest): Promise<IStartedRun> {
    return this.post('runs', body);
  }

  dryRun(body: IRunRequest): Promise<IDryRun> {
    return this.post('dry-run', body);
  }

  resume(run: string): Promise<{ run_id: string }> {
    return this.post(`runs/${enc(run)}/resume`, {});
  }

  cancel(run: string): Promise<{ run_id: string; dequeued?: boolean }> {
    return this.post(`runs/${enc(run)}/cancel`, {});
  }

  schedules(): Promise<ISchedules> {
    return this.get('schedules');
  }

  slots(name: string, limit = 20): Promise<{ name: string; slots: ISlot[] }> {
    return this.get(`schedules/${enc(name)}/slots`, { limit: String(limit) });
  }

  addSchedule(body: Record<string, unknown>): Promise<unknown> {
    return this.post('schedules', body);
  }

  scheduleAction(name: string, action: 'pause' | 'resume' | 'remove'): Promise<unknown> {
    return this.post(`schedules/${enc(name)}/${action}`, {});
  }

  cron(expr: string, timezone: string): Promise<ICronPreview> {
    return this.get('cron', { expr, timezone });
  }

  backfill(body: Record<string, unknown>): Promise<unknown> {
    return this.post('backfill', body);
  }

  alerts(limit = 50): Promise<{ alerts: IAlert[] }> {
    return this.get('alerts', { limit: String(limit) });
  }

  breakers(): Promise<{ breakers: IBreaker[] }> {
    return this.get('breakers');
  }

  resetBreaker(name: string): Promise<{ breaker: IBreaker }> {
    return this.post(`breakers/${enc(name)}/reset`, {});
  }

  /** Dependency editing (depEdit.ts, pipelineSidebar.ts): one notebook as a task, a cell's tags, an upstream: edge. */
  notebookTags(notebook: string): Promise<INotebookTags> {
    return this.get('notebook-tags', { notebook });
  }

  editTags(body: ITagEdit): Promise<IPipeline> {
    return this.post('notebook-tags', body);
  }

  editDependency(task: string, upstream: string, action: 'add' | 'remove'): Promise<{ pipeline: IPipeline; edits: ITagEdit[] }> {
    return this.post('dependencies', { task, upstream, action });
  }

  private get<T>(route: string, query: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
    return this.request(route, query, { method: 'GET', signal });
  }

  private post<T>(route: string, body: unknown): Promise<T> {
    return this.request(route, {}, { method: 'POST', body: JSON.stringify(body) });
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
        message =
          'the nbflow server extension does not answer (404). Fix: check `jupyter server extension list` shows nbflow.server enabled, then restart Jupyter';
      }
      throw new ApiError(response.status, message, data?.field ?? null, data);
    }
    return data as T;
  }
}
