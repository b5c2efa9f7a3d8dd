"""Domain errors, each translated to words or a status at exactly one boundary.

BookstoreError
├── ConfigurationError      a setting has a value bookstore cannot use (fatal at start-up)
├── StoreError              anything the object store reports
│   ├── ObjectNotFound      the key holds no object
│   ├── ObjectConflict      the key already holds different bytes (versions are immutable)
│   └── StoreUnavailable    the store cannot be used right now (network, credentials,
│                           missing bucket); archiving retries until it can
└── InvalidPath             a notebook path that could escape its prefix (``..``, NUL, ...)
"""

from __future__ import annotations

__all__ = [
    "BookstoreError",
    "ConfigurationError",
    "InvalidPath",
    "ObjectConflict",
    "ObjectNotFound",
    "StoreError",
    "StoreUnavailable",
]


class BookstoreError(Exception):
    """Base of every error bookstore raises on purpose."""


class ConfigurationError(BookstoreError):
    """A setting has a value that cannot work; the message names the setting."""


class StoreError(BookstoreError):
    """The object store refused or failed an operation."""


class ObjectNotFound(StoreError):
    """No object is stored at the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object is stored at {key!r}")
        self.key = key


class ObjectConflict(StoreError):
    """A different object already exists at the key; versions are never overwritten."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a different object already exists at {key!r}; versions are immutable")
        self.key = key


class StoreUnavailable(StoreError):
    """The store cannot be used now; the message says why in plain words."""


class InvalidPath(BookstoreError):
    """A notebook path that is empty, absolute, or could step outside its prefix."""
