"""The archive service's HTTP API: a user hands over saves and reads back their history.

Every request names its owner only through its token (``owners.Owners``): the
workspace is built from the user the Hub names, and every read is made in that
workspace alone, so another user's version answers 404 like one that never
existed. Nothing here deletes. ``docs/jupyterhub.md`` describes each endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from tornado.web import HTTPError, RequestHandler, stream_request_body

from bookstore._version import __version__
from bookstore.archiving.archiver import archive_record, unarchivable_reason
from bookstore.archiving.changes import record_changes, record_copy, rename_history
from bookstore.archiving.outbox import IN_MEMORY_BYTES
from bookstore.core import keys
from bookstore.core.body import Body, FileSlice
from bookstore.core.changes import COPY, RENAME
from bookstore.core.errors import InvalidPath, ObjectConflict
from bookstore.core.labels import label_problem
from bookstore.core.record import HashedRecord
from bookstore.core.service_api import MAX_PAGE, SHA256_HEADER, VERSIONS_ENDPOINT
from bookstore.core.version_record import describe_path
from bookstore.history import History
from bookstore.index import IndexDatabase
from bookstore.server.http_errors import http_errors
from bookstore.service.owners import Owners
from bookstore.store import Store

__all__ = ["ReceivedSave", "ServiceState", "service_handlers"]

_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CLOCK_SKEW = timedelta(days=1)
"""How far ahead of the service's clock a server's may run."""
_ANY_SIZE = 1 << 50
"""Tornado's own body limit, lifted for pushes: ``ReceivedSave`` counts, and a save over
the service's limit is read to its end and answered 413 (a cut connection would be
retried for ever)."""


@dataclass(frozen=True)
class ServiceState:
    """What every handler of one service process shares."""

    store: Store
    index: IndexDatabase
    owners: Owners
    workspace_prefix: str
    """A template naming ``{username}``: each user's workspace."""
    max_version_bytes: int
    pushing: asyncio.Semaphore
    """A slot per push being received or archived: past them, a push answers 429."""
    ready: asyncio.Event
    """Set once the index is migrated: until then every request answers 503."""

    def history_of(self, owner: str) -> History:
        """The owner's history: the only one a request of theirs reaches."""
        return History(self.store, self.index, self.workspace_of(owner))

    def workspace_of(self, owner: str) -> str:
        return keys.resolve_prefix(self.workspace_prefix, owner)


class ServiceHandler(RequestHandler):
    """Answers in JSON, errors included, after asking the Hub whose request it is."""

    state: ServiceState

    def initialize(self, state: ServiceState) -> None:
        self.state = state

    async def owner(self) -> str:
        """The Hub-named owner of the request, once the service can answer it."""
        owner = await self.state.owners.owner_of(self.request.headers)
        if not self.state.ready.is_set():
            raise HTTPError(503, "the archive service is preparing its index; try again shortly")
        return owner

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message or self._reason}))

    def path_argument(self, name: str = "path") -> str:
        """The query argument ``name``, a path, exactly as sent (tornado's ``get_argument``
        would trim blanks and blank out control characters: another file's name)."""
        sent = self.request.query_arguments.get(name)
        if not sent:
            raise HTTPError(400, f"name the file: ?{name}=<its path relative to your root>")
        try:
            return keys.normalize_path(sent[-1].decode("utf-8"))
        except (InvalidPath, UnicodeDecodeError) as exc:
            raise HTTPError(400, str(exc)) from exc

    def number_argument(self, name: str, default: int | None = None) -> int | None:
        """A whole-number query argument that fits the index's columns, or ``default``."""
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or int(raw) >= 2**31:
            raise HTTPError(400, f"{name} must be a whole number below 2**31")
        return int(raw)

    def version_argument(self) -> int:
        """The ``version`` query argument, which the request must give."""
        number = self.number_argument("version")
        if number is None:
            raise HTTPError(400, "name the version: ?version=<number>")
        return number

    def time_argument(self, name: str) -> datetime | None:
        """A time query argument, as ``keys.format_timestamp`` writes it."""
        raw = self.get_argument(name, None)
        if raw is None:
            return None
        try:
            return keys.parse_timestamp(raw)
        except ValueError as exc:
            raise HTTPError(400, f"{name} must read like 20261125T175806.123456Z") from exc

    def moment_argument(self, name: str) -> datetime:
        """A time the request must give, of something a user's server did: from 1970 to a
        day past the service's clock (earlier or later makes keys no store can hold)."""
        moment = self.time_argument(name)
        if moment is None:
            raise HTTPError(400, f"give the time: ?{name}=20261125T175806.123456Z")
        if not _EARLIEST <= moment <= datetime.now(timezone.utc) + _CLOCK_SKEW:
            raise HTTPError(400, f"{moment.isoformat()} is not a time a server saved at")
        return moment


class ReceivedSave:
    """A pushed save's bytes as they arrive: counted, hashed, held in memory up to
    ``IN_MEMORY_BYTES`` and in a temporary file beyond, and dropped past ``limit``
    (the push is then refused with 413 once all of it has arrived, so that the sender
    reads the answer and sets the save aside instead of retrying it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()
        self._memory = bytearray()
        self._file: IO[bytes] | None = None

    @property
    def too_large(self) -> bool:
        return self.size > self.limit

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.too_large:
            self.close()
            return
        self.digest.update(chunk)
        if self._file is None and len(self._memory) + len(chunk) <= IN_MEMORY_BYTES:
            self._memory += chunk
            return
        if self._file is None:
            self._file = tempfile.NamedTemporaryFile(prefix="bookstore-push-")  # noqa: SIM115
            self._file.write(self._memory)
            self._memory = bytearray()
        self._file.write(chunk)

    def body(self) -> Body:
        """What arrived: bytes, or the temporary file's slice the store streams from."""
        if self._file is None:
            return bytes(self._memory)
        self._file.flush()
        return FileSlice(Path(self._file.name), 0, self.size)

    def close(self) -> None:
        """Drop what arrived (the temporary file goes with it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = bytearray()


@stream_request_body
class VersionsHandler(ServiceHandler):
    """``POST``: archive one save; ``GET``: the versions of one path."""

    received: ReceivedSave | None = None
    """The push's bytes; ``None`` for any other request (whose body is ignored)."""
    _holding_slot = False
    _body_complete = False

    async def prepare(self) -> None:
        if self.request.method != "POST":
            return
        # Who pushes is known before a byte of the save is read.
        self.pusher = await self.owner()
        if self.state.pushing.locked():
            raise HTTPError(429, "the archive service is busy; try again shortly")
        await self.state.pushing.acquire()
        self._holding_slot = True
        self.request.connection.set_max_body_size(_ANY_SIZE)  # type: ignore[union-attr]
        self.received = ReceivedSave(self.state.max_version_bytes)

    def data_received(self, chunk: bytes) -> None:
        if self.received is not None:
            self.received.write(chunk)

    def on_finish(self) -> None:
        self._let_go()

    def on_connection_close(self) -> None:
        # A client gone mid-body never gets an answer, so ``on_finish`` never runs; once
        # the body is complete, the save is being archived from it and finishes first.
        if not self._body_complete:
            self._let_go()

    def _let_go(self) -> None:
        if self.received is not None:
            self.received.close()
        if self._holding_slot:
            self._holding_slot = False
            self.state.pushing.release()

    async def post(self) -> None:
        self._body_complete = True
        received = self.received
        assert received is not None
        path = self.path_argument()
        saved_at = self.moment_argument("saved_at")
        if received.too_large:
            raise HTTPError(
                413, f"a save of {received.size} bytes is over {self.state.max_version_bytes}"
            )
        if received.digest.hexdigest() != self.request.headers.get(SHA256_HEADER, ""):
            raise HTTPError(400, f"the bytes received do not match {SHA256_HEADER}")
        hashed = HashedRecord(path, saved_at, received.body(), received.digest.hexdigest())
        history = self.state.history_of(self.pusher)
        with http_errors():
            try:
                row = await archive_record(history.store, history.index, history.workspace, hashed)
            except Exception as exc:
                # One that can never be archived as it is: its sender sets it aside.
                reason = unarchivable_reason(exc)
                if reason is None:
                    raise
                raise HTTPError(409 if isinstance(exc, ObjectConflict) else 400, reason) from exc
        if row is None:
            self.write_json(200, {"archived": False, "version": None})
        else:
            self.write_json(201, {"archived": True, "version": history.describe(row)})

    async def get(self) -> None:
        """A page of the path's versions: ``limit`` (at most ``MAX_PAGE``) from ``offset``,
        oldest first, or with ``order=newest`` newest first; ``since`` and ``until``
        keep those saved between."""
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        offset = self.number_argument("offset", 0) or 0
        limit = min(self.number_argument("limit", MAX_PAGE) or 0, MAX_PAGE)
        order = self.get_argument("order", "oldest")
        if order not in ("oldest", "newest"):
            raise HTTPError(400, "order must be oldest or newest")
        newest = order == "newest"
        since, until = self.time_argument("since"), self.time_argument("until")
        with http_errors():
            if since is None and until is None:
                total, rows = await history.page(path, offset, limit, newest=newest)
            else:
                window = await history.versions(path, since=since, until=until)
                total = len(window)
                chosen = window[::-1] if newest else window
                rows = chosen[offset : offset + limit]
        self.write_json(
            200,
            {
                "path": path,
                "total": total,
                "versions": [history.describe(row) for row in rows],
            },
        )


class VersionHandler(ServiceHandler):
    """``GET``: one version of a path: number ``version``, the newest saved at or before
    ``at``, the newest holding ``sha256``, or its latest."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        number, at = self.number_argument("version"), self.time_argument("at")
        sha256 = self.get_argument("sha256", None)
        with http_errors():
            if sha256 is not None:
                found = await history.with_sha256(path, sha256)
                if found is None:
                    raise HTTPError(404, f"no version of {path!r} has that sha256")
            else:
                found = await history.find(path, number, at)
        self.write_json(200, history.describe(found))


class AnnotationHandler(ServiceHandler):
    """``PUT``, with ``{"label": "text"}`` and/or ``{"pinned": true}``: a version's label
    (``""`` removes it) and pin. Neither removes a version."""

    async def put(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        number = self.version_argument()
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise HTTPError(400, "the body must be JSON") from exc
        if not isinstance(body, dict):
            raise HTTPError(400, 'the body must be {"label": "text", "pinned": true}')
        label, pinned = body.get("label"), body.get("pinned")
        if not isinstance(label, (str, type(None))) or not isinstance(pinned, (bool, type(None))):
            raise HTTPError(400, 'the body must be {"label": "text", "pinned": true}')
        problem = label_problem(label) if label else None
        if problem is not None:
            raise HTTPError(400, problem)
        with http_errors():
            row = await history.annotate(path, number, label=label, pinned=pinned)
        self.write_json(200, history.describe(row))


class ChangesHandler(ServiceHandler):
    """``POST ?kind=rename&from=A&to=B&at=T``: the owner's file or folder ``A`` was renamed
    ``B`` at ``T``, and its history follows it; ``kind=copy``: ``B`` was made by copying
    ``A``. A change repeated (after a lost answer) is made once."""

    async def post(self) -> None:
        history = self.state.history_of(await self.owner())
        kind = self.get_argument("kind", "")
        if kind not in (RENAME, COPY):
            raise HTTPError(400, f"kind must be {RENAME} or {COPY}")
        source, target = self.path_argument("from"), self.path_argument("to")
        at = self.moment_argument("at")
        apply = rename_history if kind == RENAME else record_copy
        with http_errors():
            change = await apply(history.index, history.workspace, source, target, at)
        try:
            await record_changes(history.store, history.index, history.workspace)
        except Exception as exc:
            # The index holds it: the store is written with the workspace's next change.
            logging.getLogger("bookstore").warning(
                "bookstore-service: %s of %s to %s is not in the store yet: %s",
                kind,
                source,
                target,
                exc,
            )
        self.write_json(200, {"kind": kind, "from": source, "to": target, "made": bool(change)})


class OriginHandler(ServiceHandler):
    """``GET``: what the path was copied from, and its version the copy began with
    (``null``: it was not made by copying)."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        with http_errors():
            origin = await history.origin(path)
        self.write_json(200, None if origin is None else origin.describe())


class PathsHandler(ServiceHandler):
    """``GET``: every path the owner has history for, most recently saved first."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        since, until = self.time_argument("since"), self.time_argument("until")
        with http_errors():
            found = await history.paths(since=since, until=until)
        self.write_json(200, {"paths": [describe_path(summary, True) for summary in found]})


class ContentHandler(ServiceHandler):
    """``GET``: one version's bytes, checked against the sha256 recorded at save time."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        number = self.version_argument()
        with http_errors():
            version, content = await history.fetch(path, number)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header(SHA256_HEADER, version.sha256)
        self.finish(content)


class HealthHandler(ServiceHandler):
    """``GET``: whether this replica answers (for a load balancer); no token needed."""

    def get(self) -> None:
        ready = self.state.ready.is_set()
        self.write_json(200, {"service": "bookstore", "version": __version__, "ready": ready})


def service_handlers(prefix: str, state: ServiceState) -> list[tuple[str, type, dict[str, Any]]]:
    """The service's routes under ``prefix`` (JupyterHub's ``/services/<name>/``)."""
    base = prefix.rstrip("/") + "/api"
    arguments = {"state": state}
    return [
        (f"{prefix.rstrip('/')}/{VERSIONS_ENDPOINT}", VersionsHandler, arguments),
        (f"{base}/version", VersionHandler, arguments),
        (f"{base}/annotation", AnnotationHandler, arguments),
        (f"{base}/changes", ChangesHandler, arguments),
        (f"{base}/origin", OriginHandler, arguments),
        (f"{base}/paths", PathsHandler, arguments),
        (f"{base}/content", ContentHandler, arguments),
        (f"{base}/health", HealthHandler, arguments),
    ]
