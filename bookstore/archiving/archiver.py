"""The archiver: moves each outbox entry into the store and the index, in save order.

Every path has at most one drain task, which archives that path's saves one
after another while holding the path's lock (``path_locks``, as in the original
bookstore, but a save that finds the lock held waits its turn instead of being
skipped); a semaphore bounds how many paths upload at once. A failure is
retried with backoff for as long as the server runs, and the entry stays in the
outbox, so a restart resumes it. Nothing is ever skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import NamedTuple

from bookstore.archiving.outbox import Outbox, OutboxEntry
from bookstore.core import keys
from bookstore.core.errors import BookstoreError, ObjectConflict
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
_KEY_ATTEMPTS = 16


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
    latest = await latest_of(index, workspace, hashed.record.filepath)
    return await store_and_index(store, index, workspace, hashed, latest)


async def store_and_index(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    hashed: HashedRecord,
    latest: Latest | None,
) -> Version | None:
    """Store and index one save, given the path's ``latest`` version as last seen.

    Safe to repeat after a crash at any point: the key is derived from the
    record, the store accepts the same bytes again, and the index adds a key once.
    Another server that saved the same path in the same microsecond holds the
    key with other bytes; the save then takes the next free microsecond.
    """
    record = hashed.record
    if latest is not None and latest.sha256 == hashed.sha256:
        return None
    path = record.filepath
    for attempt in range(_KEY_ATTEMPTS):
        queued_time = record.queued_time + timedelta(microseconds=attempt)
        key = keys.version_key(workspace, path, queued_time)
        async with index.writing() as session:
            # Numbered before the upload, so the object's metadata names its real version.
            number = await queries.reserve_version(session, workspace, path, key, hashed.sha256)
        if number is None:
            continue
        try:
            await store.put(key, record.content, keys.version_metadata(hashed, number))
        except ObjectConflict:
            async with index.writing() as session:
                await queries.release_reservation(session, key)
            continue
        break
    else:
        raise ObjectConflict(key)
    async with index.writing() as session:
        return await queries.add_version(
            session,
            workspace=workspace,
            path=path,
            number=number,
            store_key=key,
            size=len(record.content),
            sha256=hashed.sha256,
            queued_at=queued_time,
            archived_at=datetime.now(timezone.utc),
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
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.outbox = outbox
        self.workspace = workspace
        self.retry = retry
        self.log = log or logging.getLogger("bookstore")
        self.archived = 0
        self.last_error: str | None = None
        self.path_locks: dict[str, asyncio.Lock] = {}
        """Each path's lock, held while one of its saves is stored and indexed."""
        self.path_lock_ready = asyncio.Lock()
        """Held while a path's lock is looked up or made, so each path has one."""
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: dict[str, deque[OutboxEntry]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._known: set[str] = set()
        self._finished: dict[str, asyncio.Future[None]] = {}
        self._keeping = asyncio.Lock()
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
        if name in self._known:
            return
        self._known.add(name)
        self._waiting.setdefault(entry.path, deque()).append(entry)
        self._idle.clear()
        if entry.path not in self._drains:
            self._drains[entry.path] = asyncio.ensure_future(self._drain(entry.path))

    async def archive(self, record: ArchiveRecord) -> None:
        """Archive one save now, in turn with the other saves of its path.

        The record is kept in the outbox first, so cancelling this wait, or a
        crash, loses nothing: it is archived in the background, or at the next start.
        Records given at once are queued in the order of the calls.
        """
        finished = asyncio.get_running_loop().create_future()

        async def keep() -> None:
            async with self._keeping:
                entry = await asyncio.to_thread(
                    self.outbox.add_bytes, record.filepath, record.queued_time, record.content
                )
                self._finished[entry.outbox_file.name] = finished
                self.submit(entry)

        await asyncio.shield(asyncio.ensure_future(keep()))
        await asyncio.shield(finished)

    async def path_lock(self, path: str) -> asyncio.Lock:
        """The lock of ``path``, made on first use."""
        async with self.path_lock_ready:
            return self.path_locks.setdefault(path, asyncio.Lock())

    async def start(
        self, earlier: Iterable[OutboxEntry], prepare: Callable[[], Awaitable[None]]
    ) -> None:
        """Begin archiving once ``prepare`` has made the index usable, ``earlier`` saves first.

        Saves submitted before this call wait in their queues; nothing reaches the
        index before its schema does.
        """
        if not await self._until_done(prepare, "prepare the index"):
            return
        for entry in earlier:
            self.submit(entry)
        for waiting in self._waiting.values():
            # Saves made while the index was prepared queued ahead of older ones.
            ordered = sorted(waiting, key=lambda entry: entry.outbox_file.name)
            waiting.clear()
            waiting.extend(ordered)
        self._ready.set()

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
        for task in list(self._drains.values()):
            task.cancel()
        await asyncio.gather(*self._drains.values(), return_exceptions=True)

    async def _drain(self, path: str) -> None:
        waiting = self._waiting[path]
        # The path's newest version, read once per burst of saves and then followed
        # here: the drain is the only writer of this path in this process.
        latest: list[Latest | None] = []
        try:
            await self._ready.wait()
            while waiting:
                entry = waiting[0]
                async with self._slots, await self.path_lock(path):
                    archive = partial(self._archive, entry, latest)
                    if not await self._until_done(archive, f"archive {path!r}"):
                        return
                waiting.popleft()
                self._known.discard(entry.outbox_file.name)
                finished = self._finished.pop(entry.outbox_file.name, None)
                if finished is not None and not finished.done():
                    finished.set_result(None)
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
        if not latest:
            latest.append(await latest_of(self.index, self.workspace, entry.path))
        row = await store_and_index(self.store, self.index, self.workspace, hashed, latest[0])
        if row is not None:
            latest[0] = Latest(row.number, row.sha256)
            self.archived += 1
        await asyncio.to_thread(self.outbox.remove, entry)

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
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.retry.delay(failures))
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
