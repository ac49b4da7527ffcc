/**
 * nbflow's JupyterLab plugin: the "Open nbflow pipeline" command in the palette, the launcher and the
 * file browser's context menu (on a folder or a notebook), each opening (or focusing) the panel of that project;
 * panels come back after a reload; executed notebooks open read-only, without a kernel. A second plugin adds the
 * notebook editor's "pipeline" sidebar.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, INotebookWidgetFactory, NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';

import nbflowSvg from '../style/icons/nbflow.svg';

import { ARTIFACT_FACTORY, artifactFactory, logWidget } from './artifact';
import { IDepHost } from './depEdit';
import { NbflowPanel } from './panel';
import { PipelineSidebar, jumpToCell } from './pipelineSidebar';

export const OPEN = 'nbflow:open';
const OPEN_SELECTED = 'nbflow:open-selected';
const OPEN_ARTIFACT = 'nbflow:open-artifact';
const LABEL = 'Open nbflow pipeline';
export const nbflowIcon = new LabIcon({ name: 'nbflow:pipeline', svgstr: nbflowSvg });

/** The folder a path stands for: a notebook's own folder, a folder itself. */
export function projectOf(path: string, isNotebook: boolean): string {
  return isNotebook ? PathExt.dirname(path) : path;
}

/** The restorer's key for a project; never empty (an empty name is not saved, which lost the root project's panel). */
function restoreName(project: string): string {
  return project || '.';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  description: 'nbflow pipeline panel: live graph, run history, timeline, comparison, schedules, lineage.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IDefaultFileBrowser, IFileBrowserFactory, ILayoutRestorer, IRenderMimeRegistry, INotebookWidgetFactory],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    defaultBrowser: IDefaultFileBrowser | null,
    browserFactory: IFileBrowserFactory | null,
    restorer: ILayoutRestorer | null,
    rendermime: IRenderMimeRegistry | null,
    notebookFactory: NotebookWidgetFactory.IFactory | null
  ) => {
    const tracker = new WidgetTracker<MainAreaWidget<NbflowPanel>>({ namespace: 'nbflow' });
    if (notebookFactory) {
      app.docRegistry.addWidgetFactory(artifactFactory(notebookFactory as NotebookWidgetFactory));
    }

    const focus = (w: MainAreaWidget<NbflowPanel>) => {
      app.shell.activateById(w.id);
      return w;
    };

    // Dependency editing (depEdit.ts). Open notebooks are found in the shell, not through INotebookTracker: depending
    // on the tracker would delay this plugin (and the panels' restore after a reload) until the notebook plugins load.
    const deps: IDepHost = {
      findNotebook: path =>
        (Array.from(app.shell.widgets('main')).find(
          w => w instanceof NotebookPanel && app.serviceManager.contents.localPath(w.context.path) === path
        ) as NotebookPanel | undefined) ?? null,
      openCell: async (path, cell) => {
        const w = await app.commands.execute('docmanager:open', { path });
        if (w instanceof NotebookPanel) {
          await w.context.ready;
          await w.revealed;
          await jumpToCell(w, cell);
        }
      }
    };
    // Resolves once the tracker holds the panel: the layout restorer names a restored panel only then, and a panel
    // the command returned before that was left out of the restored layout (a reload lost a tab, now and then).
    const open = async (project: string): Promise<MainAreaWidget<NbflowPanel>> => {
      const existing = tracker.find(w => w.content.api.project === project || w.content.resolvedProject === project);
      if (existing) {
        return focus(existing);
      }
      const content = new NbflowPanel({
        project,
        rendermime,
        deps,
        openDocument: path => void app.commands.execute('docmanager:open', { path }),
        openArtifact: (path, run) => void app.commands.execute(OPEN_ARTIFACT, { path, run }),
        openLog: (title, text) => {
          const w = logWidget(title, text);
          app.shell.add(w, 'main', { mode: 'split-bottom' });
          app.shell.activateById(w.id);
        }
      });
      const widget = new MainAreaWidget({ content });
      widget.id = `nbflow-${Math.random().toString(36).slice(2)}`;
      widget.title.label = `nbflow: ${project || PathExt.basename(app.serviceManager.contents.localPath(project)) || '/'}`;
      widget.title.closable = true;
      widget.title.icon = nbflowIcon;
      widget.addClass('nbflow-main');
      // Two paths can name one project (a notebook folder under the folder with nbflow.toml): keep one tab.
      content.resolved.connect((_, resolved) => {
        const twin = tracker.find(w => w !== widget && (w.content.resolvedProject === resolved || w.content.api.project === resolved));
        if (twin) {
          widget.dispose();
          focus(twin);
        }
      });
      await tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    app.commands.addCommand(OPEN, {
      label: LABEL,
      caption: 'Show the notebooks of a folder as a pipeline: graph, runs, timeline, schedules, lineage',
      icon: nbflowIcon,
      execute: args => {
        const path = typeof args.path === 'string' ? args.path : (defaultBrowser?.model.path ?? '');
        const local = app.serviceManager.contents.localPath(path);
        return open(local.endsWith('.ipynb') ? projectOf(local, true) : local === '.' ? '' : local);
      }
    });

    app.commands.addCommand(OPEN_SELECTED, {
      label: LABEL,
      icon: nbflowIcon,
      execute: () => {
        const browser = browserFactory?.tracker.currentWidget ?? defaultBrowser;
        const item = browser ? Array.from(browser.selectedItems())[0] : undefined;
        const path = item ? item.path : (browser?.model.path ?? '');
        const local = app.serviceManager.contents.localPath(path);
        return open(projectOf(local, item?.type === 'notebook'));
      }
    });

    app.commands.addCommand(OPEN_ARTIFACT, {
      label: 'Open executed notebook (read-only)',
      execute: args => {
        const path = String(args.path ?? '');
        const factory = notebookFactory ? ARTIFACT_FACTORY : undefined;
        return app.commands.execute('docmanager:open', { path, factory });
      }
    });

    app.contextMenu.addItem({ command: OPEN_SELECTED, selector: '.jp-DirListing-item[data-isdir="true"]', rank: 10 });
    app.contextMenu.addItem({ command: OPEN_SELECTED, selector: '.jp-DirListing-item[data-file-type="notebook"]', rank: 10 });
    palette?.addItem({ command: OPEN, category: 'nbflow' });
    launcher?.add({ command: OPEN, category: 'Other', rank: 50 });

    if (restorer) {
      void restorer.restore(tracker, {
        command: OPEN,
        args: w => ({ path: w.content.api.project }),
        name: w => restoreName(w.content.api.project)
      });
    }
  }
};

/** The notebook editor's "pipeline" sidebar (pipelineSidebar.ts): a plugin of its own, as it needs the notebooks. */
const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:pipeline-sidebar',
  description: 'The current notebook as a pipeline task: its neighbours, tagged cells, state, and a tag editor.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker) => {
    // Added once the layout is restored, so that restoring the main area (the panels) never waits on it.
    void app.restored.then(() => {
      const sidebar = new PipelineSidebar(notebooks, path => void app.commands.execute('docmanager:open', { path }), nbflowIcon);
      app.shell.add(sidebar, 'right', { rank: 900 });
    });
  }
};

export default [plugin, sidebarPlugin];
