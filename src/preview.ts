/**
 * A version, read only: a notebook rendered with its outputs, without a
 * kernel and without restoring anything. Its outputs are untrusted, as any
 * notebook read from outside is: HTML is sanitized and no script runs.
 */
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import type * as nbformat from '@jupyterlab/nbformat';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';

import { HistoryClient, HistoryError } from './api';
import { isNotebookPath } from './panel';

/** The largest version rendered as a notebook; larger ones say so and offer a download. */
export const MAX_PREVIEW_BYTES = 20_000_000;

export interface IPreviewOptions {
  client: HistoryClient;
  path: string;
  version: number;
  size: number;
  rendermime: IRenderMimeRegistry;
  languages: IEditorLanguageRegistry | null;
}

/** The read-only view of one version. */
export class VersionPreview extends Panel {
  constructor(readonly options: IPreviewOptions) {
    super();
    this.addClass('jp-BookstorePreview');
    this.node.tabIndex = -1;
    this.node.dataset.version = String(options.version);
    this.ready = this.load();
  }

  /** Settles once the version is shown, or why it cannot be is. */
  readonly ready: Promise<void>;

  private async load(): Promise<void> {
    const { client, path, version, size } = this.options;
    if (size > MAX_PREVIEW_BYTES) {
      this.say(
        `Version ${version} is ${(size / 1e6).toFixed(1)} MB, too large to show here; ` +
          'download it to open it.'
      );
      return;
    }
    let text: string;
    try {
      text = await client.content(path, version);
    } catch (error) {
      this.say(
        error instanceof HistoryError ? error.message : String(error),
        'error'
      );
      return;
    }
    if (!isNotebookPath(path)) {
      this.addText(text);
      return;
    }
    let notebook: nbformat.INotebookContent;
    try {
      notebook = JSON.parse(text);
      if (!Array.isArray(notebook.cells)) {
        throw new Error('it has no cells');
      }
    } catch (error) {
      this.say(
        `Version ${version} is not a notebook Jupyter can read (${String(error)}); ` +
          'it is shown as saved.',
        'error'
      );
      this.addText(text);
      return;
    }
    const language =
      notebook.metadata?.language_info?.name ??
      notebook.metadata?.kernelspec?.language ??
      'python';
    for (const cell of notebook.cells) {
      this.addWidget(this.renderCell(cell, String(language)));
    }
    if (notebook.cells.length === 0) {
      this.say(`Version ${version} has no cells.`);
    }
  }

  private renderCell(cell: nbformat.ICell, language: string): Widget {
    const widget = new Panel();
    widget.addClass('jp-BookstorePreview-cell');
    widget.node.dataset.cellType = cell.cell_type;
    const source = Array.isArray(cell.source)
      ? cell.source.join('')
      : String(cell.source ?? '');
    if (cell.cell_type === 'markdown') {
      const renderer = this.options.rendermime.createRenderer('text/markdown');
      widget.addWidget(renderer);
      void renderer.renderModel(
        new MimeModel({ data: { 'text/markdown': source }, trusted: false })
      );
      return widget;
    }
    const input = new Widget({ node: document.createElement('div') });
    input.addClass('jp-BookstorePreview-input');
    const prompt = document.createElement('div');
    prompt.className = 'jp-InputPrompt jp-BookstorePreview-prompt';
    const count = (cell as nbformat.ICodeCell).execution_count;
    prompt.textContent = cell.cell_type === 'code' ? `[${count ?? ' '}]:` : '';
    const pre = document.createElement('pre');
    pre.className = 'jp-BookstorePreview-source cm-s-jupyter';
    input.node.append(prompt, pre);
    widget.addWidget(input);
    const languages = this.options.languages;
    if (cell.cell_type === 'code' && languages) {
      const spec = languages.findBest(language);
      void languages.highlight(source, spec, pre);
    } else {
      pre.textContent = source;
    }
    const outputs = (cell as nbformat.ICodeCell).outputs;
    if (cell.cell_type === 'code' && Array.isArray(outputs) && outputs.length) {
      const model = new OutputAreaModel({ values: outputs, trusted: false });
      const area = new OutputArea({
        model,
        rendermime: this.options.rendermime
      });
      area.addClass('jp-BookstorePreview-outputs');
      widget.addWidget(area);
    }
    return widget;
  }

  private addText(text: string): void {
    const pre = document.createElement('pre');
    pre.className = 'jp-BookstorePreview-text';
    pre.textContent = text;
    this.addWidget(new Widget({ node: pre }));
  }

  private say(text: string, kind: 'info' | 'error' = 'info'): void {
    const note = document.createElement('div');
    note.className = `jp-BookstorePreview-note jp-mod-${kind}`;
    note.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    note.textContent = text;
    this.addWidget(new Widget({ node: note }));
  }
}
