/**
 * nbflow's JupyterLab plugin: the "Open nbflow pipeline" command in the palette, the launcher and the
 * file browser's context menu (on a folder or a notebook), each opening a panel for that project.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import nbflowSvg from '../style/icons/nbflow.svg';

import { NbflowPanel } from './panel';

export const OPEN = 'nbflow:open';
const OPEN_SELECTED = 'nbflow:open-selected';
const LABEL = 'Open nbflow pipeline';
export const nbflowIcon = new LabIcon({ name: 'nbflow:pipeline', svgstr: nbflowSvg });

/** The folder a path stands for: a notebook's own folder, a folder itself. */
export function projectOf(path: string, isNotebook: boolean): string {
  return isNotebook ? PathExt.dirname(path) : path;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  description: 'nbflow pipeline panel: live graph, run history, lineage.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IDefaultFileBrowser, IFileBrowserFactory, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    defaultBrowser: IDefaultFileBrowser | null,
    browserFactory: IFileBrowserFactory | null,
    restorer: ILayoutRestorer | null
  ) => {
    const tracker = new WidgetTracker<MainAreaWidget<NbflowPanel>>({ namespace: 'nbflow' });

    const open = (project: string): MainAreaWidget<NbflowPanel> => {
      const existing = tracker.find(w => w.content.api.project === project);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const content = new NbflowPanel({
        project,
        openDocument: path => void app.commands.execute('docmanager:open', { path })
      });
      const widget = new MainAreaWidget({ content });
      widget.id = `nbflow-${Math.random().toString(36).slice(2)}`;
      widget.title.label = `nbflow: ${project || '/'}`;
      widget.title.closable = true;
      widget.title.icon = nbflowIcon;
      widget.addClass('nbflow-main');
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    app.commands.addCommand(OPEN, {
      label: LABEL,
      caption: 'Show the notebooks of a folder as a pipeline: graph, runs, lineage',
      icon: nbflowIcon,
      execute: args => {
        const path = typeof args.path === 'string' ? args.path : (defaultBrowser?.model.path ?? '');
        const local = app.serviceManager.contents.localPath(path);
        return open(local.endsWith('.ipynb') ? projectOf(local, true) : local);
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

    app.contextMenu.addItem({ command: OPEN_SELECTED, selector: '.jp-DirListing-item[data-isdir="true"]', rank: 10 });
    app.contextMenu.addItem({ command: OPEN_SELECTED, selector: '.jp-DirListing-item[data-file-type="notebook"]', rank: 10 });
    palette?.addItem({ command: OPEN, category: 'nbflow' });
    launcher?.add({ command: OPEN, category: 'Other', rank: 50 });

    if (restorer) {
      void restorer.restore(tracker, {
        command: OPEN,
        args: w => ({ path: w.content.api.project }),
        name: w => w.content.api.project
      });
    }
  }
};

export default plugin;
