"""Object stores for immutable notebook versions: the ``Store`` interface and its backends."""

from __future__ import annotations

from bookstore.store.base import ObjectInfo, Store, StoredObject
from bookstore.store.local import LocalStore
from bookstore.store.s3 import S3Store

__all__ = ["LocalStore", "ObjectInfo", "S3Store", "Store", "StoredObject"]
