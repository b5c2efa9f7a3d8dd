"""A ``Store`` in a dictionary: the same contract as the others, for fast in-process tests.

Nothing survives the process, so it is never a configured backend; it exists
so that the archiver and the history service can be tested without a disk or
a network, while the contract suite keeps it honest against the real ones.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone

from bookstore.core.body import Body, read_whole
from bookstore.core.errors import ObjectConflict, ObjectNotFound
from bookstore.store.base import ObjectInfo, StoredObject

__all__ = ["MemoryStore"]


class MemoryStore:
    """Immutable versions in memory; every operation completes without awaiting anything."""

    def __init__(self, description: str = "memory") -> None:
        self.description = description
        self._objects: dict[str, tuple[StoredObject, datetime]] = {}

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        """Keep ``data`` unless ``key`` holds other bytes (or replace it, with ``overwrite``)."""
        content = read_whole(data)
        existing = self._objects.get(key)
        if existing is not None and not overwrite:
            if existing[0].data != content:
                raise ObjectConflict(key)
            return
        stored = StoredObject(key, content, dict(metadata))
        self._objects[key] = (stored, datetime.now(timezone.utc))

    async def get(self, key: str) -> StoredObject:
        """The object's bytes and metadata."""
        try:
            stored, _ = self._objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None
        return StoredObject(key, stored.data, dict(stored.metadata))

    async def head(self, key: str) -> StoredObject:
        """The object's metadata; ``data`` is ``b""``."""
        stored = await self.get(key)
        return stored._replace(data=b"")

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        found: builtins.list[ObjectInfo] = [
            ObjectInfo(key, len(stored.data), modified)
            for key, (stored, modified) in self._objects.items()
            if key.startswith(prefix)
        ]
        for info in sorted(found):
            yield info

    async def delete(self, key: str) -> None:
        """Forget an object; a missing key is not an error."""
        self._objects.pop(key, None)

    async def check(self) -> None:
        """Always usable."""

    async def close(self) -> None:
        """Nothing to release."""
