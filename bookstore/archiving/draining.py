"""Draining the outbox: each path's saves handed on in save order, none ever dropped.

Every path has at most one drain task, which hands that path's saves on one
after another while holding the path's lock (``path_locks``, as in the original
bookstore, but a save that finds the lock held waits its turn instead of being
skipped); a semaphore bounds how many paths are handed on at once. A failure
that a retry may mend (the destination unreachable) is retried with backoff for
as long as the server runs, waiting without holding a slot, and the entry stays
in the outbox, so a restart resumes it. A save that can never be handed on as it
is (a path no store or index can hold) is set aside in the outbox's ``failed/``,
reported, and the path's next saves go on.

Every few seconds the drain looks at the outbox for entries to take over: those
of servers of its workspace that are gone, and those re-queued by
``bookstore-history retry``.

Where saves go is a subclass's: the ``Archiver`` writes them to the store and
index itself; the ``Pusher`` hands them to the archive service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from bookstore.archiving.outbox import Outbox, OutboxEntry, SetAside
from bookstore.core.errors import BookstoreError
from bookstore.core.record import ArchiveRecord

__all__ = ["DEFAULT_RETRY", "OUTBOX_SCAN_INTERVAL", "Drain", "RetryPolicy"]


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


class Drain:
    """Hands outbox entries on; ``submit`` never blocks and never fails a save."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        workspace: str,
        concurrency: int = 8,
        retry: RetryPolicy = DEFAULT_RETRY,
        scan_interval: float = OUTBOX_SCAN_INTERVAL,
        log: logging.Logger | None = None,
    ) -> None:
        self.outbox = outbox
        self.workspace = workspace
        self.retry = retry
        self.scan_interval = scan_interval
        self.log = log or logging.getLogger("bookstore")
        self.archived = 0
        self.last_error: str | None = None
        self.set_aside: list[SetAside] = []
        """This workspace's saves set aside in the outbox, oldest first, as last looked at."""
        self.path_locks: dict[str, asyncio.Lock] = {}
        """Each path's lock, held while one of its saves is handed on."""
        self.path_lock_ready = asyncio.Lock()
        """Held while a path's lock is looked up or made, so each path has one."""
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: dict[str, deque[OutboxEntry]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._known: set[str] = set()
        self._finished: dict[str, list[asyncio.Future[None]]] = {}
        self._after: dict[str, list[asyncio.Task[None]]] = {}
        """The drains of renamed paths, which the next drain of their new name waits for."""
        self._keeping = asyncio.Lock()
        self._scanning: asyncio.Task[None] | None = None
        self._looks = self._shown_look = 0
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- what a subclass says --------------------------------------------------------

    async def _archive(self, entry: OutboxEntry, memo: list[Any]) -> None:
        """Hand one entry on, then remove it from the outbox. ``memo`` is the path's
        drain's own, kept from one of its saves to the next."""
        raise NotImplementedError

    def unarchivable(self, exc: BaseException) -> str | None:
        """Why a save can never be handed on as it is, or ``None`` when a retry may mend it."""
        raise NotImplementedError

    async def _before_each(self) -> None:
        """Wait for what must happen before the next save is handed on."""

    async def _after_look(self) -> None:
        """Work to redo after each look at the outbox."""

    async def _finish_changes(self) -> None:
        """Let work other than saves finish, or drop it, when stopping."""

    # -- the drains ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the destination is prepared and saves are being handed on."""
        return self._ready.is_set()

    @property
    def backlog(self) -> int:
        """Saves acknowledged but not yet handed on."""
        return len(self._known)

    def pending(self, path: str) -> list[OutboxEntry]:
        """Saves of ``path`` acknowledged but not yet handed on, oldest first."""
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
        """Hand one save on now, in turn with the other saves of its path.

        The record is kept in the outbox first, so cancelling this wait, or a
        crash, loses nothing: it is handed on in the background, or at the next
        start. Records given at once are queued in the order of the calls. Raises
        the reason when the save is set aside, as one that can never be archived.
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

    async def start(self, prepare: Callable[[], Awaitable[None]]) -> None:
        """Begin handing saves on once ``prepare`` has made the destination usable, the
        saves left in the outbox (by this server before a restart, or by one that is
        gone) first.

        Saves submitted before this call wait in their queues; nothing reaches the
        destination before it is prepared.
        """
        if not await self._until_done(self._look_at_outbox, "read the outbox"):
            return
        if not await self._until_done(prepare, "prepare the index"):
            return
        for waiting in self._waiting.values():
            # Saves made while the destination was prepared queued ahead of older ones.
            ordered = sorted(waiting, key=lambda entry: entry.queued_time)
            waiting.clear()
            waiting.extend(ordered)
        self._ready.set()
        self._scanning = asyncio.ensure_future(self._look_at_outbox_now_and_then())

    async def wait_idle(self) -> None:
        """Return once every submitted save is handed on."""
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
        await self._finish_changes()
        for task in list(self._drains.values()):
            task.cancel()
        await asyncio.gather(*self._drains.values(), return_exceptions=True)
        # What is left is for the next start, or for another server of the workspace.
        await asyncio.to_thread(self.outbox.close)

    async def _drain(self, path: str, after: list[asyncio.Task[None]]) -> None:
        waiting = self._waiting[path]
        memo: list[Any] = []
        failures = 0
        try:
            await self._ready.wait()
            if after:
                # The saves made before the file was renamed to ``path`` go first.
                await asyncio.wait(after)
            while waiting and not self._stopping.is_set():
                entry = waiting[0]
                await self._before_each()
                async with self._slots, await self.path_lock(path):
                    try:
                        await self._archive(entry, memo)
                        outcome: Exception | None = None
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        outcome = exc
                if outcome is not None and self.unarchivable(outcome) is None:
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

    async def _put_aside(self, entry: OutboxEntry, exc: Exception) -> None:
        """Set a save that can never be archived as it is aside, and say so."""
        reason = self.unarchivable(exc)
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
            mine = self.outbox.workspace
            self.set_aside = [
                item for item in found if mine is None or item.workspace in (None, mine)
            ]

    async def _look_at_outbox_now_and_then(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.scan_interval)
            if not await self._until_done(self._look_at_outbox, "read the outbox"):
                return
            await self._after_look()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the drain stops meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _until_done(self, attempt: Callable[[], Awaitable[None]], what: str) -> bool:
        """Run ``attempt`` until it succeeds, waiting longer after each failure.

        ``False`` when the drain stops first: an attempt under way is let finish
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
