"""The SQL index of archived versions (derived data: the store is the truth)."""

from __future__ import annotations

from bookstore.index.database import IndexDatabase
from bookstore.index.models import PrunedObject, Version

__all__ = ["IndexDatabase", "PrunedObject", "Version"]
