/**
 * The History panel's plugin: puts the panel in the right side bar of
 * JupyterLab and Notebook 7, follows the document in focus, and makes every
 * action a command, in the palette and on the keyboard.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { PageConfig, PathExt, URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { historyIcon } from './icon';
import { Widget } from '@lumino/widgets';

import { HistoryClient, HistoryError, IVersion } from './api';
import { VersionDiff } from './diffview';
import { basename, HistoryPanel } from './panel';
import { VersionPreview } from './preview';

/** The event the server emits when a version is archived or annotated. */
export const EVENT_SCHEMA = 'https://schema.jupyter.org/bookstore/version/v1';
/** The query parameter of a link to a version. */
export const LINK_PARAMETER = 'bookstore-version';

const CATEGORY = 'Notebook History';
const LIST = '.jp-BookstoreHistory-list';

/** The commands, by what they do. */
export const CommandIDs = {
  open: 'bookstore:open-history',
  refresh: 'bookstore:refresh-history',
  preview: 'bookstore:preview-version',
  diffCurrent: 'bookstore:diff-with-current',
  mark: 'bookstore:mark-version',
  diffMarked: 'bookstore:diff-with-marked',
  restore: 'bookstore:restore-version',
  restoreCopy: 'bookstore:restore-version-as-copy',
  download: 'bookstore:download-version',
  label: 'bookstore:label-version',
  pin: 'bookstore:pin-version',
  copyLink: 'bookstore:copy-version-link'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@bookstore/history-panel:plugin',
  description:
    'Every archived version of the notebook in focus: preview, diff, restore, label, pin.',
  autoStart: true,
  requires: [IRenderMimeRegistry, IDocumentManager],
  optional: [ICommandPalette, IEditorServices, IEditorLanguageRegistry],
  activate
};

function activate(
  app: JupyterFrontEnd,
  rendermime: IRenderMimeRegistry,
  docManager: IDocumentManager,
  palette: ICommandPalette | null,
  editorServices: IEditorServices | null,
  languages: IEditorLanguageRegistry | null
): void {
  const link = linkedVersion();
  const client = new HistoryClient(app.serviceManager.serverSettings);
  const panel = new HistoryPanel(client);
  panel.title.icon = historyIcon;
  app.shell.add(panel, 'right', { rank: 900 });

  // -- the document in focus ----------------------------------------------------
  let context: DocumentRegistry.Context | null = null;
  const onRenamed = (_: unknown, path: string) => void panel.reload(path);
  const onClosed = () => {
    context = null;
    void panel.showHistory(null);
  };
  const follow = () => {
    const widget = app.shell.currentWidget;
    const found = widget ? docManager.contextForWidget(widget) : undefined;
    if (found === undefined) {
      return; // a launcher or a terminal: keep showing the last document
    }
    if (found !== context) {
      context?.pathChanged.disconnect(onRenamed);
      context?.disposed.disconnect(onClosed);
      context = found;
      context.pathChanged.connect(onRenamed);
      context.disposed.connect(onClosed);
    }
    void panel.showHistory(found.path);
  };
  const shell = app.shell as unknown as {
    currentChanged?: { connect(slot: () => void): void };
  };
  shell.currentChanged?.connect(follow);

  // -- live: each version appears as soon as it is archived --------------------------
  app.serviceManager.events.stream.connect((_, event) => {
    if (event.schema_id === EVENT_SCHEMA && event.path === panel.path) {
      void panel.refresh();
    }
  });

  // -- commands --------------------------------------------------------------------
  const { commands } = app;
  const selected = () => panel.selected;
  const hasSelection = () => panel.path !== null && panel.selected !== null;
  const named = (verb: string) => () => {
    const version = selected();
    return version
      ? `${verb} Version ${version.version}`
      : `${verb} Selected Version`;
  };
  /** A tab in JupyterLab; a dialog in Notebook 7, whose main area holds one document. */
  const open = (widget: Widget, title: string) => {
    const main = new MainAreaWidget({ content: widget });
    main.title.label = title;
    main.title.icon = historyIcon;
    main.addClass('jp-BookstoreView');
    app.shell.add(main, 'main');
    if (main.isAttached) {
      app.shell.activateById(main.id);
      return;
    }
    widget.parent = null; // main is never attached: nothing else to release
    widget.addClass('jp-BookstoreView');
    void showDialog({
      title,
      body: widget,
      buttons: [Dialog.cancelButton({ label: 'Close' })]
    }).then(() => widget.dispose());
  };
  const preview = (version: IVersion) =>
    open(
      new VersionPreview({
        client,
        path: panel.path!,
        version: version.version,
        size: version.size,
        rendermime,
        languages
      }),
      `${basename(panel.path!)} v${version.version} (read only)`
    );
  const diff = (from: number, to: number | null) =>
    open(
      new VersionDiff({
        client,
        path: panel.path!,
        from,
        to,
        rendermime,
        editorFactory: editorServices
          ? editorServices.factoryService.newInlineEditor.bind(
              editorServices.factoryService
            )
          : undefined
      }),
      `${basename(panel.path!)} v${from} ↔ ${to === null ? 'now' : `v${to}`}`
    );
  const act = async (what: () => Promise<unknown>) => {
    try {
      await what();
    } catch (error) {
      const message =
        error instanceof HistoryError ? error.message : String(error);
      panel.showMessage(message);
      await showErrorMessage('Notebook history', message);
    }
  };
  panel.opened.connect((_, version) => void preview(version));
  panel.selectionChanged.connect(() => commands.notifyCommandChanged());

  commands.addCommand(CommandIDs.open, {
    label: 'Show Notebook History',
    caption: 'Every archived version of the notebook in focus',
    icon: historyIcon,
    execute: () => {
      app.shell.activateById(panel.id);
      follow();
      panel.node.querySelector<HTMLElement>(LIST)?.focus();
    }
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Notebook History',
    execute: () => panel.refresh()
  });
  commands.addCommand(CommandIDs.preview, {
    label: named('Preview'),
    isEnabled: hasSelection,
    execute: () => {
      const version = selected();
      if (version) {
        preview(version);
      }
    }
  });
  commands.addCommand(CommandIDs.diffCurrent, {
    label: () => {
      const version = selected();
      return version
        ? `Diff Version ${version.version} With the Current Notebook`
        : 'Diff Selected Version With the Current Notebook';
    },
    isEnabled: hasSelection,
    execute: () => {
      const version = selected();
      if (version) {
        diff(version.version, null);
      }
    }
  });
  commands.addCommand(CommandIDs.mark, {
    label: named('Mark for Comparison:'),
    isEnabled: hasSelection,
    execute: () => {
      const version = selected();
      if (version) {
        panel.select(version.version, true);
      }
    }
  });
  commands.addCommand(CommandIDs.diffMarked, {
    label: () => {
      const [a, b] = [panel.marked, panel.selected];
      return a && b
        ? `Diff Versions ${Math.min(a.version, b.version)} and ${Math.max(a.version, b.version)}`
        : 'Diff Selected and Marked Versions';
    },
    isEnabled: () =>
      hasSelection() &&
      panel.marked !== null &&
      panel.marked !== panel.selected,
    execute: () => {
      const [a, b] = [panel.marked, panel.selected];
      if (a && b) {
        diff(Math.min(a.version, b.version), Math.max(a.version, b.version));
      }
    }
  });
  commands.addCommand(CommandIDs.restore, {
    label: named('Restore'),
    isEnabled: hasSelection,
    execute: () =>
      act(async () => {
        const version = selected()!;
        const path = panel.path!;
        const answer = await showDialog({
          title: `Restore version ${version.version}?`,
          body:
            `${basename(path)} will hold version ${version.version} again. ` +
            'What it holds now, unsaved edits included, is saved and archived ' +
            'first, so nothing is lost.',
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: 'Restore' })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        // Unsaved edits are saved first, so that they are archived, not lost.
        const open = docManager.findWidget(path);
        const opened = open ? docManager.contextForWidget(open) : undefined;
        if (opened?.model.dirty) {
          await opened.save();
        }
        const restored = await client.restore(path, version.version);
        await opened?.revert();
        await panel.refresh();
        panel.showMessage(
          `Restored version ${version.version}.` +
            (restored.warning ? ` ${restored.warning}` : '')
        );
      })
  });
  commands.addCommand(CommandIDs.restoreCopy, {
    label: named('Restore as a New Notebook:'),
    isEnabled: hasSelection,
    execute: () =>
      act(async () => {
        const version = selected()!;
        const path = panel.path!;
        const target = await freeName(docManager, path, version.version);
        await client.restore(path, version.version, target);
        docManager.openOrReveal(target, undefined, undefined, {
          mode: 'split-right'
        });
      })
  });
  commands.addCommand(CommandIDs.download, {
    label: named('Download'),
    isEnabled: hasSelection,
    execute: () => {
      const version = selected()!;
      const path = panel.path!;
      const anchor = document.createElement('a');
      anchor.href = client.contentUrl(path, version.version);
      anchor.download = versionName(path, version.version);
      document.body.appendChild(anchor);
      anchor.click();
      anchor.remove();
    }
  });
  commands.addCommand(CommandIDs.label, {
    label: () => {
      const version = selected();
      return version?.label
        ? `Relabel or Unlabel Version ${version.version}…`
        : named('Label')() + '…';
    },
    isEnabled: hasSelection,
    execute: () =>
      act(async () => {
        const version = selected()!;
        const answer = await InputDialog.getText({
          title: `Label version ${version.version}`,
          label: 'A name for this version (empty removes the label)',
          text: version.label ?? ''
        });
        if (!answer.button.accept || answer.value === null) {
          return;
        }
        const text = answer.value.trim();
        panel.showVersion(
          await client.label(panel.path!, version.version, text || null)
        );
      })
  });
  commands.addCommand(CommandIDs.pin, {
    label: () => {
      const version = selected();
      return version?.pinned ? named('Unpin')() : named('Pin')();
    },
    caption: 'A pinned version is never pruned or thinned',
    isEnabled: hasSelection,
    execute: () =>
      act(async () => {
        const version = selected()!;
        panel.showVersion(
          await client.pin(panel.path!, version.version, !version.pinned)
        );
      })
  });
  commands.addCommand(CommandIDs.copyLink, {
    label: named('Copy Link to'),
    isEnabled: hasSelection,
    execute: () => {
      const version = selected()!;
      Clipboard.copyToSystem(versionLink(app, panel.path!, version.version));
      panel.showMessage(`Copied a link to version ${version.version}.`);
    }
  });

  const keys: [string, string][] = [
    [CommandIDs.diffCurrent, 'V'],
    [CommandIDs.mark, 'M'],
    [CommandIDs.diffMarked, 'Shift V'],
    [CommandIDs.restore, 'R'],
    [CommandIDs.restoreCopy, 'Shift R'],
    [CommandIDs.download, 'S'],
    [CommandIDs.label, 'L'],
    [CommandIDs.pin, 'P'],
    [CommandIDs.copyLink, 'C']
  ];
  for (const [command, key] of keys) {
    commands.addKeyBinding({ command, keys: [key], selector: LIST });
  }
  commands.addKeyBinding({
    command: CommandIDs.open,
    keys: ['Accel Alt H'],
    selector: 'body'
  });
  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: CATEGORY });
    }
  }

  // -- a link to a version opens it ------------------------------------------------------
  if (link !== null) {
    void app.restored.then(async () => {
      const widget = docManager.openOrReveal(link.path);
      if (widget) {
        await widget.context.ready;
        app.shell.activateById(panel.id);
        await panel.showHistory(link.path, link.version);
        const version = panel.selected;
        if (version) {
          preview(version);
        }
      }
    });
  }
}

/** The version a link asks for, read from the page's address before routing changes it. */
function linkedVersion(): { path: string; version: number } | null {
  const url = new URL(window.location.href);
  const version = Number(url.searchParams.get(LINK_PARAMETER));
  if (!Number.isInteger(version) || version < 1) {
    return null;
  }
  const base = new URL(PageConfig.getBaseUrl(), window.location.href).pathname;
  const route = url.pathname
    .slice(base.length)
    .match(/^(?:lab\/(?:workspaces\/[^/]+\/)?tree|notebooks|edit)\/(.+)$/);
  if (!route) {
    return null;
  }
  try {
    const path = route[1].split('/').map(decodeURIComponent).join('/');
    return { path, version };
  } catch {
    return null; // a malformed address: no link to follow
  }
}

/** A link that opens ``path`` with the panel on ``version``, in this app. */
function versionLink(
  app: JupyterFrontEnd,
  path: string,
  version: number
): string {
  const page = app.name === 'Jupyter Notebook' ? 'notebooks' : 'lab/tree';
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  const url = URLExt.join(PageConfig.getBaseUrl(), page, encoded);
  return `${new URL(url, window.location.href).href}?${LINK_PARAMETER}=${version}`;
}

/** ``analysis.ipynb``, version 3: ``analysis-v3.ipynb``. */
function versionName(path: string, version: number, attempt = 1): string {
  const extension = PathExt.extname(path);
  const stem = PathExt.basename(path, extension);
  const suffix = attempt === 1 ? `-v${version}` : `-v${version}-${attempt}`;
  return `${stem}${suffix}${extension}`;
}

/** Beside ``path``, the first ``-vN`` name no file has. */
async function freeName(
  docManager: IDocumentManager,
  path: string,
  version: number
): Promise<string> {
  const folder = PathExt.dirname(path);
  for (let attempt = 1; ; attempt++) {
    const candidate = PathExt.join(folder, versionName(path, version, attempt));
    try {
      await docManager.services.contents.get(candidate, { content: false });
    } catch {
      return candidate;
    }
  }
}

export default plugin;
