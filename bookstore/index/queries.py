"""Index queries. Each takes the session first; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.index.models import Version

__all__ = ["add_version", "count_versions", "latest_version", "version_by_key"]


async def latest_version(session: AsyncSession, path: str) -> Version | None:
    """The newest version of ``path``, or ``None`` before its first."""
    query = select(Version).where(Version.path == path).order_by(Version.version.desc()).limit(1)
    return (await session.scalars(query)).first()


async def version_by_key(session: AsyncSession, store_key: str) -> Version | None:
    """The version stored at ``store_key``, if it is indexed."""
    return (await session.scalars(select(Version).where(Version.store_key == store_key))).first()


async def add_version(
    session: AsyncSession,
    *,
    path: str,
    store_key: str,
    size: int,
    sha256: str,
    queued_at: datetime,
    archived_at: datetime,
) -> Version:
    """Index a stored object as the next version of its path (once: a replay returns the row)."""
    existing = await version_by_key(session, store_key)
    if existing is not None:
        return existing
    highest = await session.scalar(select(func.max(Version.version)).where(Version.path == path))
    row = Version(
        path=path,
        version=(highest or 0) + 1,
        store_key=store_key,
        size=size,
        sha256=sha256,
        queued_at=queued_at,
        archived_at=archived_at,
    )
    session.add(row)
    await session.flush()
    return row


async def count_versions(session: AsyncSession) -> int:
    """How many versions the index holds."""
    return await session.scalar(select(func.count()).select_from(Version)) or 0
