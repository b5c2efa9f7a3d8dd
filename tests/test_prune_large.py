"""Prunes of deep histories: batched, streamed, on SQLite and PostgreSQL.

A prune of more versions than a database takes parameters in one statement
used to fail outright: asyncpg binds at most 32,767, SQLite at most 32,766 (or
250,000 as Debian builds it; "too many SQL variables"). Prune now removes
versions a batch at a time and reads rows as a stream. Memory and time for
1,000,000 versions: ``python -m benchmarks.prune_large``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bookstore.archiving.maintenance import plan_prune, prune
from bookstore.core.retention import RetentionPolicy
from bookstore.index import IndexDatabase, PrunedObject, Version
from bookstore.store import MemoryStore
from tests.support.bulk_index import WORKSPACE, fill_index, path_name
from tests.support.postgres_server import PostgresServer

VERSIONS, PATHS = 33_000, 3
"""More versions than one statement may bind on either database."""


async def remaining(index_url: str) -> tuple[dict[str, list[int]], int]:
    """The version numbers left per path, and the pruned objects still listed."""
    database = IndexDatabase(index_url)
    try:
        async with database.reading() as session:
            rows = await session.execute(select(Version.path, Version.number))
            left: dict[str, list[int]] = {}
            for path, number in rows:
                left.setdefault(path, []).append(number)
            listed = await session.scalar(select(func.count()).select_from(PrunedObject))
        return {path: sorted(numbers) for path, numbers in left.items()}, listed or 0
    finally:
        await database.close()


def newest_two() -> dict[str, list[int]]:
    per_path = VERSIONS // PATHS
    return {path_name(p): [per_path - 1, per_path] for p in range(PATHS)}


async def test_a_prune_of_more_versions_than_a_statement_binds_succeeds(index_url: str) -> None:
    await fill_index(index_url, VERSIONS, PATHS)
    index = IndexDatabase(index_url)
    try:
        plans = plan_prune(index, WORKSPACE, RetentionPolicy(keep_last=2))
        removed = await prune(MemoryStore(), index, WORKSPACE, plans)
    finally:
        await index.close()

    assert removed == VERSIONS - 2 * PATHS
    assert await remaining(index_url) == (newest_two(), 0)


@pytest.mark.e2e
def test_the_command_line_prunes_a_deep_history_on_postgresql(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    index_url = postgres.create_database()
    asyncio.run(fill_index(index_url, VERSIONS, PATHS))
    script = Path(sys.executable).parent / "bookstore-history"
    options = ["--index-url", index_url, "--local-store-dir", str(tmp_path / "store")]
    options += ["--workspace-prefix", WORKSPACE]
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    finished = subprocess.run(
        [script, *options, "prune", "--keep-last", "2", "--json"],
        capture_output=True,
        env=environment,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr.decode()
    report = json.loads(finished.stdout)
    assert len(report["decisions"]) == VERSIONS
    assert sum(not d["keep"] for d in report["decisions"]) == VERSIONS - 2 * PATHS
    assert asyncio.run(remaining(index_url)) == (newest_two(), 0)
