"""Group commit: writes queued while a transaction runs share the next one.

Each version costs the index two short writes (its number reserved before the
upload, its row after). Alone, each is a transaction of its own: a BEGIN, a
COMMIT (synced to disk for the durable ones) and a turn on the one writer. The
archiver archives several paths at once, so writes arrive together; queued here,
they run one after another in one transaction, committed once, with the
durability the most demanding of them asked for.

A write that fails makes its batch roll back; each write of that batch then runs
in a transaction of its own, so the failure is the failing write's alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["MAX_BATCH", "WriteBatcher"]

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]
Transaction = Callable[..., AbstractAsyncContextManager[AsyncSession]]

MAX_BATCH = 64
"""The most writes one transaction holds: a bounded time holding the writer's turn."""


def _retrieved(done: asyncio.Future[Any]) -> None:
    """Mark the outcome seen: a caller that stopped waiting is no error."""
    if not done.cancelled():
        done.exception()


class _Queued(NamedTuple):
    work: Work
    durable: bool
    done: asyncio.Future[Any]


class WriteBatcher:
    """Runs queued writes in shared transactions, one transaction at a time."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction
        self._queued: list[_Queued] = []
        self._committing: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, durable: bool) -> T:
        """``work``'s result, once the transaction it ran in is committed."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)
        self._queued.append(_Queued(work, durable, done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_queued())
        # A caller that stops waiting leaves its write to finish: it may be half a batch.
        return await asyncio.shield(done)

    async def finish(self) -> None:
        """Wait for the writes queued so far to be committed (or to fail): before the
        database closes, a write whose caller stopped waiting still holds a connection."""
        while self._committing is not None and not self._committing.done():
            await asyncio.wait({self._committing})

    async def _commit_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
            try:
                results = await self._together(batch)
            except Exception:
                for queued in batch:
                    await self._alone(queued)
            else:
                for queued, result in zip(batch, results, strict=True):
                    queued.done.set_result(result)

    async def _together(self, batch: list[_Queued]) -> list[Any]:
        durable = any(queued.durable for queued in batch)
        async with self._transaction(durable=durable) as session:
            return [await queued.work(session) for queued in batch]

    async def _alone(self, queued: _Queued) -> None:
        try:
            async with self._transaction(durable=queued.durable) as session:
                result = await queued.work(session)
        except Exception as exc:
            queued.done.set_exception(exc)
        else:
            queued.done.set_result(result)
