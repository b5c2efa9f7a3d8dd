"""A ``Store`` that passes every call on, for tests that change one operation of a real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from bookstore.core.body import Body
from bookstore.store import MemoryStore, ObjectInfo, Store, StoredObject

__all__ = ["DelegatingStore"]


class DelegatingStore:
    """Passes every call to ``inner`` (a ``MemoryStore`` unless given); subclasses
    override the operation whose behaviour a test needs to change."""

    def __init__(self, inner: Store | None = None) -> None:
        self.inner: Store = inner if inner is not None else MemoryStore()
        self.description = f"test wrapper of {self.inner.description}"

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        await self.inner.put(key, data, metadata, overwrite=overwrite)

    async def get(self, key: str) -> StoredObject:
        return await self.inner.get(key)

    async def head(self, key: str) -> StoredObject:
        return await self.inner.head(key)

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        return self.inner.list(prefix)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def check(self) -> None:
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()
