"""ArchiveRecord: one save, as it travels from the pre-save hook to the store."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

__all__ = ["ArchiveRecord", "HashedRecord"]


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
    """A record with the sha256 of its content, computed once, off the event loop."""

    record: ArchiveRecord
    sha256: str

    @classmethod
    def of(cls, record: ArchiveRecord) -> HashedRecord:
        return cls(record, hashlib.sha256(record.content).hexdigest())
