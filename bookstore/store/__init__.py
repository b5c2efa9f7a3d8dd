"""Object stores for immutable notebook versions: the ``Store`` interface and its backends.

The backends are imported on first use: the S3 one brings in aiobotocore,
which a local-store install or a quick command should not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bookstore.store.base import ObjectInfo, Store, StoredObject

if TYPE_CHECKING:
    from bookstore.store.local import LocalStore
    from bookstore.store.memory import MemoryStore
    from bookstore.store.s3 import S3Store

__all__ = ["LocalStore", "MemoryStore", "ObjectInfo", "S3Store", "Store", "StoredObject"]


def __getattr__(name: str) -> Any:
    if name == "LocalStore":
        from bookstore.store.local import LocalStore

        return LocalStore
    if name == "MemoryStore":
        from bookstore.store.memory import MemoryStore

        return MemoryStore
    if name == "S3Store":
        from bookstore.store.s3 import S3Store

        return S3Store
    raise AttributeError(f"module 'bookstore.store' has no attribute {name!r}")
