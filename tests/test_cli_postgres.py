"""The command line on an index in PostgreSQL, filled by a real server archiving to it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bookstore.index import IndexDatabase
from jupyter_process import JupyterServer, notebook
from postgres_server import PostgresServer

CLI = str(Path(sys.executable).parent / "bookstore-history")


class PostgresArchive:
    """A server's root and store, with its index in a PostgreSQL database."""

    def __init__(self, server: JupyterServer, index_url: str) -> None:
        self.server = server
        self.index_url = index_url

    def cli(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKSTORE_")}
        env.update(
            JUPYTER_DATA_DIR=str(self.server.data_dir),
            JUPYTER_CONFIG_DIR=str(self.server.config_dir),
            BOOKSTORE_INDEX_URL=self.index_url,
            TZ="UTC",
        )
        command = [CLI, "--root-dir", str(self.server.root), *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
        return result

    def versions(self) -> list[dict[str, object]]:
        listed: list[dict[str, object]] = json.loads(self.cli("list", "a.ipynb", "--json").stdout)
        return listed


async def lose_every_row(index_url: str) -> None:
    index = IndexDatabase(index_url)
    async with index.writing() as session:
        await session.execute(text("DELETE FROM versions"))
    await index.close()


@pytest.fixture
def archive(tmp_path: Path, postgres: PostgresServer) -> PostgresArchive:
    index_url = postgres.create_database()
    with JupyterServer(tmp_path, env={"BOOKSTORE_INDEX_URL": index_url}) as server:
        for n in range(4):
            server.save("a.ipynb", notebook(f"version {n + 1}", cells=n + 1))
        server.save("b.ipynb", notebook("b"))
        server.wait_archived()
    return PostgresArchive(server, index_url)


def test_list_show_diff_and_stats_read_the_postgresql_index(archive: PostgresArchive) -> None:
    versions = archive.versions()
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    shown = archive.cli("show", "a.ipynb", "2").stdout
    assert "version 2" in shown
    summary = archive.cli("diff", "a.ipynb", "1", "4").stdout.splitlines()[0]
    assert summary == "3 cells added, 1 changed"
    stats = json.loads(archive.cli("stats", "--json").stdout)
    assert {group["group"]: group["versions"] for group in stats} == {"a.ipynb": 4, "b.ipynb": 1}


def test_sql_is_read_only_on_postgresql(archive: PostgresArchive) -> None:
    rows = json.loads(archive.cli("sql", "SELECT count(*) AS n FROM versions", "--json").stdout)
    assert rows == [{"n": 5}]
    refused = archive.cli("sql", "DELETE FROM versions", expect=5)
    assert "read-only transaction" in refused.stderr
    assert len(archive.versions()) == 4


def test_restore_reindex_verify_and_prune_on_postgresql(archive: PostgresArchive) -> None:
    archive.cli("restore", "a.ipynb", "1")
    assert "version 1" in (archive.server.root / "a.ipynb").read_text()
    before = {(v["version"], v["sha256"], v["queued_at"]) for v in archive.versions()}

    asyncio.run(lose_every_row(archive.index_url))
    archive.cli("reindex")
    assert {(v["version"], v["sha256"], v["queued_at"]) for v in archive.versions()} == before
    archive.cli("verify")

    archive.cli("pin", "a.ipynb", "1")
    archive.cli("prune", "--keep-last", "1")
    assert [v["version"] for v in archive.versions()] == [1, 4]
    archive.cli("verify")
