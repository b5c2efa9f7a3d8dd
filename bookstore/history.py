"""History: archived versions read from the index and the store, for the command line,
a server archiving directly, and the archive service (``core.history_base`` holds
the rules every history follows)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.archiving.annotations import save_annotations
from bookstore.archiving.archiver import archive_record
from bookstore.archiving.version_objects import read_version
from bookstore.core import keys
from bookstore.core.diff import DEFAULT_LIMITS, DiffLimits
from bookstore.core.errors import CorruptVersion, ObjectNotFound, VersionNotFound
from bookstore.core.history_base import BaseHistory
from bookstore.core.record import ArchiveRecord, HashedRecord, sha256_of
from bookstore.core.version_record import Origin, PathSummary, StorageTotals, VersionRecord
from bookstore.core.view import AS_STORED, PathView
from bookstore.index import IndexDatabase, Version, path_changes, queries
from bookstore.store.base import Store

__all__ = ["History", "saved_as"]


def saved_as(version: Version) -> str:
    """The stored path the version was saved under, which its key names: its history's
    path, unless the file was renamed since."""
    return _saved_under(version.workspace, version)


def _saved_under(workspace: str, version: VersionRecord) -> str:
    named = keys.parse_version_key(workspace, version.store_key)
    return version.path if named is None else named.path


class History(BaseHistory):
    """The archived versions of one workspace, as the index and the store hold them."""

    outages = (SQLAlchemyError,)

    def __init__(
        self,
        store: Store,
        index: IndexDatabase,
        workspace: str,
        *,
        view: PathView = AS_STORED,
        diff_limits: DiffLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(workspace, view=view, diff_limits=diff_limits)
        self.store = store
        self.index = index

    # -- finding ---------------------------------------------------------------

    async def find(
        self, path: str, number: int | None = None, at: datetime | None = None
    ) -> Version:
        async with self.index.reading() as session:
            return await self._find(session, path, number, at)

    async def _find(
        self, session: AsyncSession, path: str, number: int | None, at: datetime | None
    ) -> Version:
        stored = self.view.stored(path)
        if number is not None:
            row = await queries.get_version(session, self.workspace, stored, number)
            wanted = f"version {number} of {path!r}"
        elif at is not None:
            row = await queries.version_at(session, self.workspace, stored, at)
            wanted = f"a version of {path!r} saved at or before {at.isoformat()}"
        else:
            row = await queries.latest_version(session, self.workspace, stored)
            wanted = f"an archived version of {path!r}"
        if row is None:
            raise VersionNotFound(f"there is no {wanted} in the index")
        return row

    async def latest(self, path: str) -> Version | None:
        async with self.index.reading() as session:
            return await queries.latest_version(session, self.workspace, self.view.stored(path))

    async def versions(
        self,
        path: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[Version]:
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            return await queries.list_versions(
                session,
                self.workspace,
                stored,
                since=since,
                until=until,
                limit=limit,
                newest=newest,
            )

    async def page(
        self, path: str, offset: int, limit: int, *, newest: bool = False
    ) -> tuple[int, list[Version]]:
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            total = await queries.count_versions_of(session, self.workspace, stored)
            rows = await queries.list_versions(
                session, self.workspace, stored, offset=offset, limit=limit, newest=newest
            )
        return total, rows[::-1] if newest else rows

    async def paths(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        everywhere: bool = False,
    ) -> list[PathSummary]:
        under = None if everywhere else self.view.base
        async with self.index.reading() as session:
            found = await queries.list_paths(
                session, self.workspace, since=since, until=until, under=under
            )
        name = self.view.anywhere if everywhere else self.view.name
        return [summary._replace(path=name(summary.path)) for summary in found]

    async def count_in(self, workspace: str) -> int:
        """How many versions another workspace of the same index holds."""
        async with self.index.reading() as session:
            return await queries.count_versions(session, workspace)

    async def storage(self) -> StorageTotals:
        """The workspace's versions, the bytes they saved and what they cost in the store."""
        async with self.index.reading() as session:
            return await queries.storage_totals(session, self.workspace)

    async def stats(self, by: str, path: str | None) -> list[dict[str, Any]]:
        """Versions, bytes and archive latency per path or per UTC day, under the view's root."""
        stored = None if path is None else self.view.stored(path)
        async with self.index.reading() as session:
            rows = await queries.archive_stats(
                session, self.workspace, by=by, path=stored, under=self.view.base
            )
        if by != "path":
            return rows
        return [{**row, "group": self.view.name(row["group"])} for row in rows]

    async def holds(self, path: str, content: bytes) -> bool:
        digest = await asyncio.to_thread(sha256_of, content)
        return await self.with_sha256(path, digest) is not None

    async def with_sha256(self, path: str, digest: str) -> Version | None:
        """A version of ``path`` whose bytes have the sha256 ``digest``, if one is archived."""
        stored = self.view.stored(path)
        async with self.index.reading() as session:
            return await queries.version_with_sha256(session, self.workspace, stored, digest)

    async def origin(self, path: str) -> Origin | None:
        """What ``path`` was copied from, if it was made by copying a file ("Duplicate"):
        that file as it is named now, and its version the copy was made from."""
        async with self.index.reading() as session:
            copy = await path_changes.copy_of(session, self.workspace, self.view.stored(path))
            if copy is None:
                return None
            at = copy.changed_at
            source = await path_changes.current_path(session, self.workspace, copy.from_path, at)
            version = await queries.version_at(session, self.workspace, source, at)
        return Origin(self.view.name(source), None if version is None else version.number, at)

    # -- reading -----------------------------------------------------------------

    def _saved_under(self, version: VersionRecord) -> str:
        return _saved_under(self.workspace, version)

    async def _read_bytes(self, version: VersionRecord) -> bytes:
        try:
            data = await read_version(self.store, self.workspace, version.store_key, version.size)
        except ObjectNotFound as exc:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is missing from the store "
                f"({version.store_key}); `bookstore-history verify` lists every such version"
            ) from exc
        except CorruptVersion as exc:
            raise CorruptVersion(
                f"version {version.number} of {version.path!r} is damaged in the store: {exc}"
            ) from exc
        return data

    # -- writing -----------------------------------------------------------------

    async def archive_now(self, path: str, content: bytes) -> Version | None:
        record = ArchiveRecord(self.view.stored(path), content, datetime.now(timezone.utc))
        hashed = await asyncio.to_thread(HashedRecord.of, record)
        return await archive_record(self.store, self.index, self.workspace, hashed)

    async def annotate(
        self, path: str, number: int, *, label: str | None = None, pinned: bool | None = None
    ) -> Version:
        """Set a version's label (``""`` removes it) and/or pin, in the index and the store.

        The store keeps a copy so that an index rebuilt from it keeps them too; it
        is written inside the transaction, so a store that refuses rolls it back.
        """
        async with self.index.writing() as session:
            version = await self._find(session, path, number, None)
            await queries.set_annotation(
                session,
                self.workspace,
                version.path,
                number,
                version.label if label is None else (label or None),
                version.pinned if pinned is None else pinned,
            )
            await save_annotations(self.store, session, self.workspace, version.path)
        return await self.find(path, number)
