"""Renames in the index itself, on SQLite and PostgreSQL: a folder move, a chain, a save
made before a rename and archived after it, and an index rebuilt from the store that
agrees with the live one, numbers included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bookstore.archiving.archiver import archive_record
from bookstore.archiving.changes import record_changes, rename_history
from bookstore.archiving.maintenance import reindex
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.history import saved_as
from bookstore.index import IndexDatabase, queries
from bookstore.store import MemoryStore
from tests.support.postgres_server import PostgresServer

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
WORKSPACE = "ws"


def saved(path: str, text: str, minutes: int) -> HashedRecord:
    return HashedRecord.of(ArchiveRecord(path, text.encode(), T0 + timedelta(minutes=minutes)))


async def rows(index: IndexDatabase) -> list[tuple[str, int, str]]:
    async with index.reading() as session:
        found = await queries.workspace_versions(session, WORKSPACE)
    return [(row.path, row.number, saved_as(row)) for row in found]


@pytest.fixture
def another_index_url(index_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second empty index of the same kind, to rebuild into."""
    if index_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


async def test_renames_are_followed_and_replayed_on_each_index(
    index_url: str, another_index_url: str
) -> None:
    store, index = MemoryStore(), IndexDatabase(index_url)
    rebuilt = IndexDatabase(another_index_url)
    try:
        await index.migrate()
        await rebuilt.migrate()
        for minutes, (path, text) in enumerate(
            [("dir/a.ipynb", "a1"), ("dir/a.ipynb", "a2"), ("b.ipynb", "b1"), ("dab.ipynb", "x")]
        ):
            await archive_record(store, index, WORKSPACE, saved(path, text, minutes))
        late = saved("dir/a.ipynb", "a3", 10)  # saved before the renames, archived after
        await rename_history(index, WORKSPACE, "dir", "moved", T0 + timedelta(minutes=20))
        await rename_history(index, WORKSPACE, "b.ipynb", "c.ipynb", T0 + timedelta(minutes=21))
        await rename_history(index, WORKSPACE, "c.ipynb", "d.ipynb", T0 + timedelta(minutes=22))
        await archive_record(store, index, WORKSPACE, late)
        await archive_record(store, index, WORKSPACE, saved("dir/a.ipynb", "fresh", 30))
        assert await record_changes(store, index, WORKSPACE) == 3

        expected = [
            ("d.ipynb", 1, "b.ipynb"),
            ("dab.ipynb", 1, "dab.ipynb"),  # beside "dir", never under it
            ("dir/a.ipynb", 1, "dir/a.ipynb"),  # a new file under the freed name
            ("moved/a.ipynb", 1, "dir/a.ipynb"),
            ("moved/a.ipynb", 2, "dir/a.ipynb"),
            ("moved/a.ipynb", 3, "dir/a.ipynb"),
        ]
        assert await rows(index) == expected
        await reindex(store, rebuilt, WORKSPACE)
        assert await rows(rebuilt) == expected
    finally:
        await index.close()
        await rebuilt.close()
