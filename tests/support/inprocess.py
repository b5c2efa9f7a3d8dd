"""A Jupyter server with bookstore inside the test process, driven over real HTTP.

jupyter_server's pytest plugin (``jp_serverapp``) builds the server on the test's
event loop and serves it on a port; ``LiveServer`` gives tests the calls they make
most: send a request as written, save, wait for the archive, read the index.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from json import dumps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jupyter_server.serverapp import ServerApp
from tornado.httpclient import AsyncHTTPClient

from bookstore.index import Version
from bookstore.server.services import SETTINGS_KEY, BookstoreServices
from tests.support.archives import local_store_objects, sqlite_file, sqlite_index_rows

__all__ = ["LiveServer", "Response", "Run", "until"]

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
"""The ``run`` fixture: a coroutine run to completion on the test's event loop."""


async def until(
    condition: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = ""
) -> Any:
    """Await ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.01)


class Response:
    """An HTTP answer, whatever its status, read as ``requests`` reads one."""

    def __init__(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code = code
        self.content = body
        self.headers = headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class LiveServer:
    """The in-process server: HTTP on its port, bookstore's services, and its files."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app

    @property
    def root(self) -> Path:
        return Path(self.app.root_dir)

    @property
    def services(self) -> BookstoreServices:
        services: BookstoreServices = self.app.web_app.settings[SETTINGS_KEY]
        return services

    @property
    def contents_manager(self) -> Any:
        return self.app.contents_manager

    # -- HTTP -----------------------------------------------------------------------

    async def api(
        self,
        method: str,
        url: str,
        json: Any = None,
        *,
        data: str | None = None,
        anonymous: bool = False,
        timeout: float = 60.0,
    ) -> Response:
        """``method`` on ``url`` exactly as written (below the base URL, URL-encoded, with
        any query), any status returned; with the server's token unless ``anonymous``.

        Nothing is encoded again, so ``%2e%2e`` or ``%00`` reach the server as sent.
        """
        body = data if json is None else dumps(json)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = ""
        headers = (
            {} if anonymous else {"Authorization": f"token {self.app.identity_provider.token}"}
        )
        if json is not None:
            headers["Content-Type"] = "application/json"
        answer = await AsyncHTTPClient().fetch(
            f"http://localhost:{self.app.port}{self.app.base_url}{url.lstrip('/')}",
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            request_timeout=timeout,
        )
        return Response(answer.code, answer.body or b"", dict(answer.headers))

    async def save(self, path: str, content: Any, kind: str = "notebook") -> dict[str, Any]:
        """Save through the contents API as JupyterLab does; fail the test if the save fails."""
        body = {
            "type": kind,
            "format": "json" if kind == "notebook" else "text",
            "content": content,
        }
        answer = await self.api("PUT", f"api/contents/{quote(path)}", body)
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    async def mkdir(self, path: str) -> None:
        answer = await self.api("PUT", f"api/contents/{quote(path)}", {"type": "directory"})
        assert answer.status_code in (200, 201), answer.text

    async def checkpoints(self, path: str) -> list[dict[str, str]]:
        """The contents API's checkpoints of ``path``, oldest first."""
        answer = await self.api("GET", f"api/contents/{quote(path)}/checkpoints")
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    async def status(self) -> dict[str, Any]:
        answer = await self.api("GET", "api/bookstore")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def wait_archived(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until archiving has begun and the backlog is empty."""

        async def drained() -> dict[str, Any] | None:
            status = await self.status()
            archive = status["archive"]
            return status if archive["ready"] and archive["backlog"] == 0 else None

        return dict(await until(drained, timeout, "the archive backlog to drain"))

    # -- behind bookstore's back ---------------------------------------------------

    async def versions(self, path: str | None = None) -> list[Version]:
        """Every indexed version (of ``path``, or of every path), by path and number."""
        history = self.services.history
        if path is not None:
            return await history.versions(path)
        rows = [row for item in await history.paths() for row in await history.versions(item.path)]
        return sorted(rows, key=lambda row: (row.path, row.number))

    def stored(self, path: str) -> str:
        """The path the history of ``path`` (relative to the root) is kept under."""
        return self.services.history.view.stored(path)

    @property
    def index_file(self) -> Path:
        """The server's SQLite index file."""
        return sqlite_file(self.services.settings.index_url)

    @property
    def store_dir(self) -> Path:
        """The server's local store directory (``data/`` and ``meta/`` below it)."""
        return Path(self.services.settings.local_store_dir)

    def index_rows(self) -> list[tuple[str, int, str, int, str]]:
        """(path, version, store_key, size, sha256) of every version, from the index file,
        paths named as the server names them."""
        return sqlite_index_rows(self.index_file, self.root)

    def stored_objects(self) -> dict[str, bytes]:
        """Every object in the local store, by key, read from its files."""
        return local_store_objects(self.store_dir)
