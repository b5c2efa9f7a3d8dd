"""The archiver: moves each outbox entry into the store and the index, in save order.

Every path has at most one drain task, which archives that path's saves one
after another while holding the path's lock (``path_locks``, as in the original
bookstore, but a save that finds the lock held waits its turn instead of being
skipped); a semaphore bounds how many paths upload at once. A failure that a
retry may mend (the store or the index unreachable) is retried with backoff for
as long as the server runs, waiting without holding an upload slot, and the entry
stays in the outbox, so a restart resumes it. A save that can never be archived as
it is (a path no store or index can hold) is set aside in the outbox's
``failed/``, reported, and the path's next saves go on. Nothing is ever dropped.

Every few seconds the archiver looks at the outbox for entries to take over:
those of servers of its workspace that are gone, and those re-queued by
``bookstore-history retry``; and writes to the store the renames it could not.

A rename carries the history of a file or folder to its new name (``rename``),
one rename after another; the saves of the new name wait for those queued under
the old, so a history stays in save order across it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import NamedTuple

from sqlalchemy.exc import DataError

from bookstore.archiving.changes import (
    adopt_moved_history,
    record_changes,
    record_copy,
    rename_history,
)
from bookstore.archiving.outbox import Outbox, OutboxEntry, SetAside
from bookstore.archiving.version_objects import put_version
from bookstore.core import keys
from bookstore.core.changes import moved
from bookstore.core.errors import BookstoreError, InvalidPath, ObjectConflict
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase, Version, queries
from bookstore.store.base import Store

__all__ = [
    "Archiver",
    "Latest",
    "RetryPolicy",
    "archive_record",
    "latest_of",
    "store_and_index",
    "unarchivable_reason",
]


class RetryPolicy(NamedTuple):
    """Exponential backoff with jitter: initial, doubling, capped at ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_RETRY = RetryPolicy()
OUTBOX_SCAN_INTERVAL = 5.0
"""Seconds between two looks at the outbox for saves to take over or re-queued."""
_KEY_ATTEMPTS = 16
_CHANGE_GRACE = 5.0
"""Seconds a stopping archiver gives a rename or copy under way to finish."""
_NAME_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ})
"""File-system errors that say a name can never be held, however often it is tried."""


def unarchivable_reason(exc: BaseException) -> str | None:
    """Why a save can never be archived as it is, or ``None`` when a retry may mend it."""
    if isinstance(exc, InvalidPath):
        return str(exc)
    if isinstance(exc, ObjectConflict):
        return f"each of the {_KEY_ATTEMPTS} keys tried holds another object ({exc})"
    if isinstance(exc, DataError):
        return f"the index cannot hold it ({str(exc.orig).strip() or type(exc.orig).__name__})"
    if any(isinstance(cause, OSError) and cause.errno in _NAME_ERRORS for cause in _causes(exc)):
        return str(exc)
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from, innermost last."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


class Latest(NamedTuple):
    """What archiving needs to know of a path's newest version."""

    number: int
    sha256: str


async def latest_of(index: IndexDatabase, workspace: str, path: str) -> Latest | None:
    """The newest version of ``path`` in the index."""
    async with index.reading() as session:
        row = await queries.latest_version(session, workspace, path)
    return Latest(row.number, row.sha256) if row is not None else None


async def archive_record(
    store: Store, index: IndexDatabase, workspace: str, hashed: HashedRecord
) -> Version | None:
    """Store and index one save; ``None`` when it equals the path's latest version."""
    latest = await latest_of(index, workspace, hashed.filepath)
    return await store_and_index(store, index, workspace, hashed, latest)


async def store_and_index(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    hashed: HashedRecord,
    latest: Latest | None,
) -> Version | None:
    """Store and index one save, given the path's ``latest`` version as last seen.

    The object's key names the path the save was made under; its index row the
    name the file has now, when it was renamed after the save. Safe to repeat
    after a crash at any point: the key is derived from the record, the store
    accepts the same bytes again, and the index adds a key once. Another server
    that saved the same path in the same microsecond holds the key with other
    bytes; the save then takes the next free microsecond.
    """
    if latest is not None and latest.sha256 == hashed.sha256:
        return None
    path = keys.normalize_path(hashed.filepath)  # the index names paths as keys do
    for attempt in range(_KEY_ATTEMPTS):
        queued_time = hashed.queued_time + timedelta(microseconds=attempt)
        key = keys.version_key(workspace, path, queued_time)
        # Numbered before the upload, so the object's metadata names its real version.
        reserved = await index.write_together(
            partial(
                queries.reserve_version,
                workspace=workspace,
                path=path,
                store_key=key,
                sha256=hashed.sha256,
                saved_at=queued_time,
            )
        )
        if reserved is None:
            continue
        if reserved.number is None:
            return None
        try:
            stored_size = await put_version(store, workspace, key, hashed, reserved.number)
        except Exception as exc:
            # A key taken, or one the store can never hold: no version will use the number.
            if isinstance(exc, ObjectConflict) or unarchivable_reason(exc) is not None:
                async with index.writing() as session:
                    await queries.release_reservation(session, key)
            if isinstance(exc, ObjectConflict):
                continue
            raise
        break
    else:
        raise ObjectConflict(key)
    # Durable: the caller removes the save's outbox entry once this returns.
    return await index.write_together(
        partial(
            queries.add_version,
            workspace=workspace,
            store_key=key,
            size=hashed.size,
            stored_size=stored_size,
            sha256=hashed.sha256,
            queued_at=queued_time,
            archived_at=datetime.now(timezone.utc),
        ),
        durable=True,
    )


class Archiver:
    """Archives outbox entries; ``submit`` never blocks and never fails a save."""

    def __init__(
        self,
        *,
        store: Store,
        index: IndexDatabase,
        outbox: Outbox,
        workspace: str,
        concurrency: int = 8,
        retry: RetryPolicy = DEFAULT_RETRY,
        scan_interval: float = OUTBOX_SCAN_INTERVAL,
        log: logging.Logger | None = None,
        file_exists: Callable[[str], Awaitable[bool]] | None = None,
        on_archived: Callable[[Version], None] | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.outbox = outbox
        self.workspace = workspace
        self.retry = retry
        self.scan_interval = scan_interval
        self.log = log or logging.getLogger("bookstore")
        self.file_exists = file_exists
        """Whether the file of a stored path is there, if the archiver can tell: then a
        file moved outside Jupyter is recognised by its content, and keeps its history."""
        self.on_archived = on_archived
        """Told of each version this archiver indexes (to tell clients); what it raises is
        logged, and archiving goes on."""
        self.archived = 0
        self.last_error: str | None = None
        self.set_aside: list[SetAside] = []
        """This workspace's saves set aside in the outbox, oldest first, as last looked at."""
        self.path_locks: dict[str, asyncio.Lock] = {}
        """Each path's lock, held while one of its saves is stored and indexed."""
        self.path_lock_ready = asyncio.Lock()
        """Held while a path's lock is looked up or made, so each path has one."""
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: dict[str, deque[OutboxEntry]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._known: set[str] = set()
        self._finished: dict[str, list[asyncio.Future[None]]] = {}
        self._after: dict[str, list[asyncio.Task[None]]] = {}
        """The drains of renamed paths, which the next drain of their new name waits for."""
        self._changing: asyncio.Task[None] | None = None
        """The latest rename or copy: each waits for the one made before it."""
        self._changes: set[asyncio.Task[None]] = set()
        self._change_error: str | None = None
        self._keeping = asyncio.Lock()
        self._scanning: asyncio.Task[None] | None = None
        self._looks = self._shown_look = 0
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def ready(self) -> bool:
        """Whether the index is migrated and archiving has begun."""
        return self._ready.is_set()

    @property
    def backlog(self) -> int:
        """Saves acknowledged but not yet archived."""
        return len(self._known)

    def pending(self, path: str) -> list[OutboxEntry]:
        """Saves of ``path`` acknowledged but not yet archived, oldest first."""
        return list(self._waiting.get(path, ()))

    def submit(self, entry: OutboxEntry) -> None:
        """Queue a save that is already safe in the outbox."""
        name = entry.outbox_file.name
        if name in self._known or self._stopping.is_set():
            return
        self._known.add(name)
        self._waiting.setdefault(entry.path, deque()).append(entry)
        self._idle.clear()
        if entry.path not in self._drains:
            # Waits only for drains made before it, so no two drains wait for each other.
            after = self._after.pop(entry.path, [])
            self._drains[entry.path] = asyncio.ensure_future(self._drain(entry.path, after))

    async def archive(self, record: ArchiveRecord) -> None:
        """Archive one save now, in turn with the other saves of its path.

        The record is kept in the outbox first, so cancelling this wait, or a
        crash, loses nothing: it is archived in the background, or at the next start.
        Records given at once are queued in the order of the calls. Raises the
        reason when the save is set aside, as one that can never be archived.
        """
        finished = asyncio.get_running_loop().create_future()

        async def keep() -> None:
            async with self._keeping:
                entry = await asyncio.to_thread(
                    self.outbox.add_bytes, record.filepath, record.queued_time, record.content
                )
                # Content already waiting is kept once: then this waits for that entry.
                self._finished.setdefault(entry.outbox_file.name, []).append(finished)
                self.submit(entry)

        await asyncio.shield(asyncio.ensure_future(keep()))
        await asyncio.shield(finished)

    async def path_lock(self, path: str) -> asyncio.Lock:
        """The lock of ``path``, made on first use."""
        async with self.path_lock_ready:
            return self.path_locks.setdefault(path, asyncio.Lock())

    async def rename(self, old: str, new: str, *, wait: float) -> bool:
        """Carry the history of the file or folder ``old`` (a stored path) to ``new``.

        Renames (and copies) are applied in the order they are made, retried while
        the index cannot be written. ``True`` if this one is applied within ``wait``
        seconds; otherwise it goes on in the background, and a save of ``new`` is
        archived after the saves queued under ``old``.
        """
        if self._stopping.is_set():
            return False
        after: dict[str, list[asyncio.Task[None]]] = {}
        for path, drains in self._after.items():  # a chain: what waited for B waits for C
            after.setdefault(moved(path, old, new) or path, []).extend(drains)
        for path, drain in self._drains.items():
            destination = moved(path, old, new)
            if destination is not None:
                after.setdefault(destination, []).append(drain)
        self._after = {
            path: live
            for path, drains in after.items()
            if (live := [d for d in drains if not d.done()])
        }
        at = datetime.now(timezone.utc)

        async def apply() -> None:
            await rename_history(self.index, self.workspace, old, new, at)

        applying = self._change(apply, f"carry the history of {old!r} to {new!r}")
        # No use waiting for an index that is not ready, or not answering.
        done, _ = await asyncio.wait([applying], timeout=wait if self.ready else 0)
        return bool(done)

    def note_copy(self, source: str, copy: str) -> None:
        """Note, in the background, that ``copy`` (a stored path) was made by copying
        ``source``; the copy itself is archived as any file is."""
        at = datetime.now(timezone.utc)

        async def note() -> None:
            await record_copy(self.index, self.workspace, source, copy, at)

        self._change(note, f"note that {copy!r} is a copy of {source!r}")

    def _change(self, apply: Callable[[], Awaitable[None]], what: str) -> asyncio.Task[None]:
        """Apply a rename or copy to the index after the ones made before it, then keep
        it in the store; stopping the archiver drops the ones not applied yet."""
        previous = self._changing

        async def in_turn() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await self._ready.wait()
            if await self._until_done(apply, what):
                await self._record_changes()

        task = self._changing = asyncio.ensure_future(in_turn())
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)
        return task

    async def _record_changes(self) -> None:
        """Keep the renames and copies only the index holds in the store too; a store
        that refuses is tried again at the next look at the outbox."""
        try:
            await record_changes(self.store, self.index, self.workspace)
        except Exception as exc:
            self._report(exc, "keep renames in the store", 1)
            self._change_error = self.last_error
        else:
            if self._change_error is not None and self.last_error == self._change_error:
                self.last_error = None
            self._change_error = None

    async def start(self, prepare: Callable[[], Awaitable[None]]) -> None:
        """Begin archiving once ``prepare`` has made the index usable, the saves left
        in the outbox (by this server before a restart, or by one that is gone) first.

        Saves submitted before this call wait in their queues; nothing reaches the
        index before its schema does.
        """
        if not await self._until_done(self._look_at_outbox, "read the outbox"):
            return
        if not await self._until_done(prepare, "prepare the index"):
            return
        for waiting in self._waiting.values():
            # Saves made while the index was prepared queued ahead of older ones.
            ordered = sorted(waiting, key=lambda entry: entry.queued_time)
            waiting.clear()
            waiting.extend(ordered)
        self._ready.set()
        self._scanning = asyncio.ensure_future(self._look_at_outbox_now_and_then())

    async def wait_idle(self) -> None:
        """Return once every submitted save is archived."""
        await self._idle.wait()

    async def stop(self, timeout: float) -> None:
        """Give queued saves ``timeout`` seconds, then stop; the rest stay in the outbox.

        The time includes finishing start-up, if the server stops that early.
        """

        async def settled() -> None:
            await self._ready.wait()
            await self._idle.wait()

        try:
            if self.backlog:  # wait_for(..., 0) would time out even on nothing to wait for
                await asyncio.wait_for(settled(), timeout)
        except asyncio.TimeoutError:
            self.log.warning(
                "bookstore: %d saves are not archived yet; they stay in %s and are "
                "archived at the next start",
                self.backlog,
                self.outbox.directory,
            )
        self._stopping.set()
        if self._scanning is not None:
            await self._scanning  # a look under way renames files: let it finish
        if self._changes:
            # One under way finishes (cancelled, it could leave a connection half open);
            # one still waiting for its turn, or for the index, is dropped.
            _, waiting = await asyncio.wait(self._changes, timeout=_CHANGE_GRACE)
            for change in waiting:
                change.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        for task in list(self._drains.values()):
            task.cancel()
        await asyncio.gather(*self._drains.values(), return_exceptions=True)
        # What is left is for the next start, or for another server of the workspace.
        await asyncio.to_thread(self.outbox.close)

    async def _drain(self, path: str, after: list[asyncio.Task[None]]) -> None:
        waiting = self._waiting[path]
        # The path's newest version, read once per burst of saves and then followed
        # here: the drain is the only writer of this path in this process.
        latest: list[Latest | None] = []
        failures = 0
        try:
            await self._ready.wait()
            if after:
                # The saves made before the file was renamed to ``path`` go first.
                await asyncio.wait(after)
            while waiting and not self._stopping.is_set():
                entry = waiting[0]
                if self._changing is not None and not self._changing.done():
                    # A save is numbered in the history a rename made, never before it.
                    await asyncio.wait([self._changing])
                async with self._slots, await self.path_lock(path):
                    try:
                        await self._archive(entry, latest)
                        outcome: Exception | None = None
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        outcome = exc
                if outcome is not None and unarchivable_reason(outcome) is None:
                    failures += 1
                    self._report(outcome, f"archive {path!r}", failures)
                    await self._pause(self.retry.delay(failures))  # holding no slot
                    continue
                if outcome is not None:
                    await self._put_aside(entry, outcome)
                elif failures:
                    self.log.info(
                        "bookstore: could archive %r again after %d failures", path, failures
                    )
                    self.last_error = None
                failures = 0
                waiting.popleft()
                self._done(entry, outcome)
        finally:
            if not waiting:
                del self._waiting[path]
            del self._drains[path]
            if not self._drains:
                self._idle.set()

    async def _archive(self, entry: OutboxEntry, latest: list[Latest | None]) -> None:
        try:
            hashed = await asyncio.to_thread(self.outbox.load, entry)
        except FileNotFoundError:
            # Another server sharing the outbox archived it: entries go only once archived.
            latest.clear()
            return
        path = keys.normalize_path(entry.path)
        if not latest:
            found = await latest_of(self.index, self.workspace, path)
            if found is None and self.file_exists is not None:
                moved_from = await adopt_moved_history(
                    self.index, self.workspace, hashed, self.file_exists
                )
                if moved_from is not None:
                    self.log.info(
                        "bookstore: %s holds what %s last held, and %s is gone: it keeps that "
                        "history",
                        path,
                        moved_from,
                        moved_from,
                    )
                    await self._record_changes()
                    found = await latest_of(self.index, self.workspace, path)
            latest.append(found)
        row = await store_and_index(self.store, self.index, self.workspace, hashed, latest[0])
        if row is not None:
            self.archived += 1
            self._tell_archived(row)
            if row.path == path:
                latest[0] = Latest(row.number, row.sha256)
            else:
                latest.clear()  # filed under the name its file was renamed to: read again
        await asyncio.to_thread(self.outbox.remove, entry)

    def _tell_archived(self, row: Version) -> None:
        if self.on_archived is None:
            return
        try:
            self.on_archived(row)
        except Exception:
            self.log.exception(
                "bookstore: version %d of %r is archived; telling of it failed",
                row.number,
                row.path,
            )

    async def _put_aside(self, entry: OutboxEntry, exc: Exception) -> None:
        """Set a save that can never be archived as it is aside, and say so."""
        reason = unarchivable_reason(exc)
        assert reason is not None
        item = await asyncio.to_thread(self.outbox.set_aside, entry, reason)
        if item is not None:
            self._say_set_aside(item)
            await self._list_set_aside()

    def _say_set_aside(self, item: SetAside) -> None:
        what = f"a save of {item.path!r}" if item.path is not None else "a file"
        self.log.error(
            "bookstore: set aside %s that can never be archived as it is: %s. It is kept "
            "as %s; `bookstore-history retry` queues it again.",
            what,
            item.reason,
            item.outbox_file,
        )

    def _done(self, entry: OutboxEntry, error: Exception | None) -> None:
        self._known.discard(entry.outbox_file.name)
        for finished in self._finished.pop(entry.outbox_file.name, []):
            if finished.done():
                continue
            if error is None:
                finished.set_result(None)
            else:
                finished.set_exception(error)
                finished.exception()  # retrieved: a caller that stopped waiting is no error

    async def _look_at_outbox(self) -> None:
        """Take over the saves no live server owns, and see which are set aside."""
        claimed = await asyncio.to_thread(self.outbox.claim)
        for item in claimed.set_aside:
            self._say_set_aside(item)
        for entry in claimed.entries:
            self.submit(entry)
        await self._list_set_aside()

    async def _list_set_aside(self) -> None:
        """Read which saves of this workspace are set aside; a later look always wins."""
        self._looks += 1
        look = self._looks
        found = await asyncio.to_thread(self.outbox.set_aside_saves)
        if look > self._shown_look:
            self._shown_look = look
            self.set_aside = [item for item in found if item.workspace in (None, self.workspace)]

    async def _look_at_outbox_now_and_then(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.scan_interval)
            if not await self._until_done(self._look_at_outbox, "read the outbox"):
                return
            await self._record_changes()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the archiver stops meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _until_done(self, attempt: Callable[[], Awaitable[None]], what: str) -> bool:
        """Run ``attempt`` until it succeeds, waiting longer after each failure.

        ``False`` when the archiver stops first: an attempt under way is let finish
        (cancelling one could leave a database connection half open), none is begun.
        """
        failures = 0
        while not self._stopping.is_set():
            try:
                await attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self._report(exc, what, failures)
                await self._pause(self.retry.delay(failures))
            else:
                if failures:
                    self.log.info("bookstore: could %s again after %d failures", what, failures)
                    self.last_error = None
                return True
        return False

    def _report(self, exc: Exception, what: str, failures: int) -> None:
        reason = str(exc) if isinstance(exc, BookstoreError) else f"{type(exc).__name__}: {exc}"
        message = f"could not {what} ({reason}); retrying"
        if message != self.last_error:
            self.log.warning("bookstore: %s", message, exc_info=not isinstance(exc, BookstoreError))
        elif failures == 1:
            self.log.debug("bookstore: %s", message)
        self.last_error = message
