"""The index on real databases: migrations, the view, numbering and locking.

Tests taking ``index`` run on a SQLite file and on a PostgreSQL server; those
taking ``sqlite_index`` check what is particular to SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from bookstore.index import IndexDatabase, queries

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def index(index_url: str) -> AsyncIterator[IndexDatabase]:
    database = IndexDatabase(index_url)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def sqlite_index(tmp_path: Path) -> AsyncIterator[IndexDatabase]:
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'index.sqlite'}")
    await database.migrate()
    yield database
    await database.close()


async def add(index: IndexDatabase, path: str, key: str, queued: datetime) -> int:
    async with index.writing() as session:
        row = await queries.add_version(
            session,
            path=path,
            version=await queries.reserve_version(session, path, key, "0" * 64) or 0,
            store_key=key,
            size=10,
            sha256="0" * 64,
            queued_at=queued,
            archived_at=queued + timedelta(milliseconds=250),
        )
        return row.version


async def test_migrations_create_the_schema_and_are_idempotent(index: IndexDatabase) -> None:
    await index.migrate()
    async with index.engine.connect() as connection:
        names = await connection.run_sync(
            lambda sync: {*inspect(sync).get_table_names(), *inspect(sync).get_view_names()}
        )
    assert {"versions", "archive_latency", "alembic_version"} <= names


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_index: IndexDatabase) -> None:
    async with sqlite_index.reading() as session:
        assert await session.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await session.scalar(text("PRAGMA busy_timeout")) == 30000


async def test_versions_count_per_path_and_a_replay_adds_nothing(index: IndexDatabase) -> None:
    assert await add(index, "a.ipynb", "k/a1", T0) == 1
    assert await add(index, "b.ipynb", "k/b1", T0) == 1
    assert await add(index, "a.ipynb", "k/a2", T0 + timedelta(seconds=1)) == 2
    assert await add(index, "a.ipynb", "k/a2", T0 + timedelta(seconds=1)) == 2
    async with index.reading() as session:
        latest = await queries.latest_version(session, "a.ipynb")
        assert latest is not None
        assert (latest.version, latest.store_key, latest.queued_at) == (
            2,
            "k/a2",
            T0 + timedelta(seconds=1),
        )
        assert await session.scalar(text("SELECT count(*) FROM versions")) == 3


async def test_archive_latency_view_reports_milliseconds(index: IndexDatabase) -> None:
    await add(index, "a.ipynb", "k/a1", T0)
    async with index.reading() as session:
        row = (await session.execute(text("SELECT * FROM archive_latency"))).one()
    assert row.path == "a.ipynb"
    assert row.version == 1
    assert row.latency_ms == pytest.approx(250, abs=1)


async def test_timestamps_are_stored_as_readable_utc(
    sqlite_index: IndexDatabase, tmp_path: Path
) -> None:
    local = T0.astimezone(timezone(timedelta(hours=-5)))
    await add(sqlite_index, "a.ipynb", "k/a1", local)
    with sqlite3.connect(tmp_path / "deep" / "index.sqlite") as raw:
        assert raw.execute("SELECT queued_at FROM versions").fetchone() == (
            "2026-11-25 12:00:00.000000",
        )


async def test_concurrent_writers_never_fail_and_number_versions_without_gaps(
    index_url: str,
) -> None:
    first, second = IndexDatabase(index_url), IndexDatabase(index_url)
    await first.migrate()
    await second.migrate()

    async def writer(database: IndexDatabase, name: str) -> None:
        for n in range(50):
            await add(database, "shared.ipynb", f"k/{name}/{n}", T0 + timedelta(seconds=n))

    try:
        await asyncio.gather(writer(first, "one"), writer(second, "two"))
        async with first.reading() as session:
            versions = await session.scalars(text("SELECT version FROM versions ORDER BY version"))
            assert list(versions) == list(range(1, 101))
    finally:
        await first.close()
        await second.close()


async def test_listing_one_paths_versions_uses_the_path_version_index(
    sqlite_index: IndexDatabase,
) -> None:
    index = sqlite_index
    for n in range(20):
        await add(index, f"p{n % 4}.ipynb", f"k/{n}", T0 + timedelta(seconds=n))
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(index.engine.sync_engine, "before_cursor_execute", capture)
    async with index.reading() as session:
        assert len(await queries.list_versions(session, "p1.ipynb", limit=3, newest=True)) == 3
        [(statement, parameters)] = statements
        connection = await session.connection()
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = " ".join(row.detail for row in plan)
    assert "USING INDEX sqlite_autoindex_versions" in details, details  # (path, version)
    assert "SCAN versions" not in details.replace("SCAN versions USING", ""), details


def test_the_schema_revision_constant_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bookstore.index.database import SCHEMA_REVISION, migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION
