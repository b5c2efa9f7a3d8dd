"""A missing bucket or an unreachable PostgreSQL index delays archiving, never a save.

Each cause is reported in words in ``GET /api/bookstore``, and everything saved
meanwhile is archived once the cause is gone, without restarting the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bookstore.index import IndexDatabase
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.moto_server import MotoServer, s3_env
from tests.support.postgres_server import PostgresServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

SAVES = 3


def last_error(server: JupyterServer) -> str:
    return str(server.status()["archive"]["last_error"] or "")


def save_versions(server: JupyterServer) -> None:
    """Saves that must succeed whatever is down."""
    for n in range(SAVES):
        server.save("kept.ipynb", notebook(f"saved during the outage {n}"))


def test_a_missing_bucket_is_reported_and_archived_into_once_created(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    bucket = f"created-later-{uuid.uuid4().hex[:12]}"
    env = {**s3_env(bucket, moto_server.endpoint_url), "BOOKSTORE_RETRY_MAX_DELAY": "1"}
    with JupyterServer(tmp_path, env=env) as server:
        save_versions(server)
        wait_for(lambda: "does not exist" in last_error(server), what="the error to be reported")
        assert f"bucket '{bucket}' does not exist" in last_error(server)
        assert server.status()["archive"]["backlog"] == SAVES

        moto_server.make_bucket(bucket)
        status = server.wait_archived(timeout=60)
    assert status["archive"]["last_error"] is None
    assert len(moto_server.objects(bucket)) == SAVES


async def indexed_versions(index_url: str) -> list[int]:
    index = IndexDatabase(index_url)
    try:
        async with index.reading() as session:
            found = await session.scalars(text("SELECT version FROM versions ORDER BY version"))
            return list(found)
    finally:
        await index.close()


@pytest.fixture
def unreachable_postgres(postgres: PostgresServer) -> Iterator[tuple[TcpProxy, str]]:
    """A new database behind a proxy that refuses connections until told otherwise."""
    url = postgres.create_database()
    proxy = TcpProxy(postgres.port)
    proxy.set_mode("refuse")
    yield proxy, url.replace(f":{postgres.port}/", f":{proxy.port}/")
    proxy.close()


def test_an_unreachable_postgresql_index_is_reported_and_filled_once_it_answers(
    tmp_path: Path, unreachable_postgres: tuple[TcpProxy, str]
) -> None:
    proxy, index_url = unreachable_postgres
    env = {"BOOKSTORE_INDEX_URL": index_url, "BOOKSTORE_RETRY_MAX_DELAY": "1"}
    with JupyterServer(tmp_path, env=env) as server:
        save_versions(server)
        wait_for(lambda: last_error(server), what="the error to be reported")
        assert "index" in last_error(server)
        assert server.status()["archive"]["ready"] is False
        assert server.status()["archive"]["backlog"] == SAVES

        proxy.set_mode("forward")
        status = server.wait_archived(timeout=60)
    assert status["archive"]["last_error"] is None
    assert asyncio.run(indexed_versions(index_url)) == list(range(1, SAVES + 1))
