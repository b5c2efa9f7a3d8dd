"""Shared fixtures: a real moto S3 server, fresh buckets, and a store per backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bookstore.store import LocalStore, S3Store, Store
from moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer
from postgres_server import PostgresServer
from tcp_proxy import TcpProxy

# -- S3 (moto) ---------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session; tests that stop S3 start their own."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket, so tests never see each other's objects."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    moto_server.make_bucket(name)
    return name


def _s3_store(server: MotoServer, bucket: str) -> S3Store:
    """An ``S3Store`` on ``bucket`` of the moto ``server``, with moto's dummy credentials."""
    return S3Store(
        bucket,
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture
async def s3_store(moto_server: MotoServer, s3_bucket: str) -> AsyncIterator[S3Store]:
    """An ``S3Store`` on a fresh bucket, closed afterwards."""
    store = _s3_store(moto_server, s3_bucket)
    try:
        yield store
    finally:
        await store.close()


# -- stores --------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each backend in turn, empty, closed afterwards: contract tests run on both."""
    backend: Store
    if request.param == "local":
        backend = LocalStore(tmp_path / "store")
    else:
        server: MotoServer = request.getfixturevalue("moto_server")
        backend = _s3_store(server, request.getfixturevalue("s3_bucket"))
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def s3_proxy(moto_server: MotoServer) -> Iterator[TcpProxy]:
    """A proxy in front of the moto server, so a test can slow it, hang it or cut it off."""
    proxy = TcpProxy(moto_server.port)
    yield proxy
    proxy.close()


# -- index databases -------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; each test gets its own database."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty index database of each kind the index runs on."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'index' / 'index.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
