/**
 * Executed notebooks open as artifacts: a notebook widget factory that never starts a kernel (no kernel is even
 * offered), makes every cell read-only, never saves, and titles the tab `train.ipynb · run …` with a banner saying
 * which run it comes from. Source notebooks keep JupyterLab's own factory, so the two tabs look different.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

export const ARTIFACT_FACTORY = 'nbflow executed notebook';

/** The run an artifact path belongs to: `…/nbflow-runs/<run>/<task>.ipynb`. */
export function runOfArtifact(path: string): string {
  const parts = path.split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : '';
}

function banner(run: string): Widget {
  const node = document.createElement('div');
  node.className = 'nbflow-artifact-banner';
  node.textContent = `Executed notebook of run ${run}: a read-only artifact (no kernel). Open the source notebook to edit or run it.`;
  return new Widget({ node });
}

/** Keep a notebook read-only: every cell, now and when cells are (re)created from the file. */
function freeze(panel: NotebookPanel): void {
  const apply = () => {
    for (const cell of panel.content.widgets) {
      cell.readOnly = true;
    }
  };
  panel.context.ready.then(() => {
    panel.context.model.readOnly = true;
    apply();
  });
  panel.content.model?.cells.changed.connect(apply);
  panel.content.modelChanged.connect(apply);
  // An artifact is evidence: saving (Ctrl+S, autosave) must never write it back.
  (panel.context as unknown as { save: () => Promise<void> }).save = async () => undefined;
}

/** A factory of read-only, kernel-less notebook panels, built from JupyterLab's own notebook factory's settings. */
export function artifactFactory(base: NotebookWidgetFactory): NotebookWidgetFactory {
  const factory = new NotebookWidgetFactory({
    name: ARTIFACT_FACTORY,
    label: 'Executed notebook (read-only)',
    fileTypes: ['notebook'],
    modelName: 'notebook',
    preferKernel: false,
    canStartKernel: false,
    shutdownOnClose: false,
    readOnly: true,
    rendermime: base.rendermime,
    contentFactory: base.contentFactory,
    mimeTypeService: base.mimeTypeService,
    editorConfig: base.editorConfig,
    notebookConfig: base.notebookConfig,
    toolbarFactory: (panel: NotebookPanel) => [{ name: 'nbflow-artifact', widget: banner(runOfArtifact(panel.context.path)) }]
  });
  factory.widgetCreated.connect((_, panel: NotebookPanel) => {
    const run = runOfArtifact(panel.context.path);
    const name = panel.context.path.split('/').pop() ?? '';
    panel.addClass('nbflow-artifact');
    panel.title.className += ' nbflow-artifact-tab';
    const retitle = () => {
      panel.title.label = `${name} · run ${run}`;
      panel.title.caption = `Executed notebook ${panel.context.path} (run ${run}), read-only`;
    };
    retitle();
    panel.title.changed.connect(() => panel.title.label.includes(' · run ') || retitle());
    freeze(panel);
  });
  return factory;
}

/** A log in its own tab: monospace, scrollable, selectable. */
export function logWidget(title: string, text: string): MainAreaWidget {
  const pre = document.createElement('pre');
  pre.className = 'nbflow-log-viewer';
  pre.textContent = text;
  const content = new Widget({ node: pre });
  const widget = new MainAreaWidget({ content });
  widget.id = `nbflow-log-${Math.random().toString(36).slice(2)}`;
  widget.title.label = title;
  widget.title.closable = true;
  widget.addClass('nbflow-log-tab');
  return widget;
}

export type ArtifactFactory = DocumentRegistry.IWidgetFactory<NotebookPanel, any>;
