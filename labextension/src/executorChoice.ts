/**
 * The Run form's executor choice (issue 12): this machine, or the Dask cluster nbflow.toml names (its scheduler's
 * address, or a local cluster of N workers). The project's own executor is preselected; only a different choice is
 * sent, so a run started with the default keeps following nbflow.toml.
 */
import { IExecutorOptions } from './api';
import { h } from './dom';

export class ExecutorChoice {
  readonly node: HTMLLabelElement;
  private select = h('select', { class: 'nbflow-executor', name: 'executor' });

  constructor(private options: IExecutorOptions | null) {
    const o = options;
    for (const choice of o?.choices ?? ['local', 'dask']) {
      const label = choice === 'local' ? 'local (this machine)' : `dask (${o?.dask.where ?? 'the configured cluster'})`;
      const option = new Option(label, choice, false, choice === (o?.default ?? 'local'));
      if (choice === 'dask' && o && !o.dask.installed) {
        option.disabled = true;
        option.text += ': not installed (pip install "nbflow[dask]")';
      }
      this.select.append(option);
    }
    this.node = h(
      'label',
      { class: 'nbflow-executor-choice', title: 'Where the run\'s notebooks execute (nbflow.toml: executor, [dask])' },
      'Executor ',
      this.select
    );
    this.select.setAttribute('data-default', o?.default ?? 'local');
  }

  /** The executor to ask for, or undefined when it is the project's own. */
  value(): 'local' | 'dask' | undefined {
    const v = this.select.value as 'local' | 'dask';
    return v === (this.options?.default ?? 'local') ? undefined : v;
  }
}
