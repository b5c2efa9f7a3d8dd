"""Group commit: index writes queued together share one transaction, and one that
fails fails alone. On a real SQLite index file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.index import IndexDatabase
from tests.support.inprocess import Run


@pytest.fixture
def index(tmp_path: Path, run: Run[Any]) -> Iterator[IndexDatabase]:
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")

    async def prepare() -> None:
        await database.migrate()
        async with database.writing() as session:
            await session.execute(text("CREATE TABLE seen (n INTEGER UNIQUE)"))

    run(prepare())
    yield database
    run(database.close())


def insert(n: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def work(session: AsyncSession) -> int:
        await session.execute(text("INSERT INTO seen (n) VALUES (:n)"), {"n": n})
        return n

    return work


async def seen(index: IndexDatabase) -> list[int]:
    async with index.reading() as session:
        return list((await session.execute(text("SELECT n FROM seen ORDER BY n"))).scalars())


async def test_writes_queued_together_share_a_transaction_and_all_commit(
    index: IndexDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions = 0
    writing = index.writing

    def counted(*, durable: bool) -> AbstractAsyncContextManager[AsyncSession]:
        nonlocal transactions
        transactions += 1
        return writing(durable=durable)

    monkeypatch.setattr(index._batcher, "_transaction", counted)
    results = await asyncio.gather(*(index.write_together(insert(n)) for n in range(20)))

    assert results == list(range(20))
    assert transactions <= 2  # queued before the first began, or behind it: together
    assert await seen(index) == list(range(20))


async def test_a_write_that_fails_fails_alone(index: IndexDatabase) -> None:
    async with index.writing() as session:
        await session.execute(text("INSERT INTO seen (n) VALUES (7)"))
    outcomes = await asyncio.gather(
        *(index.write_together(insert(n)) for n in (5, 6, 7, 8, 9)), return_exceptions=True
    )

    assert [type(o).__name__ for o in outcomes] == ["int", "int", "IntegrityError", "int", "int"]
    assert await seen(index) == [5, 6, 7, 8, 9]
