"""REST handlers: thin, authenticated, authorized; the work happens in ``History``.

Routes take the version before the path (``/content/3/dir/a.ipynb``), so any
notebook path, including one whose last part is a number, reads one way only.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler, path_regex
from tornado import web

from bookstore.core.diff import NotebookDiff, diff_as_json
from bookstore.core.keys import VERSION_NUMBER, normalize_path
from bookstore.core.labels import label_problem
from bookstore.core.notebook import is_notebook_path
from bookstore.core.version_record import describe_path
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

    def choice_argument(self, name: str, choices: tuple[str, ...]) -> str:
        """The query argument ``name``, one of ``choices`` (the first when it is absent)."""
        raw = self.get_argument(name, choices[0])
        if raw not in choices:
            raise web.HTTPError(400, f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}")
        return raw


class StatusHandler(BookstoreHandler):
    """``GET /api/bookstore``: the release, the enabled features and the archive backlog."""

    auth_resource = "bookstore"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        storage = await self.services.storage()
        self.finish(self.services.status(self.contents_manager, storage))


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
    """``GET /api/bookstore/versions/<path>?limit=&offset=&order=``: a page of versions, oldest
    first, or with ``order=newest`` newest first (``offset`` then counts from the newest),
    and the saves still waiting to be archived."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        name = await self.checked_path(path)
        limit = self.int_argument("limit", 100, MAX_PAGE)
        offset = self.int_argument("offset", 0, 2**31)
        order = self.choice_argument("order", ("oldest", "newest"))
        history = self.services.history
        unavailable = None
        with http_errors():
            try:
                total, rows = await history.page(name, offset, limit, newest=order == "newest")
                origin = await history.origin(name)
            except history.outages as exc:
                # The saves waiting are shown all the same: they are safe in the outbox.
                total, rows, origin = 0, [], None
                unavailable = f"the archived versions cannot be read now: {exc}"
        waiting = self.services.archiver.pending(history.view.stored(name))
        following = offset + len(rows)
        self.finish(
            {
                "path": name,
                "copied_from": None if origin is None else origin.describe(),
                "total": total,
                "offset": offset,
                "limit": limit,
                "next_offset": following if following < total else None,
                "versions": [history.describe(row) for row in rows],
                "pending": [{"queued_at": entry.queued_time.isoformat()} for entry in waiting],
                "unavailable": unavailable,
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
    """``GET /api/bookstore/diff/<version>/<path>?to=<version>&format=``: cell by cell.

    Without ``to``, compares with the file as it is now. ``format``: ``cells`` (every
    cell, described), ``summary`` (the counts only, for a list of versions) or ``nbdime``
    (the old notebook and the diff from it, for nbdime's renderer).
    """

    @web.authenticated
    @authorized
    async def get(self, version: str, path: str) -> None:
        name = await self.checked_path(path)
        to = self.get_argument("to", None)
        if to is not None and not _NUMBER.fullmatch(to):
            raise web.HTTPError(400, "to must be a version number")
        form = self.choice_argument("format", ("cells", "summary", "nbdime"))
        with http_errors():
            if to is not None:
                new: int | bytes = int(to)
            elif await file_exists(self.contents_manager, name):
                _, new = await current_content(self.contents_manager, name)
            else:
                raise web.HTTPError(404, f"{name} does not exist now; give ?to=<version>")
            compared = await self.services.history.diff(name, int(version), new)
            base_and_diff = (
                await self.services.history.nbdime(compared) if form == "nbdime" else None
            )
        difference = compared.difference
        newer = compared.new.number if compared.new is not None else None
        head = {"path": name, "from": compared.old.number, "to": newer}
        summary = {"summary": difference.summary(), "counts": difference.counts()}
        if form == "summary":
            self.finish({**head, **summary, "metadata_changed": difference.metadata_changed})
            return
        # Megabytes of JSON for a large notebook: encoded off the event loop, in pieces.
        if base_and_diff is None:
            answer = await asyncio.to_thread(_json_answer, difference, {**head, **summary})
        else:
            base, diff = base_and_diff
            nbdime = {**head, **summary, "base": base, "diff": diff}
            answer = await asyncio.to_thread(_json_in_pieces, nbdime, _NBDIME_DEPTH)
        self.set_header("Content-Type", "application/json")
        self.finish(answer)


class AnnotationHandler(BookstoreHandler):
    """Base of the label and pin routes: annotate, tell clients, answer with the version."""

    async def annotate(self, version: str, path: str, **change: Any) -> None:
        name = await self.checked_path(path)
        history = self.services.history
        with http_errors():
            row = await history.annotate(name, int(version), **change)
        if self.services.events is not None:
            self.services.events.annotated(row)
        self.finish(history.describe(row))


class LabelHandler(AnnotationHandler):
    """``PUT /api/bookstore/label/<version>/<path>`` with ``{"label": "text"}`` names a
    version (which every prune then keeps); ``DELETE`` removes its label."""

    @web.authenticated
    @authorized
    async def put(self, version: str, path: str) -> None:
        body = self.get_json_body()
        label = body.get("label") if isinstance(body, dict) else None
        if not isinstance(label, str) or not label:
            raise web.HTTPError(400, 'the body must be {"label": "text"}; DELETE removes a label')
        problem = label_problem(label)
        if problem is not None:
            raise web.HTTPError(400, problem)
        await self.annotate(version, path, label=label)

    @web.authenticated
    @authorized
    async def delete(self, version: str, path: str) -> None:
        await self.annotate(version, path, label="")


class PinHandler(AnnotationHandler):
    """``PUT /api/bookstore/pin/<version>/<path>`` pins a version, so that no prune removes
    it; ``DELETE`` unpins it."""

    @web.authenticated
    @authorized
    async def put(self, version: str, path: str) -> None:
        await self.annotate(version, path, pinned=True)

    @web.authenticated
    @authorized
    async def delete(self, version: str, path: str) -> None:
        await self.annotate(version, path, pinned=False)


def _json_answer(difference: NotebookDiff, head: dict[str, Any]) -> str:
    """The diff as JSON (``diff_as_json`` encodes it a cell at a time)."""
    return _script_safe(diff_as_json(difference, head))


_NBDIME_DEPTH = 6
"""Deep enough that each cell of ``base`` and of the diff's ``valuelist`` is one piece."""


def _json_in_pieces(value: Any, depth: int) -> str:
    """``json.dumps(value)``, its lists and objects down to ``depth`` encoded a part at a
    time: one ``json.dumps`` of megabytes holds the interpreter lock, and so the event
    loop, for tenths of a second; between parts, the loop gets it back."""
    parts: list[str] = []
    _encode(value, depth, parts)
    return _script_safe("".join(parts))


def _script_safe(encoded: str) -> str:
    """JSON escaped as Tornado escapes it: ``</`` closes no script tag."""
    return encoded.replace("</", "<\\/")


def _encode(value: Any, depth: int, parts: list[str]) -> None:
    if depth and isinstance(value, dict):
        parts.append("{")
        for n, (key, item) in enumerate(value.items()):
            parts.append(f"{', ' if n else ''}{json.dumps(key)}: ")
            _encode(item, depth - 1, parts)
        parts.append("}")
    elif depth and isinstance(value, list):
        parts.append("[")
        for n, item in enumerate(value):
            if n:
                parts.append(", ")
            _encode(item, depth - 1, parts)
        parts.append("]")
    else:
        parts.append(json.dumps(value))


handlers = [
    (r"/api/bookstore/?", StatusHandler),
    (r"/api/bookstore/paths/?", PathsHandler),
    (rf"/api/bookstore/versions{path_regex}", VersionsHandler),
    (rf"/api/bookstore/content/{_VERSION}{path_regex}", ContentHandler),
    (rf"/api/bookstore/restore/{_VERSION}{path_regex}", RestoreHandler),
    (rf"/api/bookstore/diff/{_VERSION}{path_regex}", DiffHandler),
    (rf"/api/bookstore/label/{_VERSION}{path_regex}", LabelHandler),
    (rf"/api/bookstore/pin/{_VERSION}{path_regex}", PinHandler),
]
