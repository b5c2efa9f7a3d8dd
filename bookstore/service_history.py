"""History read through the archive service, for a server in service mode and for the
command line pointed at a hub: the same rules as ``History`` (``core.history_base``),
with versions the service finds, in the workspace the token's owner has there.

The service checks nothing a history shows on its word: bytes read back are checked
against the sha256 the service described them with, as ``History`` checks the store's.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from bookstore.archiving.service_client import ServiceClient, ServiceVersion
from bookstore.core import keys
from bookstore.core.errors import (
    CorruptVersion,
    InvalidPath,
    ServiceRefused,
    ServiceUnavailable,
    VersionNotFound,
)
from bookstore.core.history_base import BaseHistory
from bookstore.core.record import ArchiveRecord, HashedRecord, sha256_of
from bookstore.core.service_api import MAX_PAGE
from bookstore.core.version_record import Origin, PathSummary, StorageTotals, VersionRecord

__all__ = ["ServiceHistory"]

SERVICE_WORKSPACE = "(the archive service's)"
"""What a history read through the service names as its workspace: the service builds
it from the token's owner, and never needs to be told."""


class ServiceHistory(BaseHistory):
    """The token owner's versions, as the archive service gives them."""

    outages = (ServiceUnavailable, ServiceRefused)
    """A refused token too: the server's own history is then unreadable, not a bug."""

    def __init__(self, client: ServiceClient, **rules: Any) -> None:
        """``rules``: the view and diff limits, as ``BaseHistory`` takes them."""
        super().__init__(SERVICE_WORKSPACE, **rules)
        self.client = client

    # -- finding ---------------------------------------------------------------

    async def find(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> ServiceVersion:
        moment = None if at is None else keys.format_timestamp(at)
        try:
            return await self._version(path, version=number, at=moment)
        except VersionNotFound:
            if number is not None:
                wanted = f"version {number} of {path!r}"
            elif at is not None:
                wanted = f"a version of {path!r} saved at or before {at.isoformat()}"
            else:
                wanted = f"an archived version of {path!r}"
            raise VersionNotFound(f"there is no {wanted} in the archive") from None

    async def latest(self, path: str) -> ServiceVersion | None:
        try:
            return await self._version(path)
        except VersionNotFound:
            return None

    async def versions(
        self,
        path: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[ServiceVersion]:
        window = {
            "since": None if since is None else keys.format_timestamp(since),
            "until": None if until is None else keys.format_timestamp(until),
        }
        found: list[ServiceVersion] = []
        while limit is None or len(found) < limit:
            wanted = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(found))
            total, page = await self._page(path, len(found), wanted, newest, **window)
            found.extend(page)
            if not page or len(found) >= total:
                break
        return sorted(found, key=lambda version: version.number)

    async def page(
        self, path: str, offset: int, limit: int, *, newest: bool = False
    ) -> tuple[int, list[ServiceVersion]]:
        found: list[ServiceVersion] = []
        while True:  # once at least: ``limit=0`` asks for the total alone
            wanted = min(MAX_PAGE, limit - len(found))
            total, page = await self._page(path, offset + len(found), wanted, newest)
            found.extend(page)
            if len(page) < wanted or len(found) >= limit:
                return total, found

    async def paths(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        everywhere: bool = False,
    ) -> list[PathSummary]:
        answer = await self.client.read_json(
            "paths",
            since=None if since is None else keys.format_timestamp(since),
            until=None if until is None else keys.format_timestamp(until),
        )
        try:
            summaries = [
                PathSummary(
                    path=keys.normalize_path(str(item["path"])),
                    versions=int(item["versions"]),
                    latest_queued_at=datetime.fromisoformat(item["latest_queued_at"]),
                    total_bytes=int(item["total_bytes"]),
                    stored_bytes=int(item["stored_bytes"]),
                )
                for item in answer["paths"]
            ]
        except (KeyError, TypeError, ValueError, InvalidPath) as exc:
            raise _odd("a list of paths", exc) from exc
        return [
            summary._replace(path=self.view.name(summary.path))
            for summary in summaries
            if everywhere or self.view.shown(summary.path) is not None
        ]

    async def holds(self, path: str, content: bytes) -> bool:
        digest = await asyncio.to_thread(sha256_of, content)
        try:
            await self._version(path, sha256=digest)
        except VersionNotFound:
            return False
        return True

    async def origin(self, path: str) -> Origin | None:
        answer = await self.client.read_json("origin", path=self.view.stored(path))
        if answer is None:
            return None
        try:
            version = answer["version"]
            return Origin(
                self.view.name(keys.normalize_path(str(answer["path"]))),
                None if version is None else int(version),
                datetime.fromisoformat(answer["copied_at"]),
            )
        except (KeyError, TypeError, ValueError, InvalidPath) as exc:
            raise _odd("an origin", exc) from exc

    async def storage(self) -> StorageTotals | None:
        """The service's figures are the operators'; a user's server does not show them."""
        return None

    def _saved_under(self, version: VersionRecord) -> str:
        return version.saved_as if isinstance(version, ServiceVersion) else version.path

    # -- reading -----------------------------------------------------------------

    async def _read_bytes(self, version: VersionRecord) -> bytes:
        try:
            response = await self.client.read(
                "content", size=version.size, path=version.path, version=version.number
            )
        except VersionNotFound as exc:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is gone from the archive: {exc}"
            ) from exc
        return response.body or b""

    # -- writing -----------------------------------------------------------------

    async def archive_now(self, path: str, content: bytes) -> ServiceVersion | None:
        """Push ``content`` to the service as a save made now."""
        record = ArchiveRecord(self.view.stored(path), content, datetime.now(timezone.utc))
        hashed = await asyncio.to_thread(HashedRecord.of, record)
        return await self.client.push(hashed)

    async def annotate(
        self, path: str, number: int, *, label: str | None = None, pinned: bool | None = None
    ) -> ServiceVersion:
        answer = await self.client.write_json(
            "annotation",
            {"label": label, "pinned": pinned},
            path=self.view.stored(path),
            version=number,
        )
        return ServiceVersion.described(answer)

    # -- the service's answers -----------------------------------------------------------

    async def _version(self, path: str, **which: Any) -> ServiceVersion:
        answer = await self.client.read_json("version", path=self.view.stored(path), **which)
        return ServiceVersion.described(answer)

    async def _page(
        self, path: str, offset: int, limit: int, newest: bool, **window: Any
    ) -> tuple[int, list[ServiceVersion]]:
        answer = await self.client.read_json(
            "versions",
            path=self.view.stored(path),
            offset=offset,
            limit=limit,
            order="newest" if newest else "oldest",
            **window,
        )
        try:
            total, described = int(answer["total"]), list(answer["versions"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _odd("a page of versions", exc) from exc
        return total, [ServiceVersion.described(item) for item in described]


def _odd(what: str, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"the archive service answered {what} oddly: {exc}")
