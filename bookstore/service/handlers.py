"""The archive service's HTTP API: a user hands over saves and reads back their history.

Every request names its owner only through its token (``owners.Owners``): the
workspace is built from the user the Hub names, and every read is made in that
workspace alone, so another user's version answers 404 like one that never
existed. Nothing here deletes. ``docs/jupyterhub.md`` describes each endpoint.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from tornado.web import HTTPError, RequestHandler

from bookstore._version import __version__
from bookstore.archiving.archiver import archive_record, unarchivable_reason
from bookstore.core import keys
from bookstore.core.errors import InvalidPath, ObjectConflict
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.core.service_api import SHA256_HEADER, VERSIONS_ENDPOINT
from bookstore.history import History, describe_path, describe_version
from bookstore.index import IndexDatabase
from bookstore.server.http_errors import http_errors
from bookstore.service.owners import Owners
from bookstore.store import Store

__all__ = ["ServiceState", "service_handlers"]


@dataclass(frozen=True)
class ServiceState:
    """What every handler of one service process shares."""

    store: Store
    index: IndexDatabase
    owners: Owners
    workspace_prefix: str
    """A template naming ``{username}``: each user's workspace."""
    max_version_bytes: int

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

    def check_xsrf_cookie(self) -> None:
        """Requests carry a token, never a cookie: there is nothing to forge."""

    async def owner(self) -> str:
        return await self.state.owners.owner_of(self.request.headers)

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message or self._reason}))

    def path_argument(self) -> str:
        try:
            return keys.normalize_path(self.get_argument("path"))
        except InvalidPath as exc:
            raise HTTPError(400, str(exc)) from exc


class VersionsHandler(ServiceHandler):
    """``POST``: archive one save; ``GET``: the versions of one path."""

    async def post(self) -> None:
        owner = await self.owner()
        path = self.path_argument()
        try:
            saved_at = keys.parse_timestamp(self.get_argument("saved_at"))
        except ValueError as exc:
            raise HTTPError(400, "saved_at must read like 20261125T175806.123456Z") from exc
        claimed = self.request.headers.get(SHA256_HEADER, "")
        content = self.request.body
        if len(content) > self.state.max_version_bytes:
            raise HTTPError(
                413, f"a save of {len(content)} bytes is over {self.state.max_version_bytes}"
            )
        hashed = await asyncio.to_thread(HashedRecord.of, ArchiveRecord(path, content, saved_at))
        if hashed.sha256 != claimed:
            raise HTTPError(400, f"the bytes received do not match {SHA256_HEADER}")
        try:
            with http_errors():
                row = await archive_record(
                    self.state.store, self.state.index, self.state.workspace_of(owner), hashed
                )
        except HTTPError as exc:
            cause = exc.__cause__
            if isinstance(cause, ObjectConflict):
                raise HTTPError(409, unarchivable_reason(cause)) from cause
            if cause is not None and (reason := unarchivable_reason(cause)) is not None:
                raise HTTPError(400, reason) from cause
            raise
        if row is None:
            self.write_json(200, {"archived": False, "version": None})
        else:
            self.write_json(201, {"archived": True, "version": describe_version(row)})

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        with http_errors():
            rows = await history.versions(path)
        self.write_json(200, {"path": path, "versions": [describe_version(row) for row in rows]})


class PathsHandler(ServiceHandler):
    """``GET``: every path the owner has history for, most recently saved first."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        with http_errors():
            found = await history.paths()
        self.write_json(200, {"paths": [describe_path(summary, True) for summary in found]})


class ContentHandler(ServiceHandler):
    """``GET``: one version's bytes, checked against the sha256 recorded at save time."""

    async def get(self) -> None:
        history = self.state.history_of(await self.owner())
        path = self.path_argument()
        try:
            number = int(self.get_argument("version"))
        except ValueError as exc:
            raise HTTPError(400, "version must be a version number") from exc
        with http_errors():
            version, content = await history.fetch(path, number)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header(SHA256_HEADER, version.sha256)
        self.finish(content)


class HealthHandler(ServiceHandler):
    """``GET``: whether this replica answers (for a load balancer); no token needed."""

    def get(self) -> None:
        self.write_json(200, {"service": "bookstore", "version": __version__})


def service_handlers(prefix: str, state: ServiceState) -> list[tuple[str, type, dict[str, Any]]]:
    """The service's routes under ``prefix`` (JupyterHub's ``/services/<name>/``)."""
    base = prefix.rstrip("/") + "/api"
    arguments = {"state": state}
    return [
        (f"{prefix.rstrip('/')}/{VERSIONS_ENDPOINT}", VersionsHandler, arguments),
        (f"{base}/paths", PathsHandler, arguments),
        (f"{base}/content", ContentHandler, arguments),
        (f"{base}/health", HealthHandler, arguments),
    ]
