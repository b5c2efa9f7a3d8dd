"""REST handlers: thin, authenticated, authorized; the work happens in ``History``.

Routes take the version before the path (``/content/3/dir/a.ipynb``), so any
notebook path, including one whose last part is a number, reads one way only.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler, path_regex
from tornado import web

from bookstore.core.diff import NotebookDiff, diff_as_json
from bookstore.core.keys import VERSION_NUMBER, normalize_path
from bookstore.core.notebook import is_notebook_path
from bookstore.history import describe_path
from bookstore.server.contents import (
    check_path,
    current_content,
    file_exists,
    shows_history,
    write_version,
)
from bookstore.server.http_errors import http_errors
from bookstore.server.services import SETTINGS_KEY, BookstoreServices

__all__ = ["BookstoreHandler", "handlers"]

MAX_PAGE = 1000
_NUMBER = re.compile(r"[0-9]{1,18}")
"""ASCII digits only (``str.isdigit`` takes ``²``), and few enough to fit a 64-bit column."""
_VERSION = rf"(?P<version>{VERSION_NUMBER})"


class BookstorePaths(JupyterHandler):
    """bookstore's services, and paths checked against the contents API's rules."""

    @property
    def services(self) -> BookstoreServices:
        services: BookstoreServices = self.settings[SETTINGS_KEY]
        return services

    def notebook_path(self, raw: str) -> str:
        with http_errors():
            return normalize_path(raw)

    async def checked_path(self, raw: str, *, target: bool = False) -> str:
        """``raw`` as a path, if the contents API's rules let bookstore act on it."""
        name = self.notebook_path(raw)
        await check_path(self.contents_manager, self.services, name, target=target)
        return name


class BookstoreHandler(BookstorePaths, APIHandler):
    """Base of the REST API: JSON errors, and the contents API's authorization."""

    auth_resource = "contents"

    def int_argument(self, name: str, default: int, maximum: int) -> int:
        raw = self.get_argument(name, str(default))
        if not _NUMBER.fullmatch(raw) or int(raw) > maximum:
            raise web.HTTPError(400, f"{name} must be a whole number from 0 to {maximum}")
        return int(raw)


class StatusHandler(BookstoreHandler):
    """``GET /api/bookstore``: the release, the enabled features and the archive backlog."""

    auth_resource = "bookstore"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.services.status(self.contents_manager))


class PathsHandler(BookstoreHandler):
    """``GET /api/bookstore/paths?deleted=&limit=``: the archived paths, most recently saved
    first, each saying whether its file is still there; ``deleted=true`` keeps only the
    notebooks whose file is gone, so they can be found and restored."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        deleted = self.get_argument("deleted", "false")
        if deleted not in ("true", "false"):
            raise web.HTTPError(400, "deleted must be true or false")
        limit = self.int_argument("limit", MAX_PAGE, MAX_PAGE)
        contents = self.contents_manager
        with http_errors():
            summaries = await self.services.history.paths()
        listed: list[dict[str, Any]] = []
        for summary in summaries:
            if len(listed) == limit:
                break
            if not await shows_history(contents, self.services, summary.path):
                continue
            exists = await file_exists(contents, summary.path)
            if not (exists and deleted == "true"):
                listed.append(describe_path(summary, exists))
        self.finish({"paths": listed})


class VersionsHandler(BookstoreHandler):
    """``GET /api/bookstore/versions/<path>?limit=&offset=``: a page of versions, oldest first."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        name = await self.checked_path(path)
        limit = self.int_argument("limit", 100, MAX_PAGE)
        offset = self.int_argument("offset", 0, 2**31)
        with http_errors():
            total, rows = await self.services.history.page(name, offset, limit)
            origin = await self.services.history.origin(name)
        following = offset + len(rows)
        self.finish(
            {
                "path": name,
                "copied_from": None if origin is None else origin.describe(),
                "total": total,
                "offset": offset,
                "limit": limit,
                "next_offset": following if following < total else None,
                "versions": [self.services.history.describe(row) for row in rows],
            }
        )


class ContentHandler(BookstoreHandler):
    """``GET /api/bookstore/content/<version>/<path>``: the version's bytes, as saved."""

    @web.authenticated
    @authorized
    async def get(self, version: str, path: str) -> None:
        name = await self.checked_path(path)
        with http_errors():
            row, content = await self.services.history.fetch(name, int(version))
        self.set_header("X-Bookstore-Sha256", row.sha256)
        if is_notebook_path(name):
            self.finish(content)  # APIHandler sends it as application/json
        else:
            self.set_header("Content-Type", "application/octet-stream")
            JupyterHandler.finish(self, content)


class RestoreHandler(BookstoreHandler):
    """``POST /api/bookstore/restore/<version>/<path>``: write a version back.

    Body (optional JSON): ``{"target": "other.ipynb", "overwrite": false}``.
    Restoring onto an existing file other than the version's own path needs
    ``overwrite``; whatever the target held is archived first either way.
    """

    @web.authenticated
    @authorized
    async def post(self, version: str, path: str) -> None:
        name = await self.checked_path(path)
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        raw_target = body.get("target") or name
        if not isinstance(raw_target, str):
            raise web.HTTPError(400, "target must be a path (a string)")
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, "overwrite must be true or false")
        target = await self.checked_path(raw_target, target=True)
        contents = self.contents_manager
        with http_errors():
            row, content = await self.services.history.fetch(name, int(version))
            exists = await file_exists(contents, target)
            if target != name and exists and not overwrite:
                raise web.HTTPError(409, f'{target} exists; send "overwrite": true to replace it')
            warning = await write_version(contents, self.services, target, content)
        self.finish(
            {
                "path": name,
                "version": row.number,
                "target": target,
                "replaced": exists,
                "warning": warning,
            }
        )


class DiffHandler(BookstoreHandler):
    """``GET /api/bookstore/diff/<version>/<path>?to=<version>``: cell by cell.

    Without ``to``, compares with the file as it is now.
    """

    @web.authenticated
    @authorized
    async def get(self, version: str, path: str) -> None:
        name = await self.checked_path(path)
        to = self.get_argument("to", None)
        if to is not None and not _NUMBER.fullmatch(to):
            raise web.HTTPError(400, "to must be a version number")
        with http_errors():
            if to is not None:
                new: int | bytes = int(to)
            elif await file_exists(self.contents_manager, name):
                _, new = await current_content(self.contents_manager, name)
            else:
                raise web.HTTPError(404, f"{name} does not exist now; give ?to=<version>")
            compared = await self.services.history.diff(name, int(version), new)
        newer = compared.new.number if compared.new is not None else None
        head = {"path": name, "from": compared.old.number, "to": newer}
        # Megabytes of JSON for a large notebook: encoded off the event loop.
        answer = await asyncio.to_thread(_json_answer, compared.difference, head)
        self.set_header("Content-Type", "application/json")
        self.finish(answer)


def _json_answer(difference: NotebookDiff, head: dict[str, Any]) -> str:
    """The diff as JSON, escaped as Tornado escapes JSON (``</`` closes no script tag)."""
    return diff_as_json(difference, head).replace("</", "<\\/")


handlers = [
    (r"/api/bookstore/?", StatusHandler),
    (r"/api/bookstore/paths/?", PathsHandler),
    (rf"/api/bookstore/versions{path_regex}", VersionsHandler),
    (rf"/api/bookstore/content/{_VERSION}{path_regex}", ContentHandler),
    (rf"/api/bookstore/restore/{_VERSION}{path_regex}", RestoreHandler),
    (rf"/api/bookstore/diff/{_VERSION}{path_regex}", DiffHandler),
]
