/**
 * The server's history API (docs/rest-api.md), typed, with failures turned
 * into sentences a person can act on.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';
import type { IDiffEntry } from 'nbdime/lib/diff/diffentries';

import type { ITimelineVersion } from './timeline';

/** One archived version, as ``GET /api/bookstore/versions`` lists it. */
export interface IVersion extends ITimelineVersion {
  path: string;
  saved_as: string;
  sha256: string;
  archived_at: string;
  store_key: string;
}

/** A page of a path's history, newest first. */
export interface IVersionPage {
  path: string;
  total: number;
  offset: number;
  next_offset: number | null;
  versions: IVersion[];
  pending: { queued_at: string }[];
  /** Why the versions cannot be read now (the index or the archive service is down). */
  unavailable: string | null;
  copied_from: { path: string; version: number | null } | null;
}

/** What ``GET /api/bookstore`` says about archiving. */
export interface IStatus {
  features: { archive: boolean; archive_types: string[] };
  archive: {
    ready: boolean;
    backlog: number;
    last_error: string | null;
  };
}

/** How many cells a diff found added, removed, changed and moved. */
export interface ICounts {
  added: number;
  removed: number;
  changed: number;
  moved: number;
}

/** A diff in nbdime's format, computed by the server's one engine. */
export interface INbdimeDiff {
  from: number;
  to: number | null;
  summary: string;
  counts: ICounts;
  base: nbformat.INotebookContent;
  diff: IDiffEntry[];
}

/** A request the server refused or could not answer, in words. */
export class HistoryError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

const API = 'api/bookstore';

/** Each segment percent-encoded, as the contents API takes paths. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The client of one server's history API. */
export class HistoryClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, API, ...parts);
  }

  /** Whether archiving works, and what it keeps. */
  status(): Promise<IStatus> {
    return this.json(this.url(), "read this server's notebook history");
  }

  /** ``limit`` versions of ``path``, from ``offset`` counted from the newest. */
  async page(
    path: string,
    offset: number,
    limit: number
  ): Promise<IVersionPage> {
    const query = URLExt.objectToQueryString({
      order: 'newest',
      offset,
      limit
    });
    const page: IVersionPage = await this.json(
      this.url('versions', encodePath(path)) + query,
      `list the versions of ${path}`
    );
    if (page.unavailable) {
      // The versions shown stay; the safety line counts the saves waiting meanwhile.
      throw new HistoryError(page.unavailable, 503);
    }
    return page;
  }

  /** The address of a version's bytes, as saved (for download and preview). */
  contentUrl(path: string, version: number): string {
    return this.url('content', String(version), encodePath(path));
  }

  /** A version's bytes as text, checked by the server against its sha256. */
  async content(path: string, version: number): Promise<string> {
    const response = await this.send(
      this.contentUrl(path, version),
      {},
      `read version ${version} of ${path}`
    );
    return response.text();
  }

  /** How many cells changed from version ``from`` to ``to``. */
  counts(path: string, from: number, to: number): Promise<{ counts: ICounts }> {
    const query = URLExt.objectToQueryString({ to, format: 'summary' });
    return this.json(
      this.url('diff', String(from), encodePath(path)) + query,
      `compare versions ${from} and ${to} of ${path}`
    );
  }

  /** Version ``from`` against version ``to``, or against the file now. */
  diff(path: string, from: number, to: number | null): Promise<INbdimeDiff> {
    const query = URLExt.objectToQueryString(
      to === null ? { format: 'nbdime' } : { to, format: 'nbdime' }
    );
    return this.json(
      this.url('diff', String(from), encodePath(path)) + query,
      `compare version ${from} of ${path}`
    );
  }

  /** Write a version back onto its path, or as ``target``. */
  restore(
    path: string,
    version: number,
    target?: string
  ): Promise<{ target: string; warning: string | null }> {
    const body = target === undefined ? {} : { target };
    return this.json(
      this.url('restore', String(version), encodePath(path)),
      `restore version ${version} of ${path}`,
      { method: 'POST', body: JSON.stringify(body) }
    );
  }

  /** Set (or, with ``null``, remove) a version's label. */
  label(
    path: string,
    version: number,
    label: string | null
  ): Promise<IVersion> {
    const init =
      label === null
        ? { method: 'DELETE' }
        : { method: 'PUT', body: JSON.stringify({ label }) };
    return this.json(
      this.url('label', String(version), encodePath(path)),
      `label version ${version} of ${path}`,
      init
    );
  }

  /** Pin or unpin a version, so that pruning keeps it. */
  pin(path: string, version: number, pinned: boolean): Promise<IVersion> {
    return this.json(
      this.url('pin', String(version), encodePath(path)),
      `pin version ${version} of ${path}`,
      { method: pinned ? 'PUT' : 'DELETE' }
    );
  }

  private async json<T>(
    url: string,
    what: string,
    init: RequestInit = {}
  ): Promise<T> {
    const response = await this.send(url, init, what);
    return (await response.json()) as T;
  }

  private async send(
    url: string,
    init: RequestInit,
    what: string
  ): Promise<Response> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new HistoryError(
        `Could not ${what}: the Jupyter server does not answer (${String(error)}).`,
        0
      );
    }
    if (!response.ok) {
      throw new HistoryError(
        await explain(response, what, url),
        response.status
      );
    }
    return response;
  }
}

/** A refused request in words: the server's own reason when it gives one. */
async function explain(
  response: Response,
  what: string,
  url: string
): Promise<string> {
  let reason = '';
  try {
    const body = await response.json();
    reason = String(body.message ?? body.reason ?? '');
  } catch {
    reason = '';
  }
  switch (response.status) {
    case 403:
      return `You do not have permission to ${what}.`;
    case 404:
      if (url.replace(/\/$/, '').endsWith(API)) {
        return 'History is unavailable: the bookstore server extension is not enabled on this Jupyter server.';
      }
      return reason
        ? `Could not ${what}: ${reason}.`
        : `Could not ${what}: it was not found.`;
    case 422:
      return `Could not ${what}: ${reason || 'it is damaged in the archive'}.`;
    default:
      return `Could not ${what}: ${reason || response.statusText} (HTTP ${response.status}).`;
  }
}
