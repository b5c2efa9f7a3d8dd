"""What every surface knows of an archived version and an archived path, wherever the
history is read from: the index (a server archiving directly, the command line)
or the archive service (a server in service mode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

__all__ = [
    "Origin",
    "PathSummary",
    "StorageTotals",
    "VersionRecord",
    "describe_path",
    "describe_version",
]


class VersionRecord(Protocol):
    """One archived version: an index row, or the service's description of one."""

    @property
    def path(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def store_key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def queued_at(self) -> datetime: ...
    @property
    def archived_at(self) -> datetime: ...
    @property
    def label(self) -> str | None: ...
    @property
    def pinned(self) -> bool: ...


class PathSummary(NamedTuple):
    """One archived path: how many versions, when last saved, and their bytes."""

    path: str
    versions: int
    latest_queued_at: datetime
    total_bytes: int
    stored_bytes: int
    """What its versions cost in the store (``Version.stored_size``)."""


class StorageTotals(NamedTuple):
    """A workspace's versions, the bytes they saved, and what they cost in the store."""

    versions: int
    total_bytes: int
    stored_bytes: int

    def describe(self) -> dict[str, Any]:
        ratio = self.stored_bytes / self.total_bytes if self.total_bytes else None
        return {**self._asdict(), "ratio": ratio}


class Origin(NamedTuple):
    """The file a copy was made from, and the version of it the copy began with."""

    path: str
    version: int | None
    """``None`` when none of the source's versions was archived before the copy."""
    copied_at: datetime

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "version": self.version, "copied_at": self.copied_at.isoformat()}


def describe_version(version: VersionRecord, saved_as: str) -> dict[str, Any]:
    """A version as JSON surfaces give it (``list --json``, the REST APIs);
    ``saved_as``: the name it was saved under."""
    latency = (version.archived_at - version.queued_at).total_seconds() * 1000
    return {
        "path": version.path,
        "saved_as": saved_as,
        "version": version.number,
        "store_key": version.store_key,
        "size": version.size,
        "sha256": version.sha256,
        "queued_at": version.queued_at.isoformat(),
        "archived_at": version.archived_at.isoformat(),
        "latency_ms": round(latency, 3),
        "label": version.label,
        "pinned": version.pinned,
    }


def describe_path(summary: PathSummary, exists: bool) -> dict[str, Any]:
    """An archived path as JSON surfaces give it; ``exists``: whether its file is there."""
    return {
        "path": summary.path,
        "versions": summary.versions,
        "latest_queued_at": summary.latest_queued_at.isoformat(),
        "total_bytes": summary.total_bytes,
        "stored_bytes": summary.stored_bytes,
        "exists": exists,
    }
