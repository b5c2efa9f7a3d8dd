"""Service mode: a server hands its saves to the archive service instead of archiving.

The server keeps its durable outbox, and drains it as the archiver does (in order
per path, retried, set aside when they never can be archived: ``draining``), but
each save goes to the archive service with the server's own JupyterHub token.
The server holds no store or index credentials, and imports neither aiobotocore
nor SQLAlchemy. A push is idempotent: the save's path and time name its version,
and the service checks the sha256 sent with it, so one repeated after a lost
answer is archived once. Renames and copies go to the service in the order they
are made, between the saves (``following``); one repeated is made once too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bookstore.archiving.following import FollowingDrain
from bookstore.archiving.outbox import OutboxEntry
from bookstore.archiving.service_client import ServiceClient, ServiceVersion, Unpushable
from bookstore.core import keys
from bookstore.core.changes import COPY, RENAME
from bookstore.core.errors import InvalidPath

__all__ = ["Pusher"]


class Pusher(FollowingDrain):
    """Drains the outbox to the archive service."""

    def __init__(
        self,
        *,
        client: ServiceClient,
        on_archived: Callable[[ServiceVersion], None] | None = None,
        **drain: Any,
    ) -> None:
        """``on_archived``: told of each version the service makes; ``drain``: the outbox
        and how to drain it, as ``Drain`` takes them."""
        super().__init__(**drain)
        self.client = client
        self.on_archived = on_archived

    async def _apply_rename(self, old: str, new: str, at: datetime) -> None:
        await self._tell(RENAME, old, new, at)

    async def _apply_copy(self, source: str, copy: str, at: datetime) -> None:
        await self._tell(COPY, source, copy, at)

    async def _tell(self, kind: str, source: str, target: str, at: datetime) -> None:
        """Tell the service of a change; one it refuses for good is let go (the history
        keeps its old name), anything else is retried."""
        try:
            await self.client.change(kind, source, target, at)
        except Unpushable as exc:
            self.log.warning(
                "bookstore: the archive service refused the %s of %s to %s: %s",
                kind,
                source,
                target,
                exc,
            )

    def unarchivable(self, exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, (Unpushable, InvalidPath)) else None

    async def _archive(self, entry: OutboxEntry, memo: list[Any]) -> None:
        keys.normalize_path(entry.path)  # a name no store can hold is set aside, as ever
        try:
            hashed = await asyncio.to_thread(self.outbox.load, entry)
        except FileNotFoundError:
            return  # another server sharing the outbox pushed it: entries go once pushed
        made = await self.client.push(hashed)
        self.archived += 1
        await asyncio.to_thread(self.outbox.remove, entry)
        if made is not None and self.on_archived is not None:
            self.on_archived(made)
