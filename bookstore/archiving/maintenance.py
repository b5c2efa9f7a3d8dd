"""Keeping the index and the store in agreement: reindex, verify, prune.

The store is the truth and the index is derived from it, so every operation
here is written to be safe to interrupt and to run again.
"""

from __future__ import annotations

import fnmatch
import logging
import random
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import NamedTuple

from sqlalchemy.exc import DatabaseError
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.archiving.annotations import load_annotations
from bookstore.archiving.part_collection import find_garbage
from bookstore.archiving.version_objects import bounded, manifest_in, read_version
from bookstore.core import keys
from bookstore.core.changes import RENAME, Change, follow
from bookstore.core.errors import CorruptVersion, ObjectNotFound
from bookstore.core.record import sha256_of
from bookstore.core.retention import Decision, RetentionPolicy, VersionInfo, decide
from bookstore.core.version_format import PACKED, Manifest
from bookstore.index import IndexDatabase, Version, path_changes, queries
from bookstore.store.base import ObjectInfo, Store

__all__ = [
    "PathDecisions",
    "Problem",
    "ReindexReport",
    "VerifyReport",
    "finish_interrupted_prunes",
    "plan_prune",
    "prepare_index",
    "prune",
    "reindex",
    "verify",
]

Tick = Callable[[], None]


def _no_tick() -> None:
    return None


async def list_versions_in_store(store: Store, workspace: str) -> list[ObjectInfo]:
    """Every object under the workspace prefix, in key order."""
    return [info async for info in store.list(keys.workspace_root(workspace))]


# -- reindex -------------------------------------------------------------------


@dataclass
class ReindexReport:
    """What a reindex changed: keys added, rows fixed, rows whose object is gone."""

    added: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.fixed or self.missing)


class _Found(NamedTuple):
    info: ObjectInfo
    key: keys.VersionKey
    sha256: str
    recorded_number: int | None
    size: int
    """The size of the bytes saved (the object's own, unless it holds them packed)."""
    packed: bool


async def _replay_changes(
    session: AsyncSession, workspace: str, stored: dict[str, Change]
) -> list[Change]:
    """List the store's renames and copies the index lacks; every rename, in the order
    they were made."""
    known = await path_changes.all_changes(session, workspace)
    every = {**stored, **known}
    renames = [every[key] for key in sorted(every, key=lambda key: (every[key].changed_at, key))]
    for key in sorted(stored.keys() - known.keys(), key=lambda key: (stored[key].changed_at, key)):
        change = stored[key]
        if change.kind == RENAME:  # rows an older index had stay where the rename put them
            await path_changes.apply_recorded_rename(session, workspace, change)
        await path_changes.add_change(session, workspace, key, change, recorded=True)
    return [change for change in renames if change.kind == RENAME]


async def reindex(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    *,
    on_listed: Callable[[int], None] = lambda _: None,
    tick: Tick = _no_tick,
) -> ReindexReport:
    """Make the index describe exactly what the store holds; idempotent.

    Each object's metadata gives its sha256 and version number (objects
    without metadata are read and hashed), and each path's annotations object
    its labels and pins. Rows whose object is missing are reported, not
    deleted: the object may come back (a restored bucket).
    """
    report = ReindexReport()
    listing = await list_versions_in_store(store, workspace)
    on_listed(len(listing))
    async with index.reading() as session:
        rows = {row.store_key: row for row in await queries.workspace_versions(session, workspace)}
        pruned = set(await queries.pruned_keys(session, workspace))
    found: list[_Found] = []
    annotated: dict[str, str] = {}
    changes: dict[str, Change] = {}

    part_sizes: dict[tuple[int, str], int] = {}

    async def inspect(info: ObjectInfo) -> None:
        try:
            parsed = keys.parse_version_key(workspace, info.key)
            part = keys.parse_part_key(workspace, info.key)
            annotations_of = keys.parse_annotations_key(workspace, info.key)
            if part is not None:
                part_sizes[part] = info.size
            elif info.key == keys.epochs_key(workspace):
                pass  # how long the parts' epochs are: nothing to index
            elif annotations_of is not None:
                annotated[annotations_of] = info.key
            elif keys.parse_change_key(workspace, info.key):
                change = Change.from_json((await store.get(info.key)).data)
                if change is None:
                    report.ignored.append(info.key)
                else:
                    changes[info.key] = change
            elif parsed is None or info.key in pruned:
                report.ignored.append(info.key)
            elif (described := await _describe(store, info, parsed)) is None:
                report.ignored.append(info.key)  # a nested workspace's version
            else:
                found.append(described)
        finally:
            tick()

    await bounded(listing, inspect)
    found.sort(key=lambda item: item.info.key)
    present = {item.info.key for item in found}
    report.missing = sorted(key for key in rows if key not in present)
    new = [item for item in found if item.info.key not in rows]
    report.added = [item.info.key for item in new]
    async with index.writing() as session:
        for item in found:
            row = rows.get(item.info.key)
            if row is not None and (row.sha256, row.size) != (item.sha256, item.size):
                await queries.fix_version(session, row.id, item.sha256, item.size)
                report.fixed.append(item.info.key)
        renames = await _replay_changes(session, workspace, changes)
        indexed = await queries.workspace_versions(session, workspace)
        taken = {(row.path, row.number) for row in indexed}
        stored_sizes = await _stored_sizes(store, new, part_sizes)
        await queries.add_versions(session, _numbered(workspace, new, taken, renames, stored_sizes))
        for path, key in annotated.items():
            for number, note in (await load_annotations(store, key)).items():
                await queries.set_annotation(
                    session, workspace, path, number, note.label, note.pinned
                )
    return report


async def _describe(store: Store, info: ObjectInfo, key: keys.VersionKey) -> _Found | None:
    """What the object says of itself; ``None`` if it is another workspace's version."""
    recorded = keys.parse_version_metadata((await store.head(info.key)).metadata)
    if recorded.path is not None and recorded.path != key.path:
        return None
    sha256 = recorded.sha256
    if sha256 is None:  # only whole objects, from releases that wrote no metadata
        sha256 = sha256_of((await store.get(info.key)).data)
    size = recorded.size if recorded.size is not None else info.size
    return _Found(info, key, sha256, recorded.number, size, recorded.format == PACKED)


async def _stored_sizes(
    store: Store, new: list[_Found], part_sizes: dict[tuple[int, str], int]
) -> dict[str, int]:
    """What each new version costs in the store: its object, and each part it is the
    first of them (in save order) to name, as when they were archived."""
    manifests: dict[str, Manifest | None] = {}

    async def read(item: _Found) -> None:
        try:
            manifests[item.info.key] = await manifest_in(await store.get(item.info.key))
        except (ObjectNotFound, CorruptVersion):
            manifests[item.info.key] = None  # verify reports it; it costs its object

    await bounded([item for item in new if item.packed], read)
    claimed: set[tuple[int, str]] = set()
    sizes = {}
    for item in sorted(new, key=lambda item: item.key.queued_time):
        manifest = manifests.get(item.info.key)
        named = set() if manifest is None else {(manifest.epoch, d) for d in manifest.parts()}
        first = named - claimed
        claimed |= first
        sizes[item.info.key] = item.info.size + sum(part_sizes.get(part, 0) for part in first)
    return sizes


def _numbered(
    workspace: str,
    new: list[_Found],
    taken: set[tuple[str, int]],
    renames: list[Change],
    stored_sizes: dict[str, int],
) -> list[Version]:
    """Rows for objects the index lacks, named and numbered as when they were archived,
    and as the renames made since have named and numbered them.

    A recorded version number is used when it is free; the others (no metadata,
    or a number already taken) follow the path's highest number, in save order.
    """
    numbers: dict[str, int] = {}
    paths: dict[str, str] = {}
    for item in new:
        path, renumbered = follow(item.key.path, item.key.queued_time, item.info.key, renames)
        paths[item.info.key] = path
        recorded = renumbered or item.recorded_number
        if recorded and (path, recorded) not in taken:
            taken.add((path, recorded))
            numbers[item.info.key] = recorded
    highest: dict[str, int] = {}
    for path, number in taken:
        highest[path] = max(highest.get(path, 0), number)
    rows = []
    for item in new:
        path = paths[item.info.key]
        if item.info.key not in numbers:
            highest[path] = highest.get(path, 0) + 1
            numbers[item.info.key] = highest[path]
        rows.append(
            Version(
                workspace=workspace,
                path=path,
                number=numbers[item.info.key],
                store_key=item.info.key,
                size=item.size,
                stored_size=stored_sizes[item.info.key],
                sha256=item.sha256,
                queued_at=item.key.queued_time,
                archived_at=item.info.modified,
            )
        )
    return rows


# -- verify --------------------------------------------------------------------


class Problem(NamedTuple):
    """One disagreement between index and store, in words."""

    kind: str  # "missing", "corrupt" or "orphan"
    store_key: str
    detail: str


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    *,
    sample: int | None = None,
    on_total: Callable[[int], None] = lambda _: None,
    tick: Tick = _no_tick,
) -> VerifyReport:
    """Check indexed versions exist and match their sha256; report objects with no row."""
    report = VerifyReport()
    async with index.reading() as session:
        rows = await queries.workspace_versions(session, workspace)
        pruned = set(await queries.pruned_keys(session, workspace))
    listing = await list_versions_in_store(store, workspace)
    indexed = {row.store_key for row in rows}

    async def orphan(info: ObjectInfo) -> None:
        parsed = keys.parse_version_key(workspace, info.key)
        if info.key in indexed or parsed is None:
            return
        if info.key in pruned:
            detail = "left by an interrupted prune; the next prune deletes it"
        elif await _describe(store, info, parsed) is None:
            return  # a nested workspace's version
        else:
            detail = "in the store but not indexed (bookstore-history reindex adds it)"
        report.problems.append(Problem("orphan", info.key, detail))

    await bounded(listing, orphan)
    chosen = random.sample(rows, sample) if sample is not None and sample < len(rows) else rows
    on_total(len(chosen))

    async def check(row: Version) -> None:
        try:
            data = await read_version(store, workspace, row.store_key, row.size)
        except ObjectNotFound:
            report.problems.append(
                Problem("missing", row.store_key, f"version {row.number} of {row.path}")
            )
        except CorruptVersion as exc:
            report.problems.append(Problem("corrupt", row.store_key, str(exc)))
        else:
            if sha256_of(data) != row.sha256:
                detail = f"version {row.number} of {row.path}: sha256 differs from the index"
                report.problems.append(Problem("corrupt", row.store_key, detail))
        finally:
            report.checked += 1
            tick()

    await bounded(chosen, check)
    garbage = await find_garbage(store, workspace)
    for info in garbage.parts:
        detail = "a part no version names, past its grace period; the next prune deletes it"
        report.problems.append(Problem("orphan", info.key, detail))
    report.problems.sort(key=lambda problem: (problem.kind, problem.store_key))
    return report


# -- prune ---------------------------------------------------------------------

PRUNE_BATCH = 500
"""Versions removed per transaction: bounded memory, and far below SQLite's variable limit."""


class PathDecisions(NamedTuple):
    """The policy's verdict on every version of one path."""

    path: str
    rows: list[queries.VersionBrief]
    decisions: list[Decision]

    def removed(self) -> list[queries.VersionBrief]:
        keep = {d.version.number for d in self.decisions if d.keep}
        return [row for row in self.rows if row.number not in keep]


async def plan_prune(
    index: IndexDatabase,
    workspace: str,
    policy: RetentionPolicy,
    *,
    path_glob: str | None = None,
    tz: tzinfo | None = None,
) -> AsyncIterator[PathDecisions]:
    """What ``policy`` keeps and removes, one path at a time, in path order; changes nothing.

    Rows are streamed from the index, so memory holds one path's versions, not the
    workspace's.
    """
    now = datetime.now(timezone.utc)
    async with index.reading() as session:
        rows = queries.stream_versions(session, workspace)
        async for path, versions in _by_path(rows):
            if path_glob is not None and not fnmatch.fnmatchcase(path, path_glob):
                continue
            infos = [VersionInfo(r.number, r.queued_at, r.label, r.pinned) for r in versions]
            yield PathDecisions(path, versions, decide(infos, policy, tz, now=now))


class Pruner:
    """Removes what the plans drop, a batch at a time: index rows first, then objects.

    A batch's rows go, and their keys are listed in ``pruned_objects``, in one
    transaction; its objects are deleted after it. A crash in between leaves
    objects no row points to (``verify`` reports them), which the next prune
    deletes first; the index never points at a missing object.
    """

    def __init__(
        self, store: Store, index: IndexDatabase, workspace: str, *, tick: Tick = _no_tick
    ) -> None:
        self.store = store
        self.index = index
        self.workspace = workspace
        self.tick = tick
        self.removed = 0
        self._batch: list[queries.VersionBrief] = []

    async def add(self, plan: PathDecisions) -> None:
        for row in plan.removed():
            self._batch.append(row)
            if len(self._batch) >= PRUNE_BATCH:
                await self.flush()

    async def flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        async with self.index.writing() as session:
            await queries.remove_versions(
                session, self.workspace, batch, datetime.now(timezone.utc)
            )
        await _delete_objects(self.store, self.index, [row.store_key for row in batch], self.tick)
        self.removed += len(batch)


async def prune(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    plans: AsyncIterable[PathDecisions],
    *,
    tick: Tick = _no_tick,
) -> int:
    """Remove what ``plans`` drop (see ``Pruner``); how many versions went. The parts no
    version names any more are the caller's to free (``collect_parts``)."""
    pruner = Pruner(store, index, workspace, tick=tick)
    async for plan in plans:
        await pruner.add(plan)
    await pruner.flush()
    return pruner.removed


async def finish_interrupted_prunes(store: Store, index: IndexDatabase, workspace: str) -> int:
    """Delete the objects an interrupted prune left behind, a batch at a time; how many."""
    finished = 0
    while True:
        async with index.reading() as session:
            leftovers = await queries.pruned_keys(session, workspace, limit=PRUNE_BATCH)
        if not leftovers:
            return finished
        await _delete_objects(store, index, leftovers, _no_tick)
        finished += len(leftovers)


async def _delete_objects(store: Store, index: IndexDatabase, keys_: list[str], tick: Tick) -> None:
    async def remove(key: str) -> None:
        await store.delete(key)
        tick()

    await bounded(keys_, remove)
    async with index.writing() as session:
        await queries.forget_pruned(session, keys_)


async def _by_path(
    rows: AsyncIterator[queries.VersionBrief],
) -> AsyncIterator[tuple[str, list[queries.VersionBrief]]]:
    """Rows ordered by path, grouped into one list per path."""
    group: list[queries.VersionBrief] = []
    async for row in rows:
        if group and row.path != group[0].path:
            yield group[0].path, group
            group = []
        group.append(row)
    if group:
        yield group[0].path, group


# -- start-up ------------------------------------------------------------------


async def prepare_index(
    store: Store, index: IndexDatabase, workspace: str, log: logging.Logger
) -> None:
    """Make the index usable before anything is archived into it.

    An empty index (new, deleted, or created by an attempt that failed) is
    filled from the store; a damaged SQLite file is moved aside (never deleted)
    and rebuilt the same way, so the server starts and archives instead of
    failing at every start.
    """
    try:
        await index.migrate()
        await index.check_integrity()
        async with index.reading() as session:
            rebuild = await queries.count_versions(session, workspace) == 0
    except DatabaseError as exc:
        if index.sqlite_file is None:
            raise
        moved = await index.move_aside()
        log.error(
            "bookstore: the index %s is damaged (%s); moved it to %s and rebuilding it "
            "from the store",
            index.sqlite_file,
            str(exc.orig or exc).strip(),
            moved,
        )
        rebuild = True
        await index.migrate()
    if rebuild:
        report = await reindex(store, index, workspace)
        if report.added:
            log.warning(
                "bookstore: rebuilt the index from the store: %d versions indexed",
                len(report.added),
            )
