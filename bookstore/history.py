"""History: the one door to archived versions, for the command line, the REST API and
the checkpoints alike.

It finds versions, reads their bytes only after checking them against the sha256
recorded at save time, describes them, diffs them, plans restores, and keeps
labels and pins, so every surface applies the same rules to what it hands a person.

Whatever costs more than a moment (hashing, nbformat's validation, a diff) runs
in a worker thread, so a server's event loop goes on serving while it does; a
diff stays within ``DiffLimits``. Validation and diffs, which make an object per
cell, also pause Python's cyclic garbage collector while they run (see
``_CollectorPause``).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.archiving.annotations import save_annotations
from bookstore.archiving.archiver import archive_record
from bookstore.archiving.version_objects import read_version
from bookstore.core import keys
from bookstore.core.diff import (
    DEFAULT_LIMITS,
    DiffLimits,
    NotebookDiff,
    diff_as_dict,
    diff_notebooks,
)
from bookstore.core.errors import CorruptVersion, NotComparable, ObjectNotFound, VersionNotFound
from bookstore.core.nbdime_format import nbdime_diff, nbformat_reads
from bookstore.core.notebook import is_notebook_path, notebook_problem, read_notebook_json
from bookstore.core.record import ArchiveRecord, HashedRecord, sha256_of
from bookstore.core.view import AS_STORED, PathView
from bookstore.index import IndexDatabase, Version, path_changes, queries
from bookstore.store.base import Store

__all__ = [
    "History",
    "Origin",
    "RestorePlan",
    "VersionDiff",
    "describe_path",
    "describe_version",
    "saved_as",
]


def saved_as(version: Version) -> str:
    """The stored path the version was saved under, which its key names: its history's
    path, unless the file was renamed since."""
    named = keys.parse_version_key(version.workspace, version.store_key)
    return version.path if named is None else named.path


def describe_version(version: Version) -> dict[str, Any]:
    """A version as JSON surfaces give it (``list --json``, the REST API)."""
    latency = (version.archived_at - version.queued_at).total_seconds() * 1000
    return {
        "path": version.path,
        "saved_as": saved_as(version),
        "version": version.number,
        "store_key": version.store_key,
        "size": version.size,
        "sha256": version.sha256,
        "queued_at": version.queued_at.isoformat(),
        "archived_at": version.archived_at.isoformat(),
        "latency_ms": round(latency, 3),
        "label": version.label,
        "pinned": version.pinned,
    }


def describe_path(summary: queries.PathSummary, exists: bool) -> dict[str, Any]:
    """An archived path as JSON surfaces give it; ``exists``: whether its file is there."""
    return {
        "path": summary.path,
        "versions": summary.versions,
        "latest_queued_at": summary.latest_queued_at.isoformat(),
        "total_bytes": summary.total_bytes,
        "stored_bytes": summary.stored_bytes,
        "exists": exists,
    }


class Origin(NamedTuple):
    """The file a copy was made from, and the version of it the copy began with."""

    path: str
    version: int | None
    """``None`` when none of the source's versions was archived before the copy."""
    copied_at: datetime

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "version": self.version, "copied_at": self.copied_at.isoformat()}


class VersionDiff(NamedTuple):
    """Two sides of a diff: ``new`` is ``None`` when it is the file as it is now."""

    old: Version
    new: Version | None
    difference: NotebookDiff
    old_content: bytes
    new_content: bytes
    """Both sides' bytes, checked, for another form of the diff (``nbdime``)."""


class RestorePlan(NamedTuple):
    """What writing ``content`` to ``target`` does to the file there now."""

    target: str
    content: bytes
    up_to_date: bool
    """The target already holds exactly this content: nothing to write."""
    must_archive_current: bool
    """The target holds content no version has: it is archived before it is replaced."""
    warning: str | None
    """Why nbformat would not accept the notebook restored, which is restored all the same:
    a history gives back what was saved."""


class History:
    """The archived versions of one workspace."""

    def __init__(
        self,
        store: Store,
        index: IndexDatabase,
        workspace: str,
        *,
        view: PathView = AS_STORED,
        diff_limits: DiffLimits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self.index = index
        self.workspace = workspace
        self.view = view
        """Paths given to and shown by these methods are relative to the view's root."""
        self.diff_limits = diff_limits

    # -- finding ---------------------------------------------------------------

    async def find(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> Version:
        """Version ``number`` of ``path``, or its newest at or before ``at``, or its latest."""
        async with self.index.reading() as session:
            return await self._find(session, path, number, at)

    async def _find(
        self, session: AsyncSession, path: str, number: int | None, at: datetime | None
    ) -> Version:
        stored = self.view.stored(path)
        if number is not None:
            row = await queries.get_version(session, self.workspace, stored, number)
            wanted = f"version {number} of {path!r}"
        elif at is not None:
            row = await queries.version_at(session, self.workspace, stored, at)
            wanted = f"a version of {path!r} saved at or before {at.isoformat()}"
        else:
            row = await queries.latest_version(session, self.workspace, stored)
            wanted = f"an archived version of {path!r}"
        if row is None:
            raise VersionNotFound(f"there is no {wanted} in the index")
        return row

    async def latest(self, path: str) -> Version | None:
        """The newest version of ``path``, or ``None`` before its first."""
        async with self.index.reading() as session:
            return await queries.latest_version(session, self.workspace, self.view.stored(path))

    async def versions(self, path: str, **window: Any) -> list[Version]:
        """Versions of ``path``, oldest first (``queries.list_versions`` says how to window)."""
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            return await queries.list_versions(session, self.workspace, stored, **window)

    async def page(
        self, path: str, offset: int, limit: int, *, newest: bool = False
    ) -> tuple[int, list[Version]]:
        """How many versions ``path`` has, and ``limit`` of them from ``offset``: counted from
        the oldest, oldest first, or with ``newest`` from the newest, newest first."""
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            total = await queries.count_versions_of(session, self.workspace, stored)
            rows = await queries.list_versions(
                session, self.workspace, stored, offset=offset, limit=limit, newest=newest
            )
        return total, rows[::-1] if newest else rows

    async def paths(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        everywhere: bool = False,
    ) -> list[queries.PathSummary]:
        """Every archived path under the view's root, deleted ones included, most recently
        saved first; ``everywhere``: every path of the workspace, named absolutely."""
        under = None if everywhere else self.view.base
        async with self.index.reading() as session:
            found = await queries.list_paths(
                session, self.workspace, since=since, until=until, under=under
            )
        name = self.view.anywhere if everywhere else self.view.name
        return [summary._replace(path=name(summary.path)) for summary in found]

    async def count_in(self, workspace: str) -> int:
        """How many versions another workspace of the same index holds."""
        async with self.index.reading() as session:
            return await queries.count_versions(session, workspace)

    async def storage(self) -> queries.StorageTotals:
        """The workspace's versions, the bytes they saved and what they cost in the store."""
        async with self.index.reading() as session:
            return await queries.storage_totals(session, self.workspace)

    async def stats(self, by: str, path: str | None) -> list[dict[str, Any]]:
        """Versions, bytes and archive latency per path or per UTC day, under the view's root."""
        stored = None if path is None else self.view.stored(path)
        async with self.index.reading() as session:
            rows = await queries.archive_stats(
                session, self.workspace, by=by, path=stored, under=self.view.base
            )
        if by != "path":
            return rows
        return [{**row, "group": self.view.name(row["group"])} for row in rows]

    async def holds(self, path: str, content: bytes) -> bool:
        """Whether some version of ``path`` has exactly ``content``."""
        digest = await asyncio.to_thread(sha256_of, content)
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            found = await queries.version_with_sha256(session, self.workspace, stored, digest)
        return found is not None

    def describe(self, version: Version) -> dict[str, Any]:
        """A version as JSON surfaces give it, its paths named as the view names them."""
        described = describe_version(version)
        return {
            **described,
            "path": self.view.name(version.path),
            "saved_as": self.view.name(described["saved_as"]),
        }

    def saved_as(self, version: Version) -> str:
        """The name the version was saved under, as the view names it."""
        return self.view.name(saved_as(version))

    async def origin(self, path: str) -> Origin | None:
        """What ``path`` was copied from, if it was made by copying a file ("Duplicate"):
        that file as it is named now, and its version the copy was made from."""
        async with self.index.reading() as session:
            copy = await path_changes.copy_of(session, self.workspace, self.view.stored(path))
            if copy is None:
                return None
            at = copy.changed_at
            source = await path_changes.current_path(session, self.workspace, copy.from_path, at)
            version = await queries.version_at(session, self.workspace, source, at)
        return Origin(self.view.name(source), None if version is None else version.number, at)

    # -- reading -----------------------------------------------------------------

    async def read(self, version: Version) -> bytes:
        """The version's bytes, if they are the bytes that were archived (its sha256 is
        the one recorded at save time). Only a mismatch makes a version damaged: one
        nbformat would not validate is given back as it was saved."""
        try:
            data = await read_version(self.store, self.workspace, version.store_key, version.size)
        except ObjectNotFound as exc:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is missing from the store "
                f"({version.store_key}); `bookstore-history verify` lists every such version"
            ) from exc
        except CorruptVersion as exc:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is damaged in the store: {exc}"
            ) from exc
        if await asyncio.to_thread(sha256_of, data) != version.sha256:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is damaged in the store: its "
                "bytes do not match the sha256 recorded when it was archived "
                f"({version.store_key})"
            )
        return data

    async def fetch(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> tuple[Version, bytes]:
        """A version (as ``find`` chooses it) and its verified bytes."""
        version = await self.find(path, number, at)
        return version, await self.read(version)

    async def diff(self, path: str, old: int, new: int | bytes) -> VersionDiff:
        """Version ``old`` against version ``new``, or against ``new`` bytes (the file now).

        Within ``diff_limits``: a side too large is refused before it is read, and a
        comparison that takes too long gives up (``LimitExceeded``). The versions are
        checked against their sha256; a diff reads the shape it needs and says what
        is not a notebook, so nbformat's schema, which costs more than the diff, is
        not checked.
        """
        limits = self.diff_limits
        old_version = await self.find(path, old)
        limits.check_size(old_version.size, f"version {old} of {path!r}")
        if isinstance(new, bytes):
            limits.check_size(len(new), f"{path!r} as it is now")
            new_version, new_content = None, new
        else:
            new_version = await self.find(path, new)
            limits.check_size(new_version.size, f"version {new} of {path!r}")
            new_content = await self.read(new_version)
        old_content = await self.read(old_version)
        difference = await _off_the_loop(_compare, old_content, new_content, limits)
        return VersionDiff(old_version, new_version, difference, old_content, new_content)

    async def nbdime(self, compared: VersionDiff) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The diff in nbdime's format: the old notebook as nbdime's renderer takes it, and
        the diff from it to the new one (``bookstore.core.nbdime_format``)."""
        return await _off_the_loop(
            _as_nbdime, compared.old_content, compared.new_content, compared.difference
        )

    # -- writing -----------------------------------------------------------------

    async def plan_restore(self, target: str, content: bytes, current: bytes | None) -> RestorePlan:
        """What restoring ``content`` over ``target`` (holding ``current``, if it exists) means."""
        warning = None
        if is_notebook_path(target):
            problem = await _off_the_loop(notebook_problem, content)
            if problem is not None:
                warning = f"nbformat would not accept it ({problem}); it is restored as saved"
        up_to_date = current == content
        archived = current is None or up_to_date or await self.holds(target, current)
        return RestorePlan(target, content, up_to_date, not archived, warning)

    async def archive_now(self, path: str, content: bytes) -> Version | None:
        """Archive ``content`` as the newest version of ``path``; ``None`` if it is that already."""
        record = ArchiveRecord(self.view.stored(path), content, datetime.now(timezone.utc))
        hashed = await asyncio.to_thread(HashedRecord.of, record)
        return await archive_record(self.store, self.index, self.workspace, hashed)

    async def annotate(
        self, path: str, number: int, *, label: str | None = None, pinned: bool | None = None
    ) -> None:
        """Set a version's label (``""`` removes it) and/or pin, in the index and the store.

        The store keeps a copy so that an index rebuilt from it keeps them too; it
        is written inside the transaction, so a store that refuses rolls it back.
        """
        async with self.index.writing() as session:
            version = await self._find(session, path, number, None)
            await queries.set_annotation(
                session,
                self.workspace,
                version.path,
                number,
                version.label if label is None else (label or None),
                version.pinned if pinned is None else pinned,
            )
            await save_annotations(self.store, session, self.workspace, version.path)


def _compare(old: bytes, new: bytes, limits: DiffLimits) -> NotebookDiff:
    """The diff of two notebooks, and its JSON form: in a worker thread, both."""
    try:
        difference = diff_notebooks(old, new, limits)
    except ValueError as exc:
        raise NotComparable(str(exc)) from exc
    diff_as_dict(difference)  # kept with the diff, for a surface that sends it
    return difference


def _as_nbdime(
    old: bytes, new: bytes, difference: NotebookDiff
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Both sides read again (their diff keeps none of their content), then converted."""
    base = nbformat_reads(read_notebook_json(old, "The old version is not a notebook"))
    target = nbformat_reads(read_notebook_json(new, "The new version is not a notebook"))
    return base, nbdime_diff(base, target, difference)


T = TypeVar("T")


class _CollectorPause:
    """Python's cyclic garbage collector, paused while any holder holds it.

    Validating or diffing a notebook of 16,000 cells makes hundreds of thousands
    of objects. Were the collector to run meanwhile, it would scan every object
    of the server (a tenth of a second or more for Jupyter's), holding the
    interpreter lock, so the event loop would wait. Paused, those objects are
    freed by their reference counts when the work ends, and never make it run.
    Holders nest across threads; the last one out restarts the collector, if it
    was running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._restart = False

    def run(self, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if not self._holders:
                self._restart = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            return work(*args)
        finally:
            with self._lock:
                self._holders -= 1
                if not self._holders and self._restart:
                    gc.enable()


_COLLECTOR = _CollectorPause()


async def _off_the_loop(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread, with the garbage collector paused."""
    return await asyncio.to_thread(_COLLECTOR.run, work, *args)
