"""A Jupyter server with bookstore inside the test process, driven over HTTP by ``jp_fetch``.

jupyter_server's pytest plugin (``jp_serverapp``, ``jp_fetch``) builds the server
on the test's event loop; ``LiveServer`` starts bookstore's archiving in it and
gives tests the calls they make most: save, wait for the archive, read the index.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPClientError, HTTPResponse

from bookstore.index import Version
from bookstore.server.services import SETTINGS_KEY, BookstoreServices

__all__ = ["LiveServer", "Response", "Run", "until"]

T = TypeVar("T")
Fetch = Callable[..., Awaitable[HTTPResponse]]
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
    """An HTTP answer, whatever its status (``jp_fetch`` raises on 4xx and 5xx)."""

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
    """The in-process server: HTTP through ``jp_fetch``, and bookstore's services."""

    def __init__(self, app: ServerApp, fetch: Fetch) -> None:
        self.app = app
        self._fetch = fetch

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

    async def api(self, method: str, path: str, body: Any = None, **params: str) -> Response:
        """``method`` on ``/api/...`` ``path`` (already URL-encoded), any status returned."""
        encoded = None if body is None else json.dumps(body)
        if method in ("POST", "PUT", "PATCH") and encoded is None:
            encoded = ""
        try:
            answer = await self._fetch(
                path.lstrip("/"),
                method=method,
                body=encoded,
                params=params or None,
                allow_nonstandard_methods=True,
            )
        except HTTPClientError as error:
            if error.response is None:
                raise
            answer = error.response
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

    async def versions(self, path: str | None = None) -> list[Version]:
        """Every indexed version (of ``path``, or of every path), by path and number."""
        history = self.services.history
        if path is not None:
            return await history.versions(path)
        rows = [row for item in await history.paths() for row in await history.versions(item.path)]
        return sorted(rows, key=lambda row: (row.path, row.number))
