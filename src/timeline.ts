/**
 * How a history reads at a glance: versions grouped by day, bursts of saves
 * folded into one row, times and sizes in words. Pure functions, no DOM and
 * no JupyterLab, so they are unit-tested on their own.
 */

/** What the timeline needs of a version. */
export interface ITimelineVersion {
  version: number;
  queued_at: string;
  size: number;
  label: string | null;
  pinned: boolean;
}

/** A heading above the versions saved on one (local) day. */
export interface IDayRow {
  kind: 'day';
  key: string;
  title: string;
}

/** One version, shown on its own. */
export interface IVersionRow<T extends ITimelineVersion> {
  kind: 'version';
  version: T;
  /** Set when the version belongs to an expanded burst. */
  inBurst: boolean;
}

/** Consecutive saves a few minutes apart, folded into one row until expanded. */
export interface IBurstRow<T extends ITimelineVersion> {
  kind: 'burst';
  /** Newest first, as the list shows them. */
  versions: T[];
  /** The oldest version's number, naming the burst in the page. */
  key: number;
  expanded: boolean;
}

export type TimelineRow<T extends ITimelineVersion> =
  IDayRow | IVersionRow<T> | IBurstRow<T>;

/** Saves closer together than this belong to one burst. */
export const BURST_GAP_MS = 5 * 60 * 1000;
/** The fewest saves a burst folds: two saves stay two rows. */
export const BURST_MIN = 3;

/**
 * The rows that show ``versions`` (newest first): a day heading, then each
 * version, with runs of at least ``BURST_MIN`` saves each within ``gapMs`` of
 * the next folded into a burst, unless one of its versions is in ``expanded``.
 * A labelled or pinned version is never folded: it is what people look for.
 */
export function timeline<T extends ITimelineVersion>(
  versions: readonly T[],
  expanded: ReadonlySet<number>,
  now: Date,
  gapMs: number = BURST_GAP_MS
): TimelineRow<T>[] {
  const rows: TimelineRow<T>[] = [];
  let day = '';
  let run: T[] = [];

  const flush = () => {
    if (run.length >= BURST_MIN) {
      const key = run[run.length - 1].version;
      const open = run.some(version => expanded.has(version.version));
      rows.push({ kind: 'burst', versions: run, key, expanded: open });
      if (open) {
        for (const version of run) {
          rows.push({ kind: 'version', version, inBurst: true });
        }
      }
    } else {
      for (const version of run) {
        rows.push({ kind: 'version', version, inBurst: false });
      }
    }
    run = [];
  };

  for (const version of versions) {
    const saved = new Date(version.queued_at);
    const key = dayKey(saved);
    if (key !== day) {
      flush();
      day = key;
      rows.push({ kind: 'day', key, title: dayTitle(saved, now) });
    }
    const notable = version.label !== null || version.pinned;
    const previous = run[run.length - 1];
    const close =
      previous !== undefined &&
      new Date(previous.queued_at).getTime() - saved.getTime() <= gapMs;
    if (notable || !close) {
      flush();
    }
    if (notable) {
      rows.push({ kind: 'version', version, inBurst: false });
    } else {
      run.push(version);
    }
  }
  flush();
  return rows;
}

/** ``YYYY-MM-DD`` of the local day. */
export function dayKey(date: Date): string {
  const month = String(date.getMonth() + 1).padStart(2, '0');
  const day = String(date.getDate()).padStart(2, '0');
  return `${date.getFullYear()}-${month}-${day}`;
}

/** "Today", "Yesterday", or the date in words ("Mon, 30 Nov 2026"). */
export function dayTitle(date: Date, now: Date): string {
  const today = dayKey(now);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  const key = dayKey(date);
  if (key === today) {
    return 'Today';
  }
  if (key === dayKey(yesterday)) {
    return 'Yesterday';
  }
  return date.toLocaleDateString(undefined, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric'
  });
}

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago". */
export function relativeTime(date: Date, now: Date): string {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 45) {
    return 'just now';
  }
  const steps: [number, string][] = [
    [60, 'minute'],
    [60, 'hour'],
    [24, 'day'],
    [30, 'month'],
    [12, 'year']
  ];
  let amount = seconds / 60;
  let unit = 'minute';
  for (let i = 1; i < steps.length && amount >= steps[i][0]; i++) {
    amount /= steps[i][0];
    unit = steps[i][1];
  }
  const whole = Math.max(1, Math.round(amount));
  return `${whole} ${unit}${whole === 1 ? '' : 's'} ago`;
}

/** The local time of day, to the second ("14:03:27"). */
export function clockTime(date: Date): string {
  return date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/** "512 B", "2.1 KB", "4.0 MB": decimal units, as the CLI prints them. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) {
    return `${bytes} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let amount = bytes / 1000;
  let unit = 0;
  while (amount >= 1000 && unit < units.length - 1) {
    amount /= 1000;
    unit++;
  }
  return `${amount.toFixed(1)} ${units[unit]}`;
}

/** "3 cells changed", "no cells changed", from a diff's counts. */
export function cellsChanged(counts: {
  added: number;
  removed: number;
  changed: number;
  moved: number;
}): string {
  const total = counts.added + counts.removed + counts.changed + counts.moved;
  if (total === 0) {
    return 'no cells changed';
  }
  return `${total} cell${total === 1 ? '' : 's'} changed`;
}

/** How long a burst lasted, in words ("over 4 minutes"). */
export function burstSpan(newest: string, oldest: string): string {
  const minutes = Math.round(
    (new Date(newest).getTime() - new Date(oldest).getTime()) / 60000
  );
  if (minutes < 1) {
    return 'within a minute';
  }
  return `over ${minutes} minute${minutes === 1 ? '' : 's'}`;
}
