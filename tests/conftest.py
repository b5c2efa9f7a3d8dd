"""Shared fixtures: real moto S3 and PostgreSQL servers, stores per backend, and a Jupyter
server with bookstore inside the test process (jupyter_server's pytest plugin).

Async tests and fixtures run on the plugin's event loop (``jp_asyncio_loop``), the
loop the in-process server serves on; sync fixtures that must await use it too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp

from bookstore.store import LocalStore, MemoryStore, S3Store, Store
from tests.support.inprocess import LiveServer, Run
from tests.support.moto_server import MotoServer
from tests.support.postgres_server import PostgresServer
from tests.support.tcp_proxy import TcpProxy

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL server is a ``postgres`` test, however it asks."""
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def run(jp_asyncio_loop: asyncio.AbstractEventLoop) -> Run[Any]:
    """Run a coroutine to completion on the test's event loop (for sync fixtures)."""
    return jp_asyncio_loop.run_until_complete


# -- the in-process Jupyter server ---------------------------------------------------


@pytest.fixture
def bookstore_config() -> dict[str, Any]:
    """``c.BookstoreSettings`` for the in-process server; tests override it to configure."""
    return {}


@pytest.fixture
def jp_server_config(bookstore_config: dict[str, Any]) -> dict[str, Any]:
    """The in-process server: bookstore on, the plugin's default terminals off."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"bookstore": True, "jupyter_server_terminals": False}
        },
        # Fast retries; a short wait at shutdown, which the plugin runs after the
        # test's own fixtures are gone (an S3 proxy, say).
        "BookstoreSettings": {
            "retry_initial_delay": 0.05,
            "retry_max_delay": 0.2,
            "shutdown_timeout": 1.0,
        }
        | bookstore_config,
    }


@pytest.fixture
def jp_server_cleanup(jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The plugin's cleanup, for tests that made a server only (the plugin's makes one)."""
    yield
    if ServerApp.initialized():
        jp_asyncio_loop.run_until_complete(ServerApp.instance()._cleanup())
        ServerApp.clear_instance()


@pytest.fixture
def live(jp_serverapp: ServerApp, http_server: Any, run: Run[Any]) -> LiveServer:
    """The in-process server, listening, with bookstore's archiving started as at start-up."""
    run(jp_serverapp.extension_manager.start_all_extensions())
    return LiveServer(jp_serverapp)


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


@pytest.fixture
def s3_store(moto_server: MotoServer, s3_bucket: str, run: Run[Any]) -> Iterator[S3Store]:
    """An ``S3Store`` on a fresh bucket, closed afterwards."""
    store = moto_server.store(s3_bucket)
    yield store
    run(store.close())


@pytest.fixture
def s3_proxy(moto_server: MotoServer) -> Iterator[TcpProxy]:
    """A proxy in front of the moto server, so a test can slow it, hang it or cut it off."""
    proxy = TcpProxy(moto_server.port)
    yield proxy
    proxy.close()


# -- stores --------------------------------------------------------------------


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, run: Run[Any]) -> Iterator[Store]:
    """Each backend in turn, empty, closed afterwards: contract tests run on all of them."""
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "local":
        backend = LocalStore(tmp_path / "store")
    else:
        server: MotoServer = request.getfixturevalue("moto_server")
        backend = server.store(request.getfixturevalue("s3_bucket"))
    yield backend
    run(backend.close())


# -- index databases -------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; each test gets its own database."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty index database of each kind the index runs on."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'index' / 'index.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
