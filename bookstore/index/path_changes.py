"""Index queries for renames and copies: re-pathing a history, and following renames.

A rename moves the rows of the versions (and of the numbers reserved for saves
being uploaded) from the old name to the new, in one transaction; a version
saved under the old name and archived later is filed under the new one by
``current_path``. On PostgreSQL a rename waits for the reservations under way in
its workspace, and they for it (``lock_renames``), so no save is numbered under a
name that has just been renamed away.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.core import keys
from bookstore.core.changes import COPY, RENAME, Change, ancestors
from bookstore.index.models import PathChange, ReservedVersion, Version

__all__ = [
    "add_change",
    "all_changes",
    "annotated_paths",
    "apply_recorded_rename",
    "copy_of",
    "current_path",
    "latest_with_sha256",
    "lock_renames",
    "mark_recorded",
    "rename_paths",
    "unrecorded_changes",
]


def _saved_before(workspace: str, store_key: str, moment: datetime) -> bool:
    named = keys.parse_version_key(workspace, store_key)
    return named is None or named.queued_time < moment


def _at_or_under(column: Any, path: str) -> ColumnElement[bool]:
    """``column`` names ``path`` or a path inside the folder ``path``."""
    inside = f"{path}/"
    result: ColumnElement[bool] = (column == path) | (func.substr(column, 1, len(inside)) == inside)
    return result


_RENAMES_LOCKS = 0x72656E61  # "rena": the key space of the renames locks, apart from the paths'


async def lock_renames(session: AsyncSession, workspace: str, *, exclusive: bool) -> None:
    """On PostgreSQL, a rename (``exclusive``) and the reservations and indexing of a
    workspace's versions take turns; those share the lock. SQLite's write
    transactions already do."""
    if session.get_bind().dialect.name != "postgresql":
        return
    take = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    await session.execute(select(take(_RENAMES_LOCKS, func.hashtext(workspace))))


async def current_path(session: AsyncSession, workspace: str, path: str, saved_at: datetime) -> str:
    """The name that the file saved as ``path`` at ``saved_at`` has now.

    Asked for every save: columns, not ORM objects, so it costs little when, as
    nearly always, no rename matches.
    """
    while True:
        query = (
            select(PathChange.from_path, PathChange.to_path, PathChange.changed_at)
            .where(
                PathChange.workspace == workspace,
                PathChange.kind == RENAME,
                PathChange.from_path.in_(ancestors(path)),
                PathChange.changed_at > saved_at,
            )
            .order_by(PathChange.changed_at, PathChange.record_key)
            .limit(1)
        )
        change = (await session.execute(query)).first()
        if change is None:
            return path
        # Each step goes later in time, so a chain of renames ends.
        from_path, to_path, changed_at = change
        path = to_path + path[len(from_path) :]
        saved_at = changed_at


async def rename_paths(
    session: AsyncSession, workspace: str, old: str, new: str, before: datetime
) -> dict[str, int]:
    """Move the history of ``old`` (a file, or every file in a folder) to ``new``: the
    versions saved ``before`` the rename, and the numbers reserved for saves under way.

    Versions keep their numbers, unless the new name already has a history (a
    file once kept there and deleted): then the moved ones follow its highest
    number, in their order. Returns those renumbered, by store key.
    """
    await lock_renames(session, workspace, exclusive=True)
    renumbered: dict[str, int] = {}
    tables: Sequence[Any] = (Version, ReservedVersion)
    reserved = select(ReservedVersion.store_key).where(
        ReservedVersion.workspace == workspace, _at_or_under(ReservedVersion.path, old)
    )
    # A reservation's save time is in its key: those of saves made after the rename stay.
    earlier = [
        key for key in await session.scalars(reserved) if _saved_before(workspace, key, before)
    ]
    moves = {
        Version: _at_or_under(Version.path, old) & (Version.queued_at < before),
        ReservedVersion: ReservedVersion.store_key.in_(earlier),
    }
    highest: dict[str, int] = {}
    for table in tables:
        query = (
            select(table.path, func.max(table.number))
            .where(table.workspace == workspace, _at_or_under(table.path, new))
            .group_by(table.path)
        )
        for path, number in await session.execute(query):
            highest[path] = max(highest.get(path, 0), number)
    if highest:
        moving: list[tuple[Any, str, int, str]] = []
        for table in tables:
            query = select(table.path, table.number, table.store_key).where(
                table.workspace == workspace, moves[table]
            )
            moving.extend((table, *row) for row in await session.execute(query))
        for table, path, _, key in sorted(moving, key=lambda row: (row[2], row[1])):
            target = new + path[len(old) :]
            if target not in highest:
                continue
            highest[target] += 1
            renumbered[key] = highest[target]
            await session.execute(
                update(table)
                .where(table.store_key == key)
                .values(path=target, number=highest[target])
            )
    for table in tables:
        await session.execute(
            update(table)
            .where(table.workspace == workspace, moves[table])
            .values(path=literal(new) + func.substr(table.path, len(old) + 1))
        )
    return renumbered


async def apply_recorded_rename(session: AsyncSession, workspace: str, change: Change) -> None:
    """Move the rows a rename kept in the store moved, numbered as it numbered them: for
    an index that missed it (restored from a backup taken before the rename)."""
    moving = _at_or_under(Version.path, change.from_path) & (Version.queued_at < change.changed_at)
    if change.renumbered:
        query = select(Version.store_key, Version.path).where(
            Version.workspace == workspace, moving, Version.store_key.in_(change.renumbered)
        )
        for key, path in (await session.execute(query)).all():
            await session.execute(
                update(Version)
                .where(Version.store_key == key)
                .values(
                    path=change.to_path + path[len(change.from_path) :],
                    number=change.renumbered[key],
                )
            )
    await session.execute(
        update(Version)
        .where(Version.workspace == workspace, moving)
        .values(path=literal(change.to_path) + func.substr(Version.path, len(change.from_path) + 1))
    )


async def add_change(
    session: AsyncSession,
    workspace: str,
    record_key: str,
    change: Change,
    *,
    recorded: bool = False,
) -> None:
    """List a rename or copy; ``recorded``: the store holds it already."""
    session.add(
        PathChange(
            record_key=record_key,
            workspace=workspace,
            kind=change.kind,
            from_path=change.from_path,
            to_path=change.to_path,
            changed_at=change.changed_at,
            renumbered=json.dumps(dict(change.renumbered), sort_keys=True),
            recorded=recorded,
        )
    )
    await session.flush()


async def has_change(session: AsyncSession, workspace: str, change: Change) -> bool:
    """Whether the index lists this very change (its kind, paths and time) already."""
    query = select(PathChange.record_key).where(
        PathChange.workspace == workspace,
        PathChange.kind == change.kind,
        PathChange.from_path == change.from_path,
        PathChange.to_path == change.to_path,
        PathChange.changed_at == change.changed_at,
    )
    return (await session.scalars(query.limit(1))).first() is not None


def _as_change(row: PathChange) -> Change:
    return Change(row.kind, row.from_path, row.to_path, row.changed_at, json.loads(row.renumbered))


async def unrecorded_changes(session: AsyncSession, workspace: str) -> list[tuple[str, Change]]:
    """The changes the store does not hold yet, oldest first, with their record keys."""
    query = select(PathChange).where(
        PathChange.workspace == workspace, PathChange.recorded.is_(False)
    )
    rows = await session.scalars(query.order_by(PathChange.changed_at, PathChange.record_key))
    return [(row.record_key, _as_change(row)) for row in rows]


async def mark_recorded(session: AsyncSession, record_key: str) -> None:
    await session.execute(
        update(PathChange).where(PathChange.record_key == record_key).values(recorded=True)
    )


async def all_changes(session: AsyncSession, workspace: str) -> dict[str, Change]:
    """Every change the index lists for ``workspace``, by record key."""
    rows = await session.scalars(select(PathChange).where(PathChange.workspace == workspace))
    return {row.record_key: _as_change(row) for row in rows}


async def copy_of(session: AsyncSession, workspace: str, path: str) -> Change | None:
    """The copy that made the file now named ``path``, if it was made by copying another
    file, as it was recorded (naming the copy as it was named then)."""
    names = await _former_names(session, workspace, path)
    query = (
        select(PathChange)
        .where(
            PathChange.workspace == workspace,
            PathChange.kind == COPY,
            PathChange.to_path.in_(names),
        )
        .order_by(PathChange.changed_at.desc())
    )
    for row in await session.scalars(query):
        if await current_path(session, workspace, row.to_path, row.changed_at) == path:
            return _as_change(row)
    return None


async def _former_names(session: AsyncSession, workspace: str, path: str) -> list[str]:
    """``path`` and the names that renames into it (or into its folders) gave up, newest
    first: every name its file may have had."""
    names = [path]
    before: datetime | None = None
    while True:
        query = select(PathChange).where(
            PathChange.workspace == workspace,
            PathChange.kind == RENAME,
            PathChange.to_path.in_(ancestors(names[-1])),
        )
        if before is not None:
            query = query.where(PathChange.changed_at < before)
        latest = query.order_by(PathChange.changed_at.desc(), PathChange.record_key).limit(1)
        change = (await session.scalars(latest)).first()
        if change is None:
            return names
        # Each step goes earlier in time, so the walk ends.
        names.append(change.from_path + names[-1][len(change.to_path) :])
        before = change.changed_at


async def latest_with_sha256(session: AsyncSession, workspace: str, sha256: str) -> list[str]:
    """The paths whose newest version has exactly this content, most recently saved first."""
    newer = Version.__table__.alias("newer")
    query = (
        select(Version.path)
        .where(Version.workspace == workspace, Version.sha256 == sha256)
        .where(
            ~select(newer.c.id)
            .where(
                newer.c.workspace == Version.workspace,
                newer.c.path == Version.path,
                newer.c.version > Version.number,
            )
            .exists()
        )
        .order_by(Version.queued_at.desc())
    )
    return list(await session.scalars(query))


async def annotated_paths(session: AsyncSession, workspace: str, path: str) -> list[str]:
    """The paths at or under ``path`` with a labelled or pinned version."""
    query = (
        select(Version.path)
        .where(
            Version.workspace == workspace,
            _at_or_under(Version.path, path),
            Version.label.is_not(None) | Version.pinned,
        )
        .distinct()
    )
    return list(await session.scalars(query))
