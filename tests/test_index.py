"""The index on real databases: migrations, the view, numbering and locking.

Tests taking ``index`` run on a SQLite file and on a PostgreSQL server; those
taking ``sqlite_index`` check what is particular to SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from bookstore.index import IndexDatabase, queries
from bookstore.index.database import SCHEMA_REVISION
from tests.support.inprocess import Run

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
WS = "workspace"


@pytest.fixture
def index(index_url: str, run: Run[Any]) -> Iterator[IndexDatabase]:
    database = IndexDatabase(index_url)
    run(database.migrate())
    yield database
    run(database.close())


@pytest.fixture
def sqlite_index(tmp_path: Path, run: Run[Any]) -> Iterator[IndexDatabase]:
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'index.sqlite'}")
    run(database.migrate())
    yield database
    run(database.close())


async def add(
    index: IndexDatabase, path: str, key: str, queued: datetime, workspace: str = WS
) -> int:
    async with index.writing() as session:
        await queries.reserve_version(session, workspace, path, key, "0" * 64, queued)
        row = await queries.add_version(
            session,
            workspace=workspace,
            store_key=key,
            size=10,
            sha256="0" * 64,
            queued_at=queued,
            archived_at=queued + timedelta(milliseconds=250),
        )
        return row.number


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
        latest = await queries.latest_version(session, WS, "a.ipynb")
        assert latest is not None
        assert (latest.number, latest.store_key, latest.queued_at) == (
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
        assert len(await queries.list_versions(session, WS, "p1.ipynb", limit=3, newest=True)) == 3
        [(statement, parameters)] = statements
        connection = await session.connection()
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = " ".join(row.detail for row in plan)
    assert "USING INDEX sqlite_autoindex_versions" in details, details  # (workspace, path, …)
    assert "SCAN versions" not in details.replace("SCAN versions USING", ""), details


def test_the_schema_revision_constant_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bookstore.index.database import SCHEMA_REVISION, migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


async def test_workspaces_number_and_list_their_versions_apart(index: IndexDatabase) -> None:
    assert await add(index, "a.ipynb", "u/alice/a1", T0, workspace="u/alice") == 1
    assert await add(index, "a.ipynb", "u/bob/a1", T0, workspace="u/bob") == 1
    assert await add(index, "a.ipynb", "u/alice/a2", T0 + timedelta(1), workspace="u/alice") == 2
    async with index.reading() as session:
        alice = await queries.list_versions(session, "u/alice", "a.ipynb")
        bob = await queries.list_versions(session, "u/bob", "a.ipynb")
        paths = await queries.list_paths(session, "u/bob")
        stats = await queries.archive_stats(session, "u/alice")
    assert [row.store_key for row in alice] == ["u/alice/a1", "u/alice/a2"]
    assert [row.store_key for row in bob] == ["u/bob/a1"]
    assert [(p.path, p.versions) for p in paths] == [("a.ipynb", 1)]
    assert [(s["group"], s["versions"]) for s in stats] == [("a.ipynb", 2)]


async def test_a_folder_keeps_only_its_own_paths_matched_exactly(index: IndexDatabase) -> None:
    """``under`` compares exactly: SQLite's LIKE would take ``Home/`` for ``home/`` and
    ``_`` for any character."""
    for number, path in enumerate(["home/a_b/x.ipynb", "Home/a_b/x.ipynb", "home/axb/y.ipynb"]):
        await add(index, path, f"files/{path}/@1", T0 + timedelta(number), workspace="files")
    async with index.reading() as session:
        paths = await queries.list_paths(session, "files", under="home/a_b")
        stats = await queries.archive_stats(session, "files", under="home/a_b")
    assert [p.path for p in paths] == ["home/a_b/x.ipynb"]
    assert [s["group"] for s in stats] == ["home/a_b/x.ipynb"]


async def test_the_workspace_migration_takes_each_rows_workspace_from_its_key(
    tmp_path: Path,
) -> None:
    from alembic import command
    from alembic.config import Config

    from bookstore.index.database import migrations_dir

    file = tmp_path / "old.sqlite"
    database = IndexDatabase(f"sqlite+aiosqlite:///{file}")

    def alembic(connection: Any) -> Config:
        config = Config()
        config.set_main_option("script_location", str(migrations_dir()))
        config.attributes["connection"] = connection
        return config

    def upgrade(connection: Any, revision: str) -> None:
        command.upgrade(alembic(connection), revision)

    def downgrade(connection: Any, revision: str) -> None:
        command.downgrade(alembic(connection), revision)

    old_rows = [
        ("a@b%.ipynb", 1, "team/ws/a%40b%25.ipynb/@20261125T120000.000000Z.ipynb"),
        ("ws/x.ipynb", 1, "ws/ws/x.ipynb/@20261125T120000.000000Z.ipynb"),
        ("top.ipynb", 1, "top.ipynb/@20261125T120000.000000Z.ipynb"),
    ]
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(upgrade, "0003")
            for path, version, key in old_rows:
                await connection.execute(
                    text(
                        "INSERT INTO versions (path, version, store_key, size, sha256, "
                        "queued_at, archived_at, pinned) VALUES "
                        "(:path, :version, :key, 1, '', '2026-11-25 12:00:00', "
                        "'2026-11-25 12:00:01', 0)"
                    ),
                    {"path": path, "version": version, "key": key},
                )
            await connection.execute(
                text(
                    "INSERT INTO pruned_objects (store_key, pruned_at) VALUES "
                    "('team/ws/gone.ipynb/@20261125T120000.000000Z.ipynb', '2026-11-25')"
                )
            )
        await database.migrate()
        async with database.reading() as session:
            rows = await session.execute(text("SELECT path, workspace FROM versions ORDER BY id"))
            view = await session.scalar(text("SELECT count(workspace) FROM archive_latency"))
            pruned = await session.scalar(text("SELECT workspace FROM pruned_objects"))
        assert list(rows) == [("a@b%.ipynb", "team/ws"), ("ws/x.ipynb", "ws"), ("top.ipynb", "")]
        assert view == 3
        assert pruned == "team/ws"

        async with database.engine.begin() as connection:
            with pytest.raises(RuntimeError, match="several workspaces"):
                await connection.run_sync(downgrade, "0003")
    finally:
        await database.close()


async def test_servers_starting_together_migrate_a_new_index_once(index_url: str) -> None:
    databases = [IndexDatabase(index_url) for _ in range(4)]
    try:
        await asyncio.gather(*(database.migrate() for database in databases))
        async with databases[0].reading() as session:
            revisions = list(await session.scalars(text("SELECT version_num FROM alembic_version")))
        assert revisions == [SCHEMA_REVISION]
    finally:
        for database in databases:
            await database.close()


async def test_a_durable_write_is_synced_at_commit_and_others_are_not(
    sqlite_index: IndexDatabase,
) -> None:
    """A power cut may take SQLite's last NORMAL commits with it (WAL), never a FULL one:
    the archiver's index row is committed durably before its outbox entry goes."""
    levels = {}
    for durable in (False, True, False):
        async with sqlite_index.writing(durable=durable) as session:
            levels[durable] = await session.scalar(text("PRAGMA synchronous"))
    async with sqlite_index.reading() as session:
        reading = await session.scalar(text("PRAGMA synchronous"))
    assert levels == {False: 1, True: 2}  # NORMAL, FULL
    assert reading == 1
