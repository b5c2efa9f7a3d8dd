"""The index schema: one row per archived version. Migrations in ``migrations/`` create it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Index, String, Text, UniqueConstraint, types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Lease",
    "PathChange",
    "PrunedObject",
    "ReservedVersion",
    "UTCDateTime",
    "Version",
]


class UTCDateTime(types.TypeDecorator[datetime]):
    """Timestamps stored as naive UTC, returned as aware UTC, on every database.

    SQLite keeps no time zone, so storing naive UTC everywhere makes the raw
    values comparable in SQL and identical across SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("index timestamps must be timezone-aware")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the index tables."""


class Version(Base):
    """One archived version of one path; its ``number`` (column ``version``) counts 1, 2, 3
    per path.

    ``workspace`` is the key prefix the version lives under (one per user when
    ``workspace_prefix`` holds ``{username}``): each user numbers, lists and
    prunes only their own versions in an index many share.
    """

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("workspace", "path", "version", name="uq_versions_workspace_path_version"),
        UniqueConstraint("store_key", name="uq_versions_store_key"),
        Index("ix_versions_queued_at", "queued_at"),
        Index("ix_versions_sha256", "workspace", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str] = mapped_column(String(4096))
    number: Mapped[int] = mapped_column("version")
    store_key: Mapped[str] = mapped_column(String(8192))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stored_size: Mapped[int | None] = mapped_column(BigInteger(), default=None)
    """The bytes the version added to the store: its object and the parts it first kept."""
    label: Mapped[str | None] = mapped_column(String(1024), default=None)
    pinned: Mapped[bool] = mapped_column(default=False)


class PrunedObject(Base):
    """An object whose version was pruned; listed until the object itself is deleted.

    Prune removes index rows and writes these in one transaction, then deletes
    the objects: a prune interrupted in between leaves a list of leftovers that
    the next prune finishes and that reindex does not bring back.
    """

    __tablename__ = "pruned_objects"

    store_key: Mapped[str] = mapped_column(String(8192), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(1024))
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReservedVersion(Base):
    """A version number taken for a save before its object is uploaded.

    The number is written into the object's metadata, so the index rebuilt from
    the store numbers versions exactly as before, even when several servers
    archive one path at once. The row becomes a ``versions`` row once indexed.
    """

    __tablename__ = "reserved_versions"
    __table_args__ = (
        UniqueConstraint("workspace", "path", "version", name="uq_reserved_workspace_path_version"),
    )

    store_key: Mapped[str] = mapped_column(String(8192), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str] = mapped_column(String(4096))
    number: Mapped[int] = mapped_column("version")
    sha256: Mapped[str] = mapped_column(String(64))


class PathChange(Base):
    """A rename or a copy made through Jupyter, which a history follows.

    A version saved under ``from_path`` (or, for a folder, under it) before
    ``changed_at`` belongs to the file renamed to ``to_path``; a copy records the
    file its first version was copied from. ``renumbered`` (JSON, store key to
    number) lists the versions a rename gave new numbers, which happens only when
    the new name already had a history. ``recorded`` says whether the store holds
    the change too, at ``record_key``, so that an index rebuilt from it replays it.
    """

    __tablename__ = "path_changes"
    __table_args__ = (
        Index("ix_path_changes_from", "workspace", "from_path"),
        Index("ix_path_changes_to", "workspace", "to_path"),
    )

    record_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    from_path: Mapped[str] = mapped_column(String(4096))
    to_path: Mapped[str] = mapped_column(String(4096))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renumbered: Mapped[str] = mapped_column(Text, default="{}")
    recorded: Mapped[bool] = mapped_column(default=False)


class Lease(Base):
    """A scheduled job that one server of a workspace runs at a time, held until it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
