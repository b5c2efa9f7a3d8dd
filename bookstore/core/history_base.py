"""The rules every history follows, wherever its versions are read from.

A history finds versions, reads their bytes only after checking them against the
sha256 recorded at save time, describes them, diffs them, plans restores, and
keeps labels and pins, so every surface applies the same rules to what it hands a
person. ``bookstore.history.History`` reads the index and the store; in service
mode, ``bookstore.service_history.ServiceHistory`` asks the archive service.

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
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

from bookstore.core.diff import (
    DEFAULT_LIMITS,
    DiffLimits,
    NotebookDiff,
    diff_as_dict,
    diff_notebooks,
)
from bookstore.core.errors import CorruptVersion, NotComparable
from bookstore.core.nbdime_format import nbdime_diff, nbformat_reads
from bookstore.core.notebook import is_notebook_path, notebook_problem, read_notebook_json
from bookstore.core.record import sha256_of
from bookstore.core.version_record import (
    Origin,
    PathSummary,
    StorageTotals,
    VersionRecord,
    describe_version,
)
from bookstore.core.view import AS_STORED, PathView

__all__ = ["BaseHistory", "RestorePlan", "VersionDiff"]


class VersionDiff(NamedTuple):
    """Two sides of a diff: ``new`` is ``None`` when it is the file as it is now."""

    old: VersionRecord
    new: VersionRecord | None
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


class BaseHistory(ABC):
    """The archived versions of one workspace. Paths given to and shown by its methods
    are relative to the view's root."""

    outages: ClassVar[tuple[type[Exception], ...]] = ()
    """What it raises when its versions cannot be read now (as opposed to a refusal):
    surfaces that must answer in an outage, as the checkpoint list does, show none."""

    def __init__(
        self,
        workspace: str,
        *,
        view: PathView = AS_STORED,
        diff_limits: DiffLimits = DEFAULT_LIMITS,
    ) -> None:
        self.workspace = workspace
        self.view = view
        self.diff_limits = diff_limits

    # -- finding ---------------------------------------------------------------

    @abstractmethod
    async def find(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> VersionRecord:
        """Version ``number`` of ``path``, or its newest at or before ``at``, or its latest;
        ``VersionNotFound`` if there is none."""

    @abstractmethod
    async def latest(self, path: str) -> VersionRecord | None:
        """The newest version of ``path``, or ``None`` before its first."""

    @abstractmethod
    async def versions(
        self,
        path: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> Sequence[VersionRecord]:
        """Versions of ``path`` saved from ``since`` to ``until``, oldest first; ``limit``
        of them, the oldest or with ``newest`` the newest."""

    @abstractmethod
    async def page(
        self, path: str, offset: int, limit: int, *, newest: bool = False
    ) -> tuple[int, Sequence[VersionRecord]]:
        """How many versions ``path`` has, and ``limit`` of them from ``offset``: counted from
        the oldest, oldest first, or with ``newest`` from the newest, newest first."""

    @abstractmethod
    async def paths(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        everywhere: bool = False,
    ) -> list[PathSummary]:
        """Every archived path under the view's root, deleted ones included, most recently
        saved first; ``everywhere``: every path of the workspace, named absolutely."""

    @abstractmethod
    async def holds(self, path: str, content: bytes) -> bool:
        """Whether some version of ``path`` has exactly ``content``."""

    @abstractmethod
    async def origin(self, path: str) -> Origin | None:
        """What ``path`` was copied from, if it was made by copying a file ("Duplicate")."""

    @abstractmethod
    async def storage(self) -> StorageTotals | None:
        """The workspace's versions, bytes saved and bytes stored; ``None``: not known here."""

    @abstractmethod
    def _saved_under(self, version: VersionRecord) -> str:
        """The stored path the version was saved under, which its key names."""

    # -- reading -----------------------------------------------------------------

    @abstractmethod
    async def _read_bytes(self, version: VersionRecord) -> bytes:
        """The version's bytes as the store gives them; ``CorruptVersion`` if it cannot."""

    async def read(self, version: VersionRecord) -> bytes:
        """The version's bytes, if they are the bytes that were archived (its sha256 is
        the one recorded at save time). Only a mismatch makes a version damaged: one
        nbformat would not validate is given back as it was saved."""
        data = await self._read_bytes(version)
        if await asyncio.to_thread(sha256_of, data) != version.sha256:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is damaged in the store: its "
                "bytes do not match the sha256 recorded when it was archived "
                f"({version.store_key})"
            )
        return data

    async def fetch(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> tuple[VersionRecord, bytes]:
        """A version (as ``find`` chooses it) and its verified bytes."""
        version = await self.find(path, number, at)
        return version, await self.read(version)

    def describe(self, version: VersionRecord) -> dict[str, Any]:
        """A version as JSON surfaces give it, its paths named as the view names them."""
        return {
            **describe_version(version, self.saved_as(version)),
            "path": self.view.name(version.path),
        }

    def saved_as(self, version: VersionRecord) -> str:
        """The name the version was saved under, as the view names it."""
        return self.view.name(self._saved_under(version))

    async def diff(self, path: str, old: int, new: int | bytes) -> VersionDiff:
        """Version ``old`` against version ``new``, or against ``new`` bytes (the file now).

        Within ``diff_limits``: a side too large is refused before it is read, and a
        comparison that takes too long gives up (``LimitExceeded``). The versions are
        checked against their sha256; a diff reads the shape it needs and says what
        is not a notebook, so nbformat's schema, which costs more than the diff, is
        not checked.
        """
        limits = self.diff_limits
        if isinstance(new, bytes):
            limits.check_size(len(new), f"{path!r} as it is now")
            old_version = await self.find(path, old)
            limits.check_size(old_version.size, f"version {old} of {path!r}")
            return await self._compared(old_version, None, await self.read(old_version), new)
        # Both sides are looked up, then read, at once: each may be a round trip.
        old_version, new_version = await asyncio.gather(self.find(path, old), self.find(path, new))
        limits.check_size(old_version.size, f"version {old} of {path!r}")
        limits.check_size(new_version.size, f"version {new} of {path!r}")
        old_content, new_content = await asyncio.gather(
            self.read(old_version), self.read(new_version)
        )
        return await self._compared(old_version, new_version, old_content, new_content)

    async def _compared(
        self,
        old: VersionRecord,
        new: VersionRecord | None,
        old_content: bytes,
        new_content: bytes,
    ) -> VersionDiff:
        difference = await _off_the_loop(_compare, old_content, new_content, self.diff_limits)
        return VersionDiff(old, new, difference, old_content, new_content)

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
        archived = current is None or up_to_date or await self._known_to_hold(target, current)
        return RestorePlan(target, content, up_to_date, not archived, warning)

    async def _known_to_hold(self, path: str, content: bytes) -> bool:
        """Whether a version of ``path`` is known to hold ``content``: not while the history
        cannot be read, so the content is archived once more, which loses nothing."""
        try:
            return await self.holds(path, content)
        except self.outages:
            return False

    @abstractmethod
    async def archive_now(self, path: str, content: bytes) -> VersionRecord | None:
        """Archive ``content`` as the newest version of ``path``; ``None`` if it is that already."""

    @abstractmethod
    async def annotate(
        self, path: str, number: int, *, label: str | None = None, pinned: bool | None = None
    ) -> VersionRecord:
        """Set a version's label (``""`` removes it) and/or pin; the version as it is now."""


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
