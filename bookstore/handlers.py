"""REST handlers: thin, authenticated, authorized; the work happens elsewhere.

Routes take the version before the path (``/content/3/dir/a.ipynb``), so any
notebook path, including one whose last part is a number, reads one way only.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler, path_regex
from jupyter_server.utils import ensure_async
from tornado import web

from bookstore.diff import diff_as_dict, diff_notebooks
from bookstore.history import describe_version, fetch_version, find_version
from bookstore.http_errors import http_errors
from bookstore.index import queries
from bookstore.keys import normalize_path
from bookstore.restore import current_content, restore_into

if TYPE_CHECKING:
    from bookstore.extension import BookstoreExtension

__all__ = ["handlers"]

MAX_PAGE = 1000
_MAX_NAME_BYTES = 255
_NUMBER = re.compile(r"[0-9]{1,18}")
"""ASCII digits only (``str.isdigit`` takes ``²``), and few enough to fit a 64-bit column."""
_VERSION = r"(?P<version>[1-9][0-9]{0,17})"


class BookstoreHandler(APIHandler):
    """Base: the extension's services, and paths checked before anything uses them."""

    auth_resource = "contents"

    @property
    def bookstore(self) -> BookstoreExtension:
        extension: BookstoreExtension = self.settings["bookstore"]
        return extension

    @property
    def workspace(self) -> str:
        """The server's workspace: the only history its API shows."""
        return self.bookstore.workspace

    def notebook_path(self, raw: str) -> str:
        with http_errors():
            return normalize_path(raw)

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
        self.finish(json.dumps(self.bookstore.status()))


class VersionsHandler(BookstoreHandler):
    """``GET /api/bookstore/versions/<path>?limit=&offset=``: a page of versions, oldest first."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        name = self.notebook_path(path)
        limit = self.int_argument("limit", 100, MAX_PAGE)
        offset = self.int_argument("offset", 0, 2**31)
        with http_errors():
            async with self.bookstore.index.reading() as session:
                total = await queries.count_versions_of(session, self.workspace, name)
                rows = await queries.list_versions(
                    session, self.workspace, name, offset=offset, limit=limit
                )
        following = offset + len(rows)
        self.finish(
            {
                "path": name,
                "total": total,
                "offset": offset,
                "limit": limit,
                "next_offset": following if following < total else None,
                "versions": [describe_version(row) for row in rows],
            }
        )


class ContentHandler(BookstoreHandler):
    """``GET /api/bookstore/content/<version>/<path>``: the version's bytes, as saved."""

    @web.authenticated
    @authorized
    async def get(self, version: str, path: str) -> None:
        name = self.notebook_path(path)
        with http_errors():
            async with self.bookstore.index.reading() as session:
                row = await find_version(session, self.workspace, name, int(version))
            content = await fetch_version(self.bookstore.store, row)
        self.set_header("X-Bookstore-Sha256", row.sha256)
        if name.endswith(".ipynb"):
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
        name = self.notebook_path(path)
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        raw_target = body.get("target") or name
        if not isinstance(raw_target, str):
            raise web.HTTPError(400, "target must be a path (a string)")
        target = self.notebook_path(raw_target)
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, "overwrite must be true or false")
        contents = self.contents_manager
        await _check_writable(contents, target)
        with http_errors():
            async with self.bookstore.index.reading() as session:
                row = await find_version(session, self.workspace, name, int(version))
            content = await fetch_version(self.bookstore.store, row)
            exists = await _exists(contents, target)
            if target != name and exists and not overwrite:
                raise web.HTTPError(409, f'{target} exists; send "overwrite": true to replace it')
            await restore_into(contents, self.bookstore, target, content)
        self.set_status(200)
        self.finish({"path": name, "version": row.version, "target": target, "replaced": exists})


class DiffHandler(BookstoreHandler):
    """``GET /api/bookstore/diff/<version>/<path>?to=<version>``: cell by cell.

    Without ``to``, compares with the file as it is now.
    """

    @web.authenticated
    @authorized
    async def get(self, version: str, path: str) -> None:
        name = self.notebook_path(path)
        to = self.get_argument("to", None)
        if to is not None and not _NUMBER.fullmatch(to):
            raise web.HTTPError(400, "to must be a version number")
        with http_errors():
            store = self.bookstore.store
            async with self.bookstore.index.reading() as session:
                old_row = await find_version(session, self.workspace, name, int(version))
                new_row = await find_version(session, self.workspace, name, int(to)) if to else None
            old = await fetch_version(store, old_row)
            if new_row is not None:
                new = await fetch_version(store, new_row)
            else:
                if not await _exists(self.contents_manager, name):
                    raise web.HTTPError(404, f"{name} does not exist now; give ?to=<version>")
                _, new = await current_content(self.contents_manager, name)
        try:
            difference = diff_notebooks(old, new)
        except ValueError as exc:
            raise web.HTTPError(422, str(exc)) from exc
        self.finish(
            {"path": name, "from": old_row.version, "to": new_row.version if new_row else None}
            | diff_as_dict(difference)
        )


async def _exists(contents_mgr: Any, path: str) -> bool:
    return bool(await ensure_async(contents_mgr.file_exists(path)))


async def _check_writable(contents_mgr: Any, target: str) -> None:
    """Refuse, before anything is written, a target the contents API would refuse."""
    folder = posixpath.dirname(target)
    if any(len(part.encode()) > _MAX_NAME_BYTES for part in target.split("/")):
        raise web.HTTPError(400, f"a part of {target!r} is longer than file names may be")
    if folder and not await ensure_async(contents_mgr.dir_exists(folder)):
        raise web.HTTPError(404, f"the folder {folder} does not exist")
    if await ensure_async(contents_mgr.dir_exists(target)):
        raise web.HTTPError(409, f"{target} is a folder; name a file")
    if not contents_mgr.allow_hidden and await ensure_async(contents_mgr.is_hidden(target)):
        raise web.HTTPError(400, f"{target} is hidden; the server does not write hidden files")


handlers = [
    (r"/api/bookstore/?", StatusHandler),
    (rf"/api/bookstore/versions{path_regex}", VersionsHandler),
    (rf"/api/bookstore/content/{_VERSION}{path_regex}", ContentHandler),
    (rf"/api/bookstore/restore/{_VERSION}{path_regex}", RestoreHandler),
    (rf"/api/bookstore/diff/{_VERSION}{path_regex}", DiffHandler),
]
