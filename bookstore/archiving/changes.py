"""Renames and copies, applied to the index and kept in the store; moves made outside
Jupyter, recognised by content.

The index is changed first, in one transaction, so that a history follows its
file the moment the rename is made; the store's copy of the change (what an
index rebuilt from the store replays) and the labels and pins of the moved
histories are written next, and again by the archiver until the store takes them.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from bookstore.archiving.annotations import save_annotations
from bookstore.core import keys
from bookstore.core.body import read_whole
from bookstore.core.changes import COPY, RENAME, Change, moved
from bookstore.core.notebook import is_blank
from bookstore.core.record import HashedRecord
from bookstore.index import IndexDatabase, path_changes
from bookstore.store.base import Store

__all__ = ["adopt_moved_history", "record_changes", "record_copy", "rename_history"]

MOVE_CONTENT_BYTES = 64 << 20
"""The largest first save compared with the files that are gone (it is read whole, once)."""


async def rename_history(
    index: IndexDatabase, workspace: str, old: str, new: str, at: datetime
) -> Change | None:
    """Move the history of the file or folder ``old`` to ``new``, renamed at ``at``;
    ``None`` if this rename was made already (a request repeated after a lost answer)."""
    async with index.writing(durable=True) as session:
        await path_changes.lock_renames(session, workspace, exclusive=True)
        if await path_changes.has_change(session, workspace, Change(RENAME, old, new, at)):
            return None
        renumbered = await path_changes.rename_paths(session, workspace, old, new, before=at)
        change = Change(RENAME, old, new, at, renumbered)
        await path_changes.add_change(session, workspace, _record_key(workspace, at), change)
    return change


async def record_copy(
    index: IndexDatabase, workspace: str, source: str, copy: str, at: datetime
) -> Change | None:
    """Note that ``copy`` was made at ``at`` by copying ``source``; ``None`` if noted already."""
    change = Change(COPY, source, copy, at)
    async with index.writing(durable=True) as session:
        await path_changes.lock_renames(session, workspace, exclusive=True)
        if await path_changes.has_change(session, workspace, change):
            return None
        await path_changes.add_change(session, workspace, _record_key(workspace, at), change)
    return change


async def adopt_moved_history(
    index: IndexDatabase,
    workspace: str,
    hashed: HashedRecord,
    file_exists: Callable[[str], Awaitable[bool]],
) -> str | None:
    """Give the path of ``hashed``, a first save under a name with no history, the
    history of a file that is gone and last held exactly this content: that file was
    moved outside Jupyter (``mv``, ``git mv``). The path it had, or ``None``.

    Blank content is never matched: such files are alike by chance. Nor is a save
    whose own file was renamed since: it belongs to that file.
    """
    path = keys.normalize_path(hashed.filepath)
    if hashed.size > MOVE_CONTENT_BYTES:
        return None
    if await asyncio.to_thread(is_blank, read_whole(hashed.body)):
        return None
    async with index.reading() as session:
        if await path_changes.current_path(session, workspace, path, hashed.queued_time) != path:
            return None
        candidates = await path_changes.latest_with_sha256(session, workspace, hashed.sha256)
    for candidate in candidates:
        if candidate != path and not await file_exists(candidate):
            # Dated now, like every rename, so a rebuilt index replays them in this order.
            await rename_history(index, workspace, candidate, path, datetime.now(timezone.utc))
            return candidate
    return None


def _record_key(workspace: str, at: datetime) -> str:
    return keys.change_key(workspace, at, secrets.token_hex(8))


async def record_changes(store: Store, index: IndexDatabase, workspace: str) -> int:
    """Write to the store the changes only the index holds yet, oldest first, with the
    labels and pins of the histories each rename moved; how many were written."""
    async with index.reading() as session:
        waiting = await path_changes.unrecorded_changes(session, workspace)
    for record_key, change in waiting:
        await store.put(record_key, change.to_json(), {}, overwrite=True)
        async with index.writing() as session:
            if change.kind == RENAME:
                for path in await path_changes.annotated_paths(session, workspace, change.to_path):
                    await save_annotations(store, session, workspace, path)
                    before = moved(path, change.to_path, change.from_path)
                    assert before is not None, "the path lies at or under the new name"
                    await save_annotations(store, session, workspace, before)
            await path_changes.mark_recorded(session, record_key)
    return len(waiting)
