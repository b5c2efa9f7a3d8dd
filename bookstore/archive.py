"""The original bookstore's import path: ``from bookstore.archive import ArchiveRecord,
BookstoreContentsArchiver`` works as it always has."""

from __future__ import annotations

from bookstore.core.record import ArchiveRecord
from bookstore.server.contents_manager import BookstoreContentsArchiver

__all__ = ["ArchiveRecord", "BookstoreContentsArchiver"]
