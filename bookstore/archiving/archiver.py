"""The archiver: moves each outbox entry into the store and the index, in save order.

How saves are drained from the outbox (in order per path, retried, set aside when
they never can be archived) is ``draining.Drain``'s; this adds where they go, and
writes to the store the renames it could not.

Renames and copies are followed as ``following.FollowingDrain`` orders them,
applied to the index.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.exc import DataError

from bookstore.archiving.changes import (
    adopt_moved_history,
    record_changes,
    record_copy,
    rename_history,
)
from bookstore.archiving.following import FollowingDrain
from bookstore.archiving.outbox import OutboxEntry
from bookstore.archiving.version_objects import put_version
from bookstore.core import keys
from bookstore.core.errors import InvalidPath, ObjectConflict
from bookstore.core.record import HashedRecord
from bookstore.index import IndexDatabase, Version, queries
from bookstore.store.base import Store

__all__ = [
    "Archiver",
    "Latest",
    "archive_record",
    "latest_of",
    "store_and_index",
    "unarchivable_reason",
]


_KEY_ATTEMPTS = 16
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


class Archiver(FollowingDrain):
    """Archives outbox entries into the store and the index."""

    def __init__(
        self,
        *,
        store: Store,
        index: IndexDatabase,
        file_exists: Callable[[str], Awaitable[bool]] | None = None,
        on_archived: Callable[[Version], None] | None = None,
        **drain: Any,
    ) -> None:
        """``drain``: the outbox and how to drain it, as ``Drain`` takes them."""
        super().__init__(**drain)
        self.store = store
        self.index = index
        self.file_exists = file_exists
        """Whether the file of a stored path is there, if the archiver can tell: then a
        file moved outside Jupyter is recognised by its content, and keeps its history."""
        self.on_archived = on_archived
        """Told of each version this archiver indexes (to tell clients); what it raises is
        logged, and archiving goes on."""
        self._change_error: str | None = None

    def unarchivable(self, exc: BaseException) -> str | None:
        return unarchivable_reason(exc)

    async def _after_look(self) -> None:
        await self._record_changes()

    async def _apply_rename(self, old: str, new: str, at: datetime) -> None:
        await rename_history(self.index, self.workspace, old, new, at)

    async def _apply_copy(self, source: str, copy: str, at: datetime) -> None:
        await record_copy(self.index, self.workspace, source, copy, at)

    async def _after_change(self) -> None:
        await self._record_changes()

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

    async def _archive(self, entry: OutboxEntry, memo: list[Any]) -> None:
        # The path's newest version, read once per burst of saves and then followed
        # here: the drain is the only writer of this path in this process.
        latest: list[Latest | None] = memo
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
