/** Unit tests of the timeline (node --test, compiled by tsconfig.test.json). */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ITimelineVersion,
  burstSpan,
  cellsChanged,
  dayTitle,
  formatSize,
  relativeTime,
  timeline
} from './timeline';

const NOW = new Date(2026, 11, 6, 12, 0, 0);

/** A version saved ``minutesAgo`` before NOW. */
function saved(
  version: number,
  minutesAgo: number,
  extra: Partial<ITimelineVersion> = {}
): ITimelineVersion {
  const at = new Date(NOW.getTime() - minutesAgo * 60000);
  return {
    version,
    queued_at: at.toISOString(),
    size: 100,
    label: null,
    pinned: false,
    ...extra
  };
}

function kinds(rows: ReturnType<typeof timeline>): string[] {
  return rows.map(row =>
    row.kind === 'day'
      ? `day:${row.title}`
      : row.kind === 'burst'
        ? `burst:${row.versions.map(v => v.version).join(',')}${row.expanded ? '+' : ''}`
        : `v${row.version.version}`
  );
}

test('versions are grouped under their day, newest first', () => {
  const rows = timeline(
    [saved(3, 10), saved(2, 24 * 60 + 5), saved(1, 3 * 24 * 60)],
    new Set(),
    NOW
  );
  assert.deepEqual(kinds(rows).slice(0, 4), [
    'day:Today',
    'v3',
    'day:Yesterday',
    'v2'
  ]);
  assert.equal(rows[4].kind, 'day');
  assert.notEqual((rows[4] as { title: string }).title, 'Yesterday');
});

test('three saves minutes apart fold into one burst; two do not', () => {
  const burst = [
    saved(5, 1),
    saved(4, 3),
    saved(3, 6),
    saved(2, 60),
    saved(1, 62)
  ];
  assert.deepEqual(kinds(timeline(burst, new Set(), NOW)), [
    'day:Today',
    'burst:5,4,3',
    'v2',
    'v1'
  ]);
});

test('an expanded burst shows every version under it', () => {
  const burst = [saved(3, 1), saved(2, 2), saved(1, 3)];
  const rows = timeline(burst, new Set([1]), NOW);
  assert.deepEqual(kinds(rows), [
    'day:Today',
    'burst:3,2,1+',
    'v3',
    'v2',
    'v1'
  ]);
  assert.ok(rows.slice(2).every(row => row.kind === 'version' && row.inBurst));
});

test('a labelled or pinned version is never folded, and splits a burst', () => {
  const rows = timeline(
    [
      saved(7, 1),
      saved(6, 2),
      saved(5, 3),
      saved(4, 4, { label: 'before refactor' }),
      saved(3, 5),
      saved(2, 6, { pinned: true }),
      saved(1, 7)
    ],
    new Set(),
    NOW
  );
  assert.deepEqual(kinds(rows), [
    'day:Today',
    'burst:7,6,5',
    'v4',
    'v3',
    'v2',
    'v1'
  ]);
});

test('a burst never spans two days', () => {
  const midnight = new Date(2026, 11, 6, 0, 0, 0).getTime();
  const minutesAgo = (offset: number) =>
    (NOW.getTime() - midnight) / 60000 + offset;
  const rows = timeline(
    [
      saved(4, minutesAgo(-2)),
      saved(3, minutesAgo(-1)),
      saved(2, minutesAgo(1)),
      saved(1, minutesAgo(2))
    ],
    new Set(),
    NOW
  );
  assert.deepEqual(kinds(rows), [
    'day:Today',
    'v4',
    'v3',
    'day:Yesterday',
    'v2',
    'v1'
  ]);
});

test('relative times read as people say them', () => {
  const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000);
  assert.equal(relativeTime(ago(10), NOW), 'just now');
  assert.equal(relativeTime(ago(60), NOW), '1 minute ago');
  assert.equal(relativeTime(ago(5 * 60), NOW), '5 minutes ago');
  assert.equal(relativeTime(ago(3 * 3600), NOW), '3 hours ago');
  assert.equal(relativeTime(ago(2 * 86400), NOW), '2 days ago');
});

test('days, sizes, bursts and changes in words', () => {
  assert.equal(dayTitle(NOW, NOW), 'Today');
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(2100), '2.1 KB');
  assert.equal(formatSize(4_000_000), '4.0 MB');
  assert.equal(
    burstSpan(saved(2, 0).queued_at, saved(1, 4).queued_at),
    'over 4 minutes'
  );
  assert.equal(
    cellsChanged({ added: 0, removed: 0, changed: 0, moved: 0 }),
    'no cells changed'
  );
  assert.equal(
    cellsChanged({ added: 1, removed: 0, changed: 2, moved: 0 }),
    '3 cells changed'
  );
  assert.equal(
    cellsChanged({ added: 0, removed: 0, changed: 1, moved: 0 }),
    '1 cell changed'
  );
});
