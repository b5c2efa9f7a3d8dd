"""A drain that carries histories along renames, and notes copies, in the order made.

A rename carries the history of a file or folder to its new name (``rename``),
one rename after another; the saves of the new name wait for those queued under
the old, so a history stays in save order across it. Where a change is applied
(the index, or the archive service) is the subclass's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any

from bookstore.archiving.draining import Drain
from bookstore.core.changes import moved

__all__ = ["FollowingDrain"]

_CHANGE_GRACE = 5.0
"""Seconds a stopping drain gives a rename or copy under way to finish."""


class FollowingDrain(Drain):
    """Drains the outbox, and applies renames and copies between its saves."""

    def __init__(self, **drain: Any) -> None:
        """``drain``: the outbox and how to drain it, as ``Drain`` takes them."""
        super().__init__(**drain)
        self._changing: asyncio.Task[None] | None = None
        """The latest rename or copy: each waits for the one made before it."""
        self._changes: set[asyncio.Task[None]] = set()

    # -- what a subclass says --------------------------------------------------------

    async def _apply_rename(self, old: str, new: str, at: datetime) -> None:
        """Carry the history of ``old`` to ``new``, renamed at ``at``; raise to retry."""
        raise NotImplementedError

    async def _apply_copy(self, source: str, copy: str, at: datetime) -> None:
        """Note that ``copy`` was made from ``source`` at ``at``; raise to retry."""
        raise NotImplementedError

    async def _after_change(self) -> None:
        """Work to do once a change is applied."""

    # -- renames and copies ------------------------------------------------------------

    async def rename(self, old: str, new: str, *, wait: float) -> bool:
        """Carry the history of the file or folder ``old`` (a stored path) to ``new``.

        Renames (and copies) are applied in the order they are made, retried while
        they cannot be. ``True`` if this one is applied within ``wait`` seconds;
        otherwise it goes on in the background, and a save of ``new`` is handed on
        after the saves queued under ``old``.
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
        applying = self._change(
            partial(self._apply_rename, old, new, at), f"carry the history of {old!r} to {new!r}"
        )
        # No use waiting for a destination that is not ready, or not answering.
        done, _ = await asyncio.wait([applying], timeout=wait if self.ready else 0)
        return bool(done)

    def note_copy(self, source: str, copy: str) -> None:
        """Note, in the background, that ``copy`` (a stored path) was made by copying
        ``source``; the copy itself is archived as any file is."""
        at = datetime.now(timezone.utc)
        what = f"note that {copy!r} is a copy of {source!r}"
        self._change(partial(self._apply_copy, source, copy, at), what)

    def _change(self, apply: Callable[[], Awaitable[None]], what: str) -> asyncio.Task[None]:
        """Apply a rename or copy after the ones made before it; stopping the drain
        drops the ones not applied yet."""
        previous = self._changing

        async def in_turn() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await self._ready.wait()
            if await self._until_done(apply, what):
                await self._after_change()

        task = self._changing = asyncio.ensure_future(in_turn())
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)
        return task

    async def _before_each(self) -> None:
        if self._changing is not None and not self._changing.done():
            # A save is numbered in the history a rename made, never before it.
            await asyncio.wait([self._changing])

    async def _finish_changes(self) -> None:
        if self._changes:
            # One under way finishes (cancelled, it could leave a connection half open);
            # one still waiting for its turn, or for its destination, is dropped.
            _, waiting = await asyncio.wait(self._changes, timeout=_CHANGE_GRACE)
            for change in waiting:
                change.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
