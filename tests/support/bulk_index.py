"""Indexes with many versions, written straight into the database: what a year of
autosaves looks like, built in seconds, for the tests and benchmarks of deep history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert

from bookstore.index import IndexDatabase, Version

__all__ = ["T0", "WORKSPACE", "fill_index", "path_name"]

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
WORKSPACE = "workspace"
_CHUNK = 10_000


def path_name(number: int) -> str:
    return f"nb-{number:05d}.ipynb"


def _rows(versions: int, paths: int) -> Iterator[dict[str, Any]]:
    per_path = versions // paths
    for p in range(paths):
        path = path_name(p)
        for v in range(1, per_path + 1):
            when = T0 + timedelta(seconds=p * per_path + v)
            yield {
                "workspace": WORKSPACE,
                "path": path,
                "number": v,
                "store_key": f"{WORKSPACE}/{path}/@{when:%Y%m%dT%H%M%S.%fZ}.ipynb",
                "size": 1000,
                "sha256": "0" * 64,
                "queued_at": when,
                "archived_at": when,
                "label": None,
                "pinned": False,
            }


async def fill_index(index_url: str, versions: int, paths: int) -> None:
    """A migrated index of ``versions`` rows spread evenly over ``paths`` paths, saved one
    second apart (no objects in any store: deleting a missing object is no error)."""
    database = IndexDatabase(index_url)
    try:
        await database.migrate()
        chunk: list[dict[str, Any]] = []
        for row in _rows(versions, paths):
            chunk.append(row)
            if len(chunk) == _CHUNK:
                await _insert(database, chunk)
                chunk = []
        if chunk:
            await _insert(database, chunk)
    finally:
        await database.close()


async def _insert(database: IndexDatabase, rows: list[dict[str, Any]]) -> None:
    async with database.writing() as session:
        await session.execute(insert(Version), rows)
