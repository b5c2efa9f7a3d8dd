"""Index queries. Each takes the session first; the caller owns the transaction.

Each also takes the workspace it reads or writes: many users may share one
index, and a query never sees another workspace's versions.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    column,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    table,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.core.version_record import PathSummary, StorageTotals
from bookstore.index import path_changes
from bookstore.index.models import Lease, PrunedObject, ReservedVersion, Version

__all__ = [
    "PathSummary",
    "Reservation",
    "StorageTotals",
    "VersionBrief",
    "add_version",
    "add_versions",
    "annotated_versions",
    "archive_stats",
    "count_versions",
    "count_versions_of",
    "fix_version",
    "forget_pruned",
    "get_version",
    "latest_version",
    "list_paths",
    "list_versions",
    "longest_path",
    "pruned_keys",
    "read_only_query",
    "release_reservation",
    "remove_versions",
    "reserve_version",
    "set_annotation",
    "set_stored_size",
    "storage_totals",
    "stream_versions",
    "take_lease",
    "version_at",
    "version_by_key",
    "version_with_sha256",
    "workspace_versions",
]


def _of(workspace: str, path: str) -> ColumnElement[bool]:
    """The versions of ``path`` in ``workspace``; no query reads across workspaces."""
    return (Version.workspace == workspace) & (Version.path == path)


async def latest_version(session: AsyncSession, workspace: str, path: str) -> Version | None:
    """The newest version of ``path``, or ``None`` before its first."""
    query = select(Version).where(_of(workspace, path)).order_by(Version.number.desc()).limit(1)
    return (await session.scalars(query)).first()


async def version_by_key(session: AsyncSession, store_key: str) -> Version | None:
    """The version stored at ``store_key``, if it is indexed."""
    return (await session.scalars(select(Version).where(Version.store_key == store_key))).first()


async def _lock_path(session: AsyncSession, workspace: str, path: str) -> None:
    """On PostgreSQL, servers sharing one database number a path's versions one at a time.

    SQLite needs nothing here: its write transactions hold the lock from the start.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock(func.hashtext(f"{workspace}/{path}"))
        await session.execute(select(lock))


class Reservation(NamedTuple):
    """A save's version number, and the name of the history it is numbered in."""

    path: str
    number: int | None
    """``None``: the file was renamed since the save, and the history it joins ends
    with this very content already (nothing to archive)."""


async def reserve_version(
    session: AsyncSession,
    workspace: str,
    path: str,
    store_key: str,
    sha256: str,
    saved_at: datetime,
) -> Reservation | None:
    """The version number of this save at ``store_key``: taken now, or earlier by itself.

    The save of ``path`` at ``saved_at`` is numbered in the history of the name its
    file has now, which differs once the file was renamed after the save. One
    statement takes the next number in the common case. A replayed save (same
    key, same content) finds the number it reserved or was indexed under before;
    ``None`` when another save holds the key, and the caller moves to the next
    key. A key that is indexed already is never reserved again: the number taken
    and given back would leave a gap when another server numbers the path meanwhile.
    """
    await path_changes.lock_renames(session, workspace, exclusive=False)
    saved_as = path
    path = await path_changes.current_path(session, workspace, path, saved_at)
    await _lock_path(session, workspace, path)
    if path != saved_as:  # the caller compared the content with the old name's history
        latest = await latest_version(session, workspace, path)
        if latest is not None and latest.sha256 == sha256:
            return Reservation(path, None)
    highest = union_all(
        select(func.max(Version.number).label("number")).where(_of(workspace, path)),
        select(func.max(ReservedVersion.number)).where(
            ReservedVersion.workspace == workspace, ReservedVersion.path == path
        ),
    ).subquery()
    following = select(func.coalesce(func.max(highest.c.number), 0) + 1).scalar_subquery()
    unindexed = ~exists().where(Version.store_key == store_key)
    statement = (
        _insert_for(session)(ReservedVersion)
        .from_select(
            [
                ReservedVersion.store_key,
                ReservedVersion.workspace,
                ReservedVersion.path,
                ReservedVersion.number,
                ReservedVersion.sha256,
            ],
            # SQLite parses ON CONFLICT after INSERT ... SELECT only after a WHERE.
            select(
                literal(store_key), literal(workspace), literal(path), following, literal(sha256)
            ).where(unindexed),
        )
        .on_conflict_do_nothing(index_elements=["store_key"])
        .returning(ReservedVersion.number)
    )
    number: int | None = (await session.execute(statement)).scalar()
    if number is not None:
        return Reservation(path, number)
    holder = await session.get(ReservedVersion, store_key) or await version_by_key(
        session, store_key
    )
    assert holder is not None, "the key is reserved or indexed, or the insert would be made"
    return Reservation(holder.path, holder.number) if holder.sha256 == sha256 else None


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert


async def release_reservation(session: AsyncSession, store_key: str) -> None:
    """Give back a number whose key turned out to be taken in the store."""
    await session.execute(delete(ReservedVersion).where(ReservedVersion.store_key == store_key))


async def add_version(
    session: AsyncSession,
    *,
    workspace: str,
    store_key: str,
    size: int,
    sha256: str,
    queued_at: datetime,
    archived_at: datetime,
    stored_size: int | None = None,
) -> Version:
    """Index a stored object under the path and number reserved for it, which a rename
    made since may have changed (once: a replay returns the row)."""
    # Not while a rename moves the reservation: it would index the version by the old name.
    await path_changes.lock_renames(session, workspace, exclusive=False)
    taken = delete(ReservedVersion).where(ReservedVersion.store_key == store_key)
    reserved = (
        await session.execute(taken.returning(ReservedVersion.path, ReservedVersion.number))
    ).first()
    if reserved is None:  # a replay: indexed already
        existing = await version_by_key(session, store_key)
        assert existing is not None, "a version is indexed only once its number is reserved"
        return existing
    path, number = reserved
    values = {
        "workspace": workspace,
        "path": path,
        "number": number,
        "store_key": store_key,
        "size": size,
        "stored_size": stored_size,
        "sha256": sha256,
        "queued_at": queued_at,
        "archived_at": archived_at,
        "label": None,
        "pinned": False,
    }
    statement = (
        _insert_for(session)(Version)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["store_key"])
        .returning(Version.number)
    )
    inserted = (await session.execute(statement)).scalar()
    if inserted is None:  # indexed meanwhile by another server replaying the same save
        existing = await version_by_key(session, store_key)
        assert existing is not None, "the insert conflicted on store_key"
        return existing
    return Version(**values)


_STORED_SIZE = func.coalesce(Version.stored_size, Version.size)


async def storage_totals(session: AsyncSession, workspace: str) -> StorageTotals:
    """The workspace's versions, bytes saved and bytes stored."""
    query = select(func.count(), func.sum(Version.size), func.sum(_STORED_SIZE)).where(
        Version.workspace == workspace
    )
    count, logical, stored = (await session.execute(query)).one()
    return StorageTotals(count, int(logical or 0), int(stored or 0))


def _under(folder: str | None) -> list[ColumnElement[bool]]:
    """A condition keeping the paths inside ``folder``: compared exactly, where SQLite's
    ``LIKE`` would ignore case."""
    if not folder:
        return []
    inside = f"{folder}/"
    return [func.substr(Version.path, 1, len(inside)) == inside]


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Conditions keeping versions saved between ``since`` and ``until`` (inclusive)."""
    conditions = []
    if since is not None:
        conditions.append(Version.queued_at >= since)
    if until is not None:
        conditions.append(Version.queued_at <= until)
    return conditions


async def list_paths(
    session: AsyncSession,
    workspace: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    under: str | None = None,
) -> list[PathSummary]:
    """Every archived path (deleted notebooks included), most recently saved first;
    ``under``: only the paths in that folder."""
    latest = func.max(Version.queued_at)
    query = (
        select(Version.path, func.count(), latest, func.sum(Version.size), func.sum(_STORED_SIZE))
        .where(Version.workspace == workspace, *_window(since, until), *_under(under))
        .group_by(Version.path)
    )
    rows = await session.execute(query.order_by(latest.desc(), Version.path))
    return [
        PathSummary(path, count, when, int(size), int(stored))
        for path, count, when, size, stored in rows
    ]


async def list_versions(
    session: AsyncSession,
    workspace: str,
    path: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
    newest: bool = False,
) -> list[Version]:
    """Versions of ``path``, oldest first: a page of ``limit`` after ``offset`` of them,
    counted from the oldest, or with ``newest`` from the newest."""
    query = select(Version).where(_of(workspace, path), *_window(since, until))
    order = Version.number.desc() if newest else Version.number
    rows = await session.scalars(query.order_by(order).offset(offset).limit(limit))
    return sorted(rows, key=lambda row: row.number)


async def get_version(
    session: AsyncSession, workspace: str, path: str, number: int
) -> Version | None:
    """Version number ``number`` of ``path``."""
    query = select(Version).where(_of(workspace, path), Version.number == number)
    return (await session.scalars(query)).first()


async def version_at(
    session: AsyncSession, workspace: str, path: str, moment: datetime
) -> Version | None:
    """The newest version of ``path`` saved at or before ``moment``."""
    query = (
        select(Version)
        .where(_of(workspace, path), Version.queued_at <= moment)
        .order_by(Version.number.desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def version_with_sha256(
    session: AsyncSession, workspace: str, path: str, sha256: str
) -> Version | None:
    """A version of ``path`` with exactly this content, if one is archived."""
    query = select(Version).where(_of(workspace, path), Version.sha256 == sha256).limit(1)
    return (await session.scalars(query)).first()


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (what people read as p50, p95)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def archive_stats(
    session: AsyncSession,
    workspace: str,
    *,
    by: str = "path",
    path: str | None = None,
    under: str | None = None,
) -> list[dict[str, Any]]:
    """Versions, bytes saved, bytes stored (and their ratio) and archive latency per path
    or per UTC day, from ``archive_latency``; ``under``: only of the paths in that folder.

    Percentiles are computed here rather than in SQL, which has no portable
    percentile function across SQLite and PostgreSQL.
    """
    latency = table(
        "archive_latency",
        column("workspace"),
        column("path"),
        column("version"),
        column("latency_ms"),
    )
    same_version = (
        (latency.c.workspace == Version.workspace)
        & (latency.c.path == Version.path)
        & (latency.c.version == Version.number)
    )
    query = (
        select(Version.path, Version.queued_at, Version.size, _STORED_SIZE, latency.c.latency_ms)
        .join(latency, same_version)
        .where(Version.workspace == workspace, *_under(under))
    )
    if path is not None:
        query = query.where(Version.path == path)
    groups: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for row_path, queued_at, size, stored, latency_ms in await session.execute(query):
        key = row_path if by == "path" else queued_at.date().isoformat()
        latencies, sizes, stored_sizes = groups.setdefault(key, ([], [], []))
        latencies.append(float(latency_ms))
        sizes.append(size)
        stored_sizes.append(stored)
    result = []
    for key, (latencies, sizes, stored_sizes) in sorted(groups.items()):
        latencies.sort()
        logical, stored = sum(sizes), sum(stored_sizes)
        result.append(
            {
                "group": key,
                "versions": len(latencies),
                "bytes": logical,
                "stored_bytes": stored,
                "ratio": stored / logical if logical else None,
                "p50_ms": _percentile(latencies, 0.50),
                "p95_ms": _percentile(latencies, 0.95),
                "max_ms": latencies[-1],
            }
        )
    return result


async def longest_path(session: AsyncSession, workspace: str) -> int:
    """The length of the longest path with versions in ``workspace`` (to align columns)."""
    query = select(func.max(func.length(Version.path))).where(Version.workspace == workspace)
    return await session.scalar(query) or 0


async def count_versions_of(session: AsyncSession, workspace: str, path: str) -> int:
    """How many versions ``path`` has."""
    query = select(func.count()).select_from(Version).where(_of(workspace, path))
    return await session.scalar(query) or 0


async def count_versions(session: AsyncSession, workspace: str) -> int:
    """How many versions ``workspace`` has (none: the index needs filling from the store)."""
    query = select(func.count()).select_from(Version).where(Version.workspace == workspace)
    return await session.scalar(query) or 0


async def workspaces_under(session: AsyncSession, prefix: str) -> list[str]:
    """Every workspace with versions whose name starts with ``prefix``, in name order."""
    found = await session.scalars(
        select(Version.workspace)
        .where(Version.workspace.startswith(prefix, autoescape=True))
        .distinct()
        .order_by(Version.workspace)
    )
    return list(found)


async def workspace_versions(session: AsyncSession, workspace: str) -> list[Version]:
    """Every version in ``workspace``, by path and number."""
    query = select(Version).where(Version.workspace == workspace)
    return list(await session.scalars(query.order_by(Version.path, Version.number)))


async def add_versions(session: AsyncSession, rows: Iterable[Version]) -> None:
    """Index versions found in the store, numbered by the caller."""
    session.add_all(rows)
    await session.flush()


async def set_stored_size(session: AsyncSession, store_key: str, stored_size: int) -> bool:
    """Record what a version costs in the store now; whether it is still indexed."""
    statement = update(Version).where(Version.store_key == store_key)
    result = await session.execute(statement.values(stored_size=stored_size))
    return bool(getattr(result, "rowcount", 0))


async def fix_version(session: AsyncSession, row_id: int, sha256: str, size: int) -> None:
    """Make a row agree with the object it points to."""
    await session.execute(
        update(Version).where(Version.id == row_id).values(sha256=sha256, size=size)
    )


async def annotated_versions(session: AsyncSession, workspace: str, path: str) -> list[Version]:
    """The versions of ``path`` with a label or a pin."""
    query = select(Version).where(
        _of(workspace, path), or_(Version.label.is_not(None), Version.pinned)
    )
    return list(await session.scalars(query.order_by(Version.number)))


async def set_annotation(
    session: AsyncSession, workspace: str, path: str, number: int, label: str | None, pinned: bool
) -> None:
    """Give version ``number`` of ``path`` this label and pin."""
    await session.execute(
        update(Version)
        .where(_of(workspace, path), Version.number == number)
        .values(label=label, pinned=pinned)
    )


async def pruned_keys(
    session: AsyncSession, workspace: str, *, limit: int | None = None
) -> list[str]:
    """Keys an interrupted prune left in ``workspace`` (the first ``limit`` of them)."""
    mine = select(PrunedObject.store_key).where(PrunedObject.workspace == workspace)
    return list(await session.scalars(mine.order_by(PrunedObject.store_key).limit(limit)))


class VersionBrief(NamedTuple):
    """What retention and prune need of a version, without an ORM object per row."""

    id: int
    path: str
    number: int
    store_key: str
    queued_at: datetime
    label: str | None
    pinned: bool


async def stream_versions(session: AsyncSession, workspace: str) -> AsyncIterator[VersionBrief]:
    """Every version in ``workspace`` by path and number, fetched a thousand rows at a time."""
    columns = (
        Version.id,
        Version.path,
        Version.number,
        Version.store_key,
        Version.queued_at,
        Version.label,
        Version.pinned,
    )
    query = (
        select(*columns)
        .where(Version.workspace == workspace)
        .order_by(Version.path, Version.number)
        .execution_options(yield_per=1000)
    )
    async for row in await session.stream(query):
        yield VersionBrief(*row)


async def remove_versions(
    session: AsyncSession, workspace: str, rows: Sequence[VersionBrief], pruned_at: datetime
) -> None:
    """Drop rows, listing their keys as pruned objects in the same transaction."""
    await session.execute(delete(Version).where(Version.id.in_([row.id for row in rows])))
    session.add_all(
        PrunedObject(store_key=row.store_key, workspace=workspace, pruned_at=pruned_at)
        for row in rows
    )


async def forget_pruned(session: AsyncSession, store_keys: Sequence[str]) -> None:
    """Stop listing pruned objects that are now deleted from the store."""
    await session.execute(delete(PrunedObject).where(PrunedObject.store_key.in_(store_keys)))


async def read_only_query(session: AsyncSession, sql: str) -> tuple[list[str], list[Any]]:
    """A person's SQL on a read-only connection: the column names and the rows.

    The text goes to the driver as written: ``:name`` in it is SQL, not a parameter.
    """
    connection = await session.connection()
    result = await connection.exec_driver_sql(sql)
    if not result.returns_rows:
        return [], []
    return list(result.keys()), [tuple(row) for row in result]


async def take_lease(
    session: AsyncSession, name: str, holder: str, now: datetime, until: datetime
) -> bool:
    """Hold the lease ``name`` until ``until``, if it is free, expired or ``holder``'s."""
    statement = (
        _insert_for(session)(Lease)
        .values(name=name, holder=holder, expires_at=until)
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "expires_at": until},
            where=(Lease.expires_at < now) | (Lease.holder == holder),
        )
        .returning(Lease.holder)
    )
    return (await session.execute(statement)).scalar() == holder
