"""The index database: engine set-up, migrations, and read/write transactions.

SQLite gets WAL (readers never wait for the archiver), a busy timeout, and
``BEGIN IMMEDIATE`` for write transactions, so two writers queue for the lock up
front instead of failing with "database is locked" halfway through.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

from bookstore.index.batching import WriteBatcher

__all__ = ["IndexDatabase", "migrations_dir"]

T = TypeVar("T")

SCHEMA_REVISION = "0006"
"""The newest migration; when the database is there already, Alembic is not even imported."""
_WRITE_OPTION = "bookstore_write"
"""Execution option of write transactions: ``"write"``, or ``"durable"`` for those that
must survive a power cut the moment they commit."""
_MIGRATION_LOCK = 0x626F6F6B  # "book": the PostgreSQL advisory lock migrations take
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WAL_ATTEMPTS = 100


def migrations_dir() -> Path:
    """The Alembic scripts: packaged inside the wheel, or top-level in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"bookstore's migrations are missing from {package}")


def _refuse_attach(action: int, *_: Any) -> int:
    """SQLite authorizer for read-only connections: ATTACH could create or write other files."""
    return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_ATTACH else sqlite3.SQLITE_OK


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode, which the file remembers, so only a new file changes.

    Runs before the busy timeout is set, so a lock held by another server that
    is opening the same new file fails at once, and is tried again shortly.
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            await_only(asyncio.sleep(random.uniform(0.01, 0.05)))


def _configure_sqlite(engine: Any, read_only: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
            await_only(dbapi_connection.driver_connection.set_authorizer(_refuse_attach))
        else:
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(_WRITE_OPTION)
        if writes:
            # WAL with NORMAL may lose the last commits in a power cut; FULL syncs the
            # WAL at commit, at the cost of one fsync, for the commits that need it.
            durable = "FULL" if writes == "durable" else "NORMAL"
            connection.exec_driver_sql(f"PRAGMA synchronous={durable}")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class IndexDatabase:
    """One engine per process; sessions are short and owned by the caller."""

    def __init__(self, url: str | URL, *, create: bool = True, read_only: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.sqlite_file = (
            Path(self.url.database)
            if self.is_sqlite and self.url.database and self.url.database != ":memory:"
            else None
        )
        if create and self.sqlite_file is not None:
            self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(**_engine_options(self.url, read_only))
        if self.is_sqlite:
            _configure_sqlite(self.engine, read_only)
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # One writer at a time in this process: SQLite's busy handler would make
        # the others sleep and poll, so they queue here instead.
        self._write_turn = asyncio.Lock()
        self._write_sessions = {
            durable: async_sessionmaker(
                self.engine.execution_options(**{_WRITE_OPTION: mode}), expire_on_commit=False
            )
            for durable, mode in ((False, "write"), (True, "durable"))
        }
        self._batcher = WriteBatcher(self.writing)

    @property
    def description(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    async def exists(self) -> bool:
        """Whether the database is there to be opened (a server database always is)."""
        return self.sqlite_file is None or self.sqlite_file.is_file()

    async def check_integrity(self) -> None:
        """Raise ``DatabaseError`` if SQLite finds the file damaged (a quick check)."""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as connection:
            result = (await connection.exec_driver_sql("PRAGMA quick_check")).scalar()
        if result != "ok":
            raise DatabaseError("PRAGMA quick_check", None, Exception(str(result)))

    async def move_aside(self) -> Path:
        """Rename a damaged SQLite file (and its WAL) out of the way; return the new name."""
        assert self.sqlite_file is not None, "only a SQLite index is a file to move"
        await self.engine.dispose()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        damaged = self.sqlite_file.with_name(f"{self.sqlite_file.name}.damaged-{stamp}")
        await asyncio.to_thread(_rename_with_wal, self.sqlite_file, damaged)
        return damaged

    async def migrate(self) -> None:
        """Bring the schema to the newest migration; safe to run from many processes at once."""
        async with self.engine.connect() as connection:
            if await connection.run_sync(_revision) == SCHEMA_REVISION:
                return
        async with self.engine.execution_options(**{_WRITE_OPTION: "write"}).begin() as connection:
            if not self.is_sqlite:
                # Servers of many users start at once; one migrates, the others wait.
                await connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            if await connection.run_sync(_revision) != SCHEMA_REVISION:
                await connection.run_sync(_upgrade_to_head)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read transaction: never blocks the archiver's writes."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def write_together(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, durable: bool = False
    ) -> T:
        """``work`` in a write transaction it may share with the writes queued meanwhile
        (group commit, see ``batching``); its result once that transaction is committed.

        ``work`` must be a few statements that read and write only what they name:
        the writes sharing a transaction see each other's changes, in queue order.
        """
        return await self._batcher.run(work, durable=durable)

    @asynccontextmanager
    async def writing(self, *, durable: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction that holds the write lock from its first statement.

        ``durable``: on SQLite the commit is synced to disk before it returns (on
        PostgreSQL every commit is); use it before deleting what the commit replaces.
        """
        sessions = self._write_sessions[durable]
        async with self._write_turn, sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self._batcher.finish()
        await self.engine.dispose()


def _rename_with_wal(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            os.replace(f"{source}{suffix}", f"{target}{suffix}")


def _engine_options(url: URL, read_only: bool) -> dict[str, Any]:
    """How to connect: few connections to a shared server, and, when asked, a
    connection that itself refuses every write."""
    if url.get_backend_name() == "postgresql":
        # Every user's server connects to one database: keep one connection at rest,
        # a few more in bursts, and test it before use (servers restart, proxies cut).
        options = {"url": url, "pool_size": 1, "max_overflow": 4, "pool_pre_ping": True}
        if read_only:
            settings = {"default_transaction_read_only": "on"}
            options["connect_args"] = {"server_settings": settings}
        return options
    if not read_only:
        return {"url": url}
    if url.get_backend_name() == "sqlite" and url.database:
        return {
            "url": url.set(database=f"file:{url.database}", query={"mode": "ro", "uri": "true"})
        }
    raise ValueError(f"read-only connections to {url.get_backend_name()} are not supported")


def _revision(connection: Connection) -> str | None:
    """The schema revision the database is at, without Alembic (``None`` before the first)."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
