"""ArchiveRecord: one save, as it travels from the pre-save hook to the store."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from bookstore.core.body import Body, size_of

__all__ = ["ArchiveRecord", "HashedRecord", "sha256_of"]


def sha256_of(data: bytes) -> str:
    """The sha256 a version is recorded and checked by, in lower-case hex."""
    return hashlib.sha256(data).hexdigest()


class ArchiveRecord(NamedTuple):
    """One acknowledged save waiting to be archived.

    Field order follows the original bookstore: ``filepath`` is field 0,
    ``content`` field 1, ``queued_time`` field 2.
    """

    filepath: str
    """The path relative to the server root, ``/``-separated, as the contents API names it."""
    content: bytes
    """The bytes the save wrote to disk: what a restore gives back, byte for byte."""
    queued_time: datetime
    """When the save was made (timezone-aware UTC); it names the version's key."""


class HashedRecord(NamedTuple):
    """A save on its way to the store: its bytes, or where to read them, and their sha256.

    The sha256 is computed once, off the event loop; a large save's bytes stay in
    the file that keeps them (``FileSlice``) until the store reads them in chunks.
    """

    filepath: str
    queued_time: datetime
    body: Body
    sha256: str

    @classmethod
    def of(cls, record: ArchiveRecord) -> HashedRecord:
        return cls(record.filepath, record.queued_time, record.content, sha256_of(record.content))

    @property
    def size(self) -> int:
        return size_of(self.body)
