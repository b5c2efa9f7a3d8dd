"""A path with a very long history, written straight into an index, for scale tests.

Archiving 200,000 saves through a server would take an hour; the checkpoint list
and create-checkpoint only read the index, so its rows are enough. The rows
point at objects that are not in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from bookstore.core import keys
from bookstore.index import IndexDatabase, Version

__all__ = ["add_history", "insert_history"]

_BATCH = 20_000


def add_history(index_url: str, workspace: str, path: str, numbers: range) -> None:
    """Index versions ``numbers`` of ``path``, saved a second apart, ending an hour ago."""
    asyncio.run(_add_history(index_url, workspace, path, numbers))


async def _add_history(index_url: str, workspace: str, path: str, numbers: range) -> None:
    index = IndexDatabase(index_url)
    try:
        await insert_history(index, workspace, path, numbers)
    finally:
        await index.close()


async def insert_history(index: IndexDatabase, workspace: str, path: str, numbers: range) -> None:
    """``add_history`` into an open index (a running server's, say)."""
    first = datetime.now(timezone.utc) - timedelta(hours=1, seconds=len(numbers))
    for start in range(0, len(numbers), _BATCH):
        rows = [_row(workspace, path, number, first) for number in numbers[start:][:_BATCH]]
        async with index.writing() as session:
            await session.execute(insert(Version), rows)


def _row(workspace: str, path: str, number: int, first: datetime) -> dict[str, object]:
    queued_at = first + timedelta(seconds=number)
    return {
        "workspace": workspace,
        "path": path,
        "number": number,
        "store_key": keys.version_key(workspace, path, queued_at),
        "size": 100,
        "sha256": hashlib.sha256(b"%d" % number).hexdigest(),
        "queued_at": queued_at,
        "archived_at": queued_at,
        "label": None,
        "pinned": False,
    }
