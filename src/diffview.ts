/**
 * Two versions side by side, cell by cell, drawn by nbdime from the diff the
 * server's engine computes: the panel, the REST diff and the command line's
 * `diff` report the same changes.
 */
import type { CodeEditor } from '@jupyterlab/codeeditor';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';
import { NotebookDiffModel } from 'nbdime/lib/diff/model';
import { NotebookDiffWidget } from 'nbdime/lib/diff/widget';

import { HistoryClient, HistoryError } from './api';

export interface IDiffOptions {
  client: HistoryClient;
  path: string;
  /** The older side. */
  from: number;
  /** The newer side: a version, or ``null`` for the file as it is now. */
  to: number | null;
  rendermime: IRenderMimeRegistry;
  editorFactory: CodeEditor.Factory | undefined;
}

/** What the toggles above the diff hide, each a class on the diff's root. */
const TOGGLES: [string, string, boolean][] = [
  ['jp-mod-hideUnchanged', 'Hide unchanged cells', true],
  ['jp-mod-hideOutputs', 'Hide outputs', false],
  ['jp-mod-hideMetadata', 'Hide metadata', true]
];

/** A diff of two versions, or of a version and the file now. */
export class VersionDiff extends Panel {
  constructor(readonly options: IDiffOptions) {
    super();
    this.addClass('jp-BookstoreDiff');
    this.header = new Widget();
    this.header.addClass('jp-BookstoreDiff-header');
    this.scroller = new Panel();
    this.scroller.addClass('nbdime-root');
    this.scroller.addClass('jp-BookstoreDiff-scroller');
    this.scroller.node.tabIndex = -1;
    this.addWidget(this.header);
    this.addWidget(this.scroller);
    this.buildHeader();
    this.ready = this.load();
  }

  /** Settles once the diff is drawn, or why it cannot be is shown. */
  readonly ready: Promise<void>;

  private buildHeader(): void {
    const { from, to } = this.options;
    const sides = document.createElement('div');
    sides.className = 'jp-BookstoreDiff-sides';
    const left = document.createElement('span');
    left.textContent = `Version ${from}`;
    const right = document.createElement('span');
    right.textContent =
      to === null ? 'Now (the file as it is)' : `Version ${to}`;
    sides.append(left, right);
    this.summary = document.createElement('div');
    this.summary.className = 'jp-BookstoreDiff-summary';
    this.summary.setAttribute('role', 'status');
    this.summary.textContent = 'Comparing…';
    const toggles = document.createElement('div');
    toggles.className = 'jp-BookstoreDiff-toggles';
    for (const [name, text, on] of TOGGLES) {
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = on;
      box.dataset.toggle = name;
      this.scroller.toggleClass(name, on);
      box.addEventListener('change', () =>
        this.scroller.toggleClass(name, box.checked)
      );
      label.append(box, ` ${text}`);
      toggles.appendChild(label);
    }
    this.header.node.append(this.summary, toggles, sides);
  }

  private async load(): Promise<void> {
    const { client, path, from, to, rendermime, editorFactory } = this.options;
    try {
      const answer = await client.diff(path, from, to);
      this.summary.textContent = answer.summary;
      const model = new NotebookDiffModel(answer.base, answer.diff);
      if (model.metadata) {
        model.metadata.collapsibleHeader = 'Notebook metadata changed';
      }
      const widget = new NotebookDiffWidget({
        model,
        rendermime,
        editorFactory
      });
      this.scroller.addWidget(widget);
      await widget.init();
    } catch (error) {
      this.summary.textContent =
        error instanceof HistoryError ? error.message : String(error);
      this.summary.classList.add('jp-mod-error');
    }
  }

  private readonly header: Widget;
  private readonly scroller: Panel;
  private summary!: HTMLElement;
}
