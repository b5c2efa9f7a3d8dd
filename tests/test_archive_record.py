"""archive_record on a real local store and SQLite index: replays, duplicates, collisions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bookstore.archiving.archiver import archive_record
from bookstore.archiving.version_objects import read_version
from bookstore.core import keys
from bookstore.core.body import Body
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase, queries
from bookstore.store.local import LocalStore
from tests.support.inprocess import Run

T0 = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture
def parts(tmp_path: Path, run: Run[Any]) -> Iterator[tuple[LocalStore, IndexDatabase]]:
    store = LocalStore(tmp_path / "store")
    index = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    run(index.migrate())
    yield store, index
    run(index.close())


def record(content: bytes, when: datetime = T0) -> HashedRecord:
    return HashedRecord.of(ArchiveRecord("a.ipynb", content, when))


async def test_a_replayed_record_is_stored_and_indexed_once(
    parts: tuple[LocalStore, IndexDatabase],
) -> None:
    store, index = parts
    first = await archive_record(store, index, "ws", record(b"one"))
    await index.close()  # as if the server died after indexing; the outbox entry remains
    again = await archive_record(store, index, "ws", record(b"one"))
    assert first is not None
    assert again is None
    assert [info.key async for info in store.list("ws/")] == [first.store_key]


async def test_a_crash_between_store_and_index_is_indexed_once_on_replay(
    parts: tuple[LocalStore, IndexDatabase],
) -> None:
    store, index = parts
    hashed = record(b"stored, not indexed")
    key = keys.version_key("ws", "a.ipynb", T0)
    await store.put(key, hashed.body, keys.version_metadata(hashed, 1))
    row = await archive_record(store, index, "ws", hashed)
    assert row is not None
    assert (row.number, row.store_key) == (1, key)
    async with index.reading() as session:
        assert await session.scalar(text("SELECT count(*) FROM versions")) == 1


async def test_two_servers_saving_one_path_in_the_same_microsecond_both_keep_their_save(
    parts: tuple[LocalStore, IndexDatabase],
) -> None:
    store, index = parts
    ours = await archive_record(store, index, "ws", record(b"ours"))
    theirs = await archive_record(store, index, "ws", record(b"theirs"))
    assert ours is not None
    assert theirs is not None
    assert (ours.number, theirs.number) == (1, 2)
    assert theirs.store_key > ours.store_key
    assert await read_version(store, "ws", theirs.store_key) == b"theirs"


class NumberingMeanwhile(LocalStore):
    """A store whose every upload lets another server reserve the path's next number first,
    as a server sharing the index does while this one uploads."""

    def __init__(self, root: Path, index: IndexDatabase) -> None:
        super().__init__(root)
        self.index = index
        self.others = 0

    async def put(self, key: str, data: Body, metadata: Mapping[str, str], **kw: Any) -> None:
        self.others += 1
        other_key = keys.version_key("ws", "a.ipynb", T0 + timedelta(days=self.others))
        async with self.index.writing() as session:
            await queries.reserve_version(session, "ws", "a.ipynb", other_key, "f" * 64, T0)
        await super().put(key, data, metadata, **kw)


async def test_a_save_colliding_with_an_indexed_key_is_numbered_without_a_gap(
    parts: tuple[LocalStore, IndexDatabase],
) -> None:
    store, index = parts
    ours = await archive_record(store, index, "ws", record(b"ours"))
    assert ours is not None
    # Another server's save of the same path in the same microsecond, archived later.
    meanwhile = NumberingMeanwhile(store.root, index)
    theirs = await archive_record(meanwhile, index, "ws", record(b"theirs"))
    assert theirs is not None
    assert (ours.number, theirs.number) == (1, 2)
    assert theirs.store_key != ours.store_key


async def test_two_servers_racing_on_the_same_paths_and_microseconds_number_without_gaps(
    index_url: str, tmp_path: Path
) -> None:
    """Two servers (two engines on one database, one store) save the same paths at the
    same microseconds, each save different: every save is kept, numbered 1..n per path."""
    store = LocalStore(tmp_path / "store")
    servers = [IndexDatabase(index_url), IndexDatabase(index_url)]
    await servers[0].migrate()
    paths = [f"shared-{n}.ipynb" for n in range(3)]

    async def saves(server: int) -> None:
        for n in range(40):
            path = paths[n % len(paths)]
            content = f"server {server} save {n}".encode()
            when = T0 + timedelta(milliseconds=n)  # the other server's save of it too
            record = HashedRecord.of(ArchiveRecord(path, content, when))
            assert await archive_record(store, servers[server], "ws", record) is not None

    try:
        await asyncio.gather(saves(0), saves(1))
        async with servers[0].reading() as session:
            numbers = {path: await queries.list_versions(session, "ws", path) for path in paths}
    finally:
        for server in servers:
            await server.close()

    for path, rows in numbers.items():
        assert [row.number for row in rows] == list(range(1, len(rows) + 1)), path
    assert sum(len(rows) for rows in numbers.values()) == 80
