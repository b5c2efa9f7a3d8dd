/**
 * The History panel: the versions of the document in focus, newest first,
 * grouped by day, with bursts of autosaves folded, and whether the work is safe.
 *
 * Versions load a page at a time as the list scrolls, so a history of tens of
 * thousands of versions opens as fast as one of ten.
 */
import { Widget } from '@lumino/widgets';
import { ISignal, Signal } from '@lumino/signaling';

import {
  HistoryClient,
  HistoryError,
  IStatus,
  IVersion,
  IVersionPage
} from './api';
import {
  burstSpan,
  cellsChanged,
  clockTime,
  formatSize,
  relativeTime,
  timeline,
  TimelineRow
} from './timeline';

/** Versions fetched per page: enough to fill a tall side bar. */
export const PAGE_SIZE = 50;
/** How often the safety line is checked while the panel shows. */
const STATUS_INTERVAL_MS = 5000;
/** Cell-change counts fetched at once. */
const COUNT_CONCURRENCY = 3;

/** Is ``path`` a notebook, by its name? */
export function isNotebookPath(path: string): boolean {
  return path.toLowerCase().endsWith('.ipynb');
}

/** The state shown above the list: is everything saved also archived? */
export type Safety = 'safe' | 'pending' | 'error' | 'unavailable' | 'idle';

/** The History panel widget. */
export class HistoryPanel extends Widget {
  constructor(readonly client: HistoryClient) {
    super();
    this.id = 'bookstore-history';
    this.addClass('jp-BookstoreHistory');
    this.title.caption = 'Notebook history';
    this.node.innerHTML = `
      <div class="jp-BookstoreHistory-header">
        <div class="jp-BookstoreHistory-title">History</div>
        <div class="jp-BookstoreHistory-path"></div>
        <div class="jp-BookstoreHistory-safety" data-state="idle" role="status"></div>
      </div>
      <div class="jp-BookstoreHistory-message" role="alert" hidden></div>
      <ul class="jp-BookstoreHistory-list" tabindex="0" role="listbox"
          aria-label="Versions, newest first"></ul>
      <div class="jp-BookstoreHistory-more" hidden></div>`;
    this.pathNode = this.node.querySelector('.jp-BookstoreHistory-path')!;
    this.safetyNode = this.node.querySelector('.jp-BookstoreHistory-safety')!;
    this.messageNode = this.node.querySelector('.jp-BookstoreHistory-message')!;
    this.listNode = this.node.querySelector('.jp-BookstoreHistory-list')!;
    this.moreNode = this.node.querySelector('.jp-BookstoreHistory-more')!;
    this.listNode.addEventListener('scroll', () => this.loadMoreIfNear());
    this.listNode.addEventListener('click', event => this.onClick(event));
    this.listNode.addEventListener('keydown', event => this.onKey(event));
    this.showMessage('Open a notebook to see its history.');
  }

  /** The path whose history shows, or ``null``. */
  get path(): string | null {
    return this._path;
  }

  /** The selected version, if any. */
  get selected(): IVersion | null {
    return this.versions.find(v => v.version === this._selected) ?? null;
  }

  /** The version marked to compare with the selected one (Shift+click). */
  get marked(): IVersion | null {
    return this.versions.find(v => v.version === this._marked) ?? null;
  }

  /** The version people act on changed. */
  get selectionChanged(): ISignal<this, IVersion | null> {
    return this._selectionChanged;
  }

  /** A version was opened (double click or Enter). */
  get opened(): ISignal<this, IVersion> {
    return this._opened;
  }

  /** Show the history of ``path`` (``null``: nothing in focus), selecting ``select``. */
  async showHistory(
    path: string | null,
    select: number | null = null
  ): Promise<void> {
    if (!this.isVisible && select === null) {
      // Loaded when the panel opens: a closed panel costs nothing. Commands must not
      // act on the document shown before, meanwhile.
      if (path !== this._path) {
        this.forget(null);
      }
      this.wanted = path;
      return;
    }
    this.wanted = undefined;
    if (path === this._path && select === null) {
      return;
    }
    this.forget(path);
    this._selected = select;
    if (path === null) {
      this.showMessage('Open a notebook to see its history.');
      this.setSafety('idle', '');
      this._selectionChanged.emit(null);
      return;
    }
    const generation = this.generation;
    const status = await this.loadStatus();
    if (status === null || generation !== this.generation) {
      return;
    }
    if (
      !isNotebookPath(path) &&
      !status.features.archive_types.includes('file')
    ) {
      this.notArchived = true;
      this.showMessage(
        `${basename(path)} is not a notebook. This server keeps the history of notebooks ` +
          'only, so its saves are not archived.'
      );
      this.setSafety('idle', '');
      return;
    }
    await this.loadPage(generation);
    if (generation === this.generation) {
      if (select !== null) {
        await this.reveal(select, generation);
      }
      this._selectionChanged.emit(this.selected);
    }
  }

  /** Read the newest versions again: new ones join the top, labels and pins update.
   * One runs at a time; asked again meanwhile, it runs once more after. */
  refresh(): Promise<void> {
    if (this.refreshing !== null) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const running = this.refreshOnce()
      .finally(() => {
        this.refreshing = null;
      })
      .then(() => {
        if (this.refreshAgain) {
          this.refreshAgain = false;
          return this.refresh();
        }
      });
    this.refreshing = running;
    return running;
  }

  private async refreshOnce(): Promise<void> {
    const path = this._path;
    if (path === null || !this.isVisible || this.notArchived) {
      return;
    }
    const generation = this.generation;
    let page: IVersionPage;
    try {
      page = await this.client.page(path, 0, PAGE_SIZE);
    } catch (error) {
      this.reportError(error);
      return;
    }
    if (generation !== this.generation || page.total < this.total) {
      return; // another document now, or an answer older than what is shown
    }
    const newest = this.versions[0]?.version ?? 0;
    const oldestNew = page.versions[page.versions.length - 1]?.version ?? 0;
    if (
      this.versions.length &&
      oldestNew > newest + 1 &&
      page.next_offset !== null
    ) {
      // More arrived than one page holds (an outbox drained): start again from the top.
      await this.reload(path);
      return;
    }
    if (this.versions.length === 0) {
      this.nextOffset = page.next_offset;
    } else if (this.nextOffset !== null) {
      this.nextOffset += page.total - this.total;
    }
    const known = new Map(this.versions.map(v => [v.version, v]));
    for (const version of page.versions) {
      known.set(version.version, version);
    }
    this.versions = [...known.values()].sort((a, b) => b.version - a.version);
    this.total = page.total;
    this.pending = page.pending;
    this.hideError();
    this.render();
    await this.loadStatus();
  }

  /** Show a version as the server now describes it (after a label or a pin). */
  showVersion(version: IVersion): void {
    const at = this.versions.findIndex(v => v.version === version.version);
    if (at >= 0 && version.path === this._path) {
      this.versions[at] = version;
      this.render();
      this._selectionChanged.emit(this.selected);
    }
  }

  /** Show ``path`` afresh, keeping the selection: after a rename (the server moved
   * the history with the file) or when more versions arrived than a page holds. */
  async reload(path: string): Promise<void> {
    const selected = this._selected;
    this._path = null;
    await this.showHistory(path, selected);
  }

  /** Drop everything shown; ``path`` is what is shown next. */
  private forget(path: string | null): void {
    this._path = path;
    this.generation++;
    this.versions = [];
    this.total = 0;
    this.nextOffset = 0;
    this.pending = [];
    this.notArchived = false;
    this.counts.clear();
    this.countQueue = [];
    this.expanded.clear();
    this._selected = null;
    this._marked = null;
    this.pathNode.textContent = path ?? '';
    this.pathNode.title = path ?? '';
    this.listNode.replaceChildren();
    this.hideMessage();
  }

  /** Select ``number``, loading pages until it is loaded, and scroll it into view. */
  async reveal(number: number, generation: number): Promise<void> {
    while (
      generation === this.generation &&
      !this.versions.some(v => v.version === number) &&
      this.nextOffset !== null &&
      this.versions.length > 0 &&
      this.versions[this.versions.length - 1].version > number
    ) {
      const loaded = this.versions.length;
      await this.loadPage(generation);
      if (this.versions.length === loaded) {
        break; // the page failed, and says why
      }
    }
    if (generation !== this.generation) {
      return;
    }
    const version = this.versions.find(v => v.version === number);
    if (version === undefined) {
      this.showMessage(
        `Version ${number} of ${this._path} is not in its history.`
      );
      return;
    }
    for (const member of this.burstOf(number)) {
      this.expanded.add(member);
    }
    this.select(number);
  }

  /** Select a version (and tell the commands). */
  select(number: number | null, mark = false): void {
    if (mark) {
      this._marked = this._marked === number ? null : number;
    } else {
      this._selected = number;
    }
    this.render();
    this.listNode
      .querySelector('.jp-mod-selected')
      ?.scrollIntoView({ block: 'nearest' });
    this._selectionChanged.emit(this.selected);
  }

  /** Say something, in words, above the list (an ``error`` goes once things work). */
  showMessage(text: string, kind: 'note' | 'error' = 'note'): void {
    this.messageNode.textContent = text;
    this.messageNode.dataset.kind = kind;
    this.messageNode.hidden = false;
  }

  hideMessage(): void {
    this.messageNode.hidden = true;
  }

  private hideError(): void {
    if (this.messageNode.dataset.kind === 'error') {
      this.hideMessage();
    }
  }

  protected onAfterShow(): void {
    if (this.wanted !== undefined && this.wanted !== this._path) {
      void this.showHistory(this.wanted);
    } else {
      void this.refresh(); // saves archived while it was closed
    }
    this.wanted = undefined;
    window.clearInterval(this.timer);
    this.timer = window.setInterval(
      () => void this.checkSafety(),
      STATUS_INTERVAL_MS
    );
  }

  protected onAfterHide(): void {
    window.clearInterval(this.timer);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  // -- loading -----------------------------------------------------------------

  private async loadStatus(): Promise<IStatus | null> {
    try {
      this.status = await this.client.status();
    } catch (error) {
      this.reportError(error);
      return null;
    }
    this.showSafety();
    return this.status;
  }

  /** Load the next page; a page already on its way is waited for, not asked twice. */
  private loadPage(generation: number): Promise<void> {
    if (this.inflight !== null && this.inflightGeneration === generation) {
      return this.inflight;
    }
    this.inflightGeneration = generation;
    const loading = this.fetchPage(generation).finally(() => {
      if (this.inflight === loading) {
        this.inflight = null;
      }
    });
    this.inflight = loading;
    return loading;
  }

  private async fetchPage(generation: number): Promise<void> {
    const path = this._path;
    if (path === null || this.nextOffset === null) {
      return;
    }
    this.moreNode.hidden = false;
    this.moreNode.textContent = 'Loading versions…';
    try {
      const page = await this.client.page(path, this.nextOffset, PAGE_SIZE);
      if (generation !== this.generation) {
        return;
      }
      const known = new Set(this.versions.map(v => v.version));
      this.versions.push(...page.versions.filter(v => !known.has(v.version)));
      const newer =
        this.versions.length > page.versions.length && page.total > this.total;
      this.total = page.total;
      this.nextOffset = page.next_offset;
      this.pending = page.pending;
      this.hideError();
      this.showSafety();
      this.render();
      if (newer) {
        void this.refresh(); // versions archived since the first page: merge them
      }
    } catch (error) {
      if (generation === this.generation) {
        this.reportError(error);
      }
      return;
    } finally {
      this.moreNode.hidden = true;
    }
    // Bursts fold many versions into a few rows: until the list fills the panel,
    // there is no scrolling to ask for the next page, so ask now.
    if (generation === this.generation) {
      requestAnimationFrame(() => this.loadMoreIfNear());
    }
  }

  private loadMoreIfNear(): void {
    const list = this.listNode;
    if (!this.isVisible || list.clientHeight === 0) {
      return; // hidden: nothing to fill
    }
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 200) {
      void this.loadPage(this.generation);
    }
  }

  private async checkSafety(): Promise<void> {
    if (this._path === null || !this.isVisible || this.notArchived) {
      return;
    }
    const generation = this.generation;
    try {
      const [status, page] = await Promise.all([
        this.client.status(),
        this.client.page(this._path, 0, 0)
      ]);
      if (generation !== this.generation) {
        return;
      }
      this.hideError();
      this.status = status;
      const pendingChanged = page.pending.length !== this.pending.length;
      this.pending = page.pending;
      if (page.total !== this.total) {
        await this.refresh();
      } else if (pendingChanged) {
        this.render();
      }
      this.showSafety();
    } catch (error) {
      this.reportError(error);
    }
  }

  private reportError(error: unknown): void {
    const message =
      error instanceof HistoryError ? error.message : String(error);
    this.showMessage(message, 'error');
    if (
      error instanceof HistoryError &&
      (error.status === 403 || error.status === 404)
    ) {
      this.setSafety('unavailable', 'History unavailable');
    }
  }

  // -- safety --------------------------------------------------------------------

  private showSafety(): void {
    const status = this.status;
    if (status === null) {
      return;
    }
    const waiting = this.pending.length;
    const saves = `${waiting} save${waiting === 1 ? '' : 's'}`;
    if (status.archive.last_error) {
      this.setSafety(
        'error',
        `Archiving is failing: ${status.archive.last_error}. ` +
          (waiting === 1
            ? '1 save of this file waits on disk and is archived once this is resolved.'
            : waiting
              ? `${saves} of this file wait on disk and are archived once this is resolved.`
              : 'Saves wait on disk and are archived once this is resolved.')
      );
    } else if (waiting) {
      this.setSafety('pending', `${saves} waiting to be archived`);
    } else if (!status.archive.ready) {
      this.setSafety('pending', 'Archiving is starting…');
    } else {
      this.setSafety(
        'safe',
        this.total ? 'Every save is archived' : 'Nothing to archive yet'
      );
    }
  }

  private setSafety(state: Safety, text: string): void {
    this.safetyNode.dataset.state = state;
    this.safetyNode.textContent = text;
  }

  // -- rendering -------------------------------------------------------------------

  private render(): void {
    if (this.total === 0 && this.nextOffset === null && this._path !== null) {
      this.showMessage(
        isNotebookPath(this._path)
          ? 'No versions yet: each save of this notebook is archived as a version.'
          : 'No versions yet: each save of this file is archived as a version.'
      );
    } else if (this.messageNode.textContent?.startsWith('No versions yet')) {
      this.hideMessage();
    }
    const now = new Date();
    const rows = timeline(this.versions, this.expanded, now);
    const fragment = document.createDocumentFragment();
    for (const waiting of [...this.pending].reverse()) {
      fragment.appendChild(this.renderPending(waiting.queued_at, now));
    }
    for (const row of rows) {
      fragment.appendChild(this.renderRow(row, now));
    }
    this.listNode.replaceChildren(fragment);
    // What tests and the benchmark read: the newest version shown, and how many are loaded.
    this.node.dataset.newest = String(this.versions[0]?.version ?? 0);
    this.node.dataset.loaded = String(this.versions.length);
    this.fetchCounts();
  }

  private renderRow(row: TimelineRow<IVersion>, now: Date): HTMLElement {
    const item = document.createElement('li');
    if (row.kind === 'day') {
      item.className = 'jp-BookstoreHistory-day';
      item.textContent = row.title;
      item.setAttribute('role', 'presentation');
      return item;
    }
    if (row.kind === 'burst') {
      const newest = row.versions[0];
      const oldest = row.versions[row.versions.length - 1];
      item.className = 'jp-BookstoreHistory-burst';
      item.dataset.burst = String(row.key);
      item.setAttribute('aria-expanded', String(row.expanded));
      item.innerHTML = `
        <span class="jp-BookstoreHistory-caret">${row.expanded ? '▾' : '▸'}</span>
        <span class="jp-BookstoreHistory-burstText"></span>
        <span class="jp-BookstoreHistory-when"></span>`;
      item.querySelector('.jp-BookstoreHistory-burstText')!.textContent =
        `${row.versions.length} saves ${burstSpan(newest.queued_at, oldest.queued_at)} ` +
        `(versions ${oldest.version}–${newest.version})`;
      const when = item.querySelector('.jp-BookstoreHistory-when')!;
      when.textContent = relativeTime(new Date(newest.queued_at), now);
      when.setAttribute('title', new Date(newest.queued_at).toLocaleString());
      return item;
    }
    const version = row.version;
    const saved = new Date(version.queued_at);
    item.className = 'jp-BookstoreHistory-version';
    item.classList.toggle('jp-mod-inBurst', row.inBurst);
    item.classList.toggle(
      'jp-mod-selected',
      version.version === this._selected
    );
    item.classList.toggle('jp-mod-marked', version.version === this._marked);
    item.dataset.version = String(version.version);
    item.setAttribute('role', 'option');
    item.setAttribute(
      'aria-selected',
      String(version.version === this._selected)
    );
    item.title = `Version ${version.version}, saved ${saved.toLocaleString()}`;
    item.innerHTML = `
      <div class="jp-BookstoreHistory-line">
        <span class="jp-BookstoreHistory-number"></span>
        <span class="jp-BookstoreHistory-when"></span>
        <span class="jp-BookstoreHistory-clock"></span>
        <span class="jp-BookstoreHistory-pin" title="Pinned: pruning keeps it"></span>
      </div>
      <div class="jp-BookstoreHistory-line jp-BookstoreHistory-details">
        <span class="jp-BookstoreHistory-label"></span>
        <span class="jp-BookstoreHistory-changes"></span>
        <span class="jp-BookstoreHistory-size"></span>
      </div>`;
    const set = (name: string, text: string) => {
      item.querySelector(`.jp-BookstoreHistory-${name}`)!.textContent = text;
    };
    set('number', `v${version.version}`);
    set('when', relativeTime(saved, now));
    set('clock', clockTime(saved));
    set('pin', version.pinned ? '📌' : '');
    set('label', version.label ?? '');
    set('changes', this.counts.get(version.version) ?? '');
    set('size', formatSize(version.size));
    if (version.saved_as !== version.path) {
      set(
        'label',
        `${version.label ?? ''} saved as ${basename(version.saved_as)}`.trim()
      );
    }
    return item;
  }

  /** A save acknowledged and kept on disk, not archived yet: safe, but not a version. */
  private renderPending(queuedAt: string, now: Date): HTMLElement {
    const item = document.createElement('li');
    const saved = new Date(queuedAt);
    item.className = 'jp-BookstoreHistory-pending';
    item.setAttribute('role', 'presentation');
    item.title = 'Kept on disk; it becomes a version once it is archived';
    item.textContent = `Saved ${relativeTime(saved, now)} (${clockTime(saved)}), waiting to be archived`;
    return item;
  }

  /** Fetch "N cells changed" for the versions shown, a few at a time. */
  private fetchCounts(): void {
    const path = this._path;
    if (path === null || !isNotebookPath(path)) {
      return;
    }
    const shown = Array.from(
      this.listNode.querySelectorAll<HTMLElement>(
        '.jp-BookstoreHistory-version'
      )
    ).map(node => Number(node.dataset.version));
    for (const number of shown) {
      if (this.counts.has(number) || this.countQueue.includes(number)) {
        continue;
      }
      const index = this.versions.findIndex(v => v.version === number);
      const previous = this.versions[index + 1];
      if (previous === undefined) {
        if (this.nextOffset === null) {
          this.counts.set(number, 'first version');
          this.showCount(number);
        }
        continue;
      }
      this.countQueue.push(number);
    }
    const generation = this.generation;
    while (this.countsRunning < COUNT_CONCURRENCY && this.countQueue.length) {
      const number = this.countQueue.shift()!;
      const index = this.versions.findIndex(v => v.version === number);
      const previous = index < 0 ? undefined : this.versions[index + 1];
      if (previous === undefined) {
        continue;
      }
      this.countsRunning++;
      this.client
        .counts(path, previous.version, number)
        .then(
          answer => cellsChanged(answer.counts),
          error =>
            error instanceof HistoryError && error.status === 422
              ? 'damaged: cannot compare'
              : ''
        )
        .then(text => {
          this.countsRunning--;
          if (generation === this.generation) {
            this.counts.set(number, text);
            this.showCount(number);
          }
          this.fetchCounts(); // the queue of whatever is shown now
        });
    }
  }

  private showCount(number: number): void {
    const node = this.listNode.querySelector(
      `[data-version="${number}"] .jp-BookstoreHistory-changes`
    );
    if (node) {
      node.textContent = this.counts.get(number) ?? '';
    }
  }

  /** The versions of the burst ``number`` is folded into (none if it is not). */
  private burstOf(number: number): number[] {
    const rows = timeline(this.versions, new Set(), new Date());
    for (const row of rows) {
      if (
        row.kind === 'burst' &&
        row.versions.some(v => v.version === number)
      ) {
        return row.versions.map(v => v.version);
      }
    }
    return [];
  }

  // -- input ------------------------------------------------------------------------

  private onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const burst = target.closest<HTMLElement>('.jp-BookstoreHistory-burst');
    if (burst) {
      // Expanded is kept per version, so a burst stays open as saves join it.
      const members = this.burstOf(Number(burst.dataset.burst));
      const open = members.some(number => this.expanded.has(number));
      for (const number of members) {
        if (open) {
          this.expanded.delete(number);
        } else {
          this.expanded.add(number);
        }
      }
      this.render();
      return;
    }
    const row = target.closest<HTMLElement>('.jp-BookstoreHistory-version');
    if (!row) {
      return;
    }
    const number = Number(row.dataset.version);
    this.listNode.focus();
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      this.select(number, true);
    } else if (event.detail === 2) {
      const version = this.versions.find(v => v.version === number);
      if (version) {
        this._opened.emit(version);
      }
    } else {
      this.select(number);
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      this.step(event.key === 'ArrowDown' ? 1 : -1);
      event.preventDefault();
    } else if (event.key === 'Enter' && this.selected) {
      this._opened.emit(this.selected);
      event.preventDefault();
    }
  }

  /** Move the selection a row down (1) or up (-1). A folded burst on the way unfolds,
   * so that every version can be reached from the keyboard. */
  private step(direction: 1 | -1): void {
    const rows = Array.from(
      this.listNode.querySelectorAll<HTMLElement>(
        '.jp-BookstoreHistory-version, .jp-BookstoreHistory-burst'
      )
    );
    const at = rows.findIndex(
      row => row.dataset.version === String(this._selected)
    );
    for (
      let i = at < 0 ? 0 : at + direction;
      i >= 0 && i < rows.length;
      i += direction
    ) {
      const row = rows[i];
      if (row.dataset.version !== undefined) {
        this.select(Number(row.dataset.version));
        this.loadMoreIfNear();
        return;
      }
      const members = this.burstOf(Number(row.dataset.burst));
      if (!members.some(number => this.expanded.has(number))) {
        members.forEach(number => this.expanded.add(number));
        this.select(direction === 1 ? members[0] : members[members.length - 1]);
        return;
      }
    }
  }

  private readonly pathNode: HTMLElement;
  private readonly safetyNode: HTMLElement;
  private readonly messageNode: HTMLElement;
  private readonly listNode: HTMLElement;
  private readonly moreNode: HTMLElement;
  private _path: string | null = null;
  /** The path to show once the panel opens (``undefined``: the one shown). */
  private wanted: string | null | undefined = undefined;
  private generation = 0;
  private versions: IVersion[] = [];
  private total = 0;
  private nextOffset: number | null = 0;
  private pending: { queued_at: string }[] = [];
  private status: IStatus | null = null;
  private inflight: Promise<void> | null = null;
  private inflightGeneration = -1;
  private _selected: number | null = null;
  private _marked: number | null = null;
  /** Versions whose burst is unfolded. */
  private readonly expanded = new Set<number>();
  /** A file the server does not archive: nothing to ask for. */
  private notArchived = false;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private readonly counts = new Map<number, string>();
  private countQueue: number[] = [];
  private countsRunning = 0;
  private timer = 0;
  private readonly _selectionChanged = new Signal<this, IVersion | null>(this);
  private readonly _opened = new Signal<this, IVersion>(this);
}

/** The last part of a path. */
export function basename(path: string): string {
  return path.split('/').pop() ?? path;
}
