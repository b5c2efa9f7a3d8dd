"""The storage interface every backend implements, and the value types it returns.

Each method names the errors it raises. Backends translate their own failures
(botocore errors, ``OSError``) into these at their boundary, so the archiver and
the CLI never see a backend-specific exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import NamedTuple, Protocol

from bookstore.core.body import Body

__all__ = ["ObjectInfo", "Store", "StoredObject"]


class ObjectInfo(NamedTuple):
    """What a listing tells about one object: its key, size in bytes, and when it was written."""

    key: str
    size: int
    modified: datetime


class StoredObject(NamedTuple):
    """An object's bytes and the metadata it was written with."""

    key: str
    data: bytes
    metadata: dict[str, str]


class Store(Protocol):
    """An object store of immutable versions.

    Metadata keys are lower-case ASCII; values are ASCII strings (callers
    percent-encode anything else), because S3 user metadata is ASCII-only.
    """

    description: str
    """Where the objects live, in words for logs and errors (``s3://bucket``, a directory)."""

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        """Store ``data`` at ``key`` unless an object is already there.

        Writing the same bytes again is a success (a retried upload); different
        bytes raise ``ObjectConflict``. With ``overwrite`` (published copies,
        never versions) the object is replaced. A ``FileSlice`` is read in chunks,
        never whole, by the stores that keep bytes outside the process. Raises
        ``StoreUnavailable``.
        """
        ...

    async def get(self, key: str) -> StoredObject:
        """Read an object. Raises ``ObjectNotFound``, ``StoreUnavailable``."""
        ...

    async def head(self, key: str) -> StoredObject:
        """Read an object's metadata without its bytes (``data`` is ``b""``).

        Raises ``ObjectNotFound``, ``StoreUnavailable``.
        """
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order.

        Raises ``StoreUnavailable``.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing key is not an error. Raises ``StoreUnavailable``."""
        ...

    async def check(self) -> None:
        """Prove the store is usable now (bucket exists, credentials accepted).

        Raises ``StoreUnavailable`` with a sentence a person can act on.
        """
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
