"""Reading history back: find a version, fetch its bytes, and prove they are intact.

Shared by the command line and the server, so every surface applies the same checks
before it hands a stored version to a person.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.errors import CorruptVersion, ObjectNotFound, VersionNotFound
from bookstore.index import Version, queries
from bookstore.store.base import Store

__all__ = ["describe_version", "fetch_version", "find_version", "validate_notebook"]


def describe_version(row: Version) -> dict[str, Any]:
    """A version as JSON surfaces give it (``list --json``, the REST API)."""
    latency = (row.archived_at - row.queued_at).total_seconds() * 1000
    return {
        "path": row.path,
        "version": row.version,
        "store_key": row.store_key,
        "size": row.size,
        "sha256": row.sha256,
        "queued_at": row.queued_at.isoformat(),
        "archived_at": row.archived_at.isoformat(),
        "latency_ms": round(latency, 3),
        "label": row.label,
        "pinned": row.pinned,
    }


async def find_version(
    session: AsyncSession,
    workspace: str,
    path: str,
    version: int | None = None,
    at: datetime | None = None,
) -> Version:
    """Version ``version`` of ``path``, or its newest at or before ``at``, or its latest."""
    if version is not None:
        row = await queries.get_version(session, workspace, path, version)
        wanted = f"version {version} of {path!r}"
    elif at is not None:
        row = await queries.version_at(session, workspace, path, at)
        wanted = f"a version of {path!r} saved at or before {at.isoformat()}"
    else:
        row = await queries.latest_version(session, workspace, path)
        wanted = f"an archived version of {path!r}"
    if row is None:
        raise VersionNotFound(f"there is no {wanted} in the index")
    return row


async def fetch_version(store: Store, row: Version) -> bytes:
    """The version's bytes, after checking them against the sha256 the index recorded."""
    try:
        stored = await store.get(row.store_key)
    except ObjectNotFound as exc:
        raise CorruptVersion(
            f"version {row.version} of {row.path!r} is missing from the store ({row.store_key}); "
            "`bookstore-history verify` lists every such version"
        ) from exc
    if hashlib.sha256(stored.data).hexdigest() != row.sha256:
        raise CorruptVersion(
            f"version {row.version} of {row.path!r} is damaged in the store: its bytes do not "
            f"match the sha256 recorded when it was archived ({row.store_key})"
        )
    if row.path.endswith(".ipynb"):
        validate_notebook(stored.data, f"version {row.version} of {row.path!r}")
    return stored.data


def validate_notebook(content: bytes, what: str) -> None:
    """Refuse bytes that are not a notebook nbformat can read and validate."""
    import nbformat

    try:
        notebook = nbformat.reads(content.decode("utf-8"), as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    except Exception as exc:  # nbformat raises assorted errors for unreadable files
        raise CorruptVersion(f"{what} is not a valid notebook: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
