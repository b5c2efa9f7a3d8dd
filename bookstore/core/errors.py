"""Domain errors, each translated to words or a status at exactly one boundary.

BookstoreError
├── ConfigurationError      a setting has a value bookstore cannot use (fatal at start-up)
├── StoreError              anything the object store reports
│   ├── ObjectNotFound      the key holds no object
│   ├── ObjectConflict      the key already holds different bytes (versions are immutable)
│   └── StoreUnavailable    the store cannot be used right now (network, credentials,
│                           missing bucket); archiving retries until it can
├── ServiceUnavailable      the archive service cannot be reached or cannot answer now
├── ServiceRefused          the archive service refused the token (no scope, revoked)
├── InvalidPath             a notebook path that could escape its prefix (``..``, NUL, ...)
├── IndexMissing            the index database does not exist or cannot be opened
├── IndexUnavailable        the index's database server cannot be reached
├── VersionNotFound         no such archived path, version or time
├── CorruptVersion          a stored version does not match its sha256, or is not a valid
│                           notebook where one must be (a clone, a publication)
├── NotComparable           a diff was asked of something that is not a notebook
├── Refused                 the operation would lose data (or do nothing useful) unless forced
├── NotAllowed              the configuration does not allow this (a bucket not on the allowlist)
├── OutboxFull              a save cannot be kept for archiving: the outbox's quota or its disk
│                           is full (also an ``OSError``, as a full disk is)
└── LimitExceeded           the work asked for is larger, or takes longer, than bookstore
                            allows one request (a diff of huge notebooks)
"""

from __future__ import annotations

__all__ = [
    "BookstoreError",
    "ConfigurationError",
    "CorruptVersion",
    "IndexMissing",
    "IndexUnavailable",
    "InvalidPath",
    "LimitExceeded",
    "NotAllowed",
    "NotComparable",
    "ObjectConflict",
    "ObjectNotFound",
    "OutboxFull",
    "Refused",
    "ServiceRefused",
    "ServiceUnavailable",
    "StoreError",
    "StoreUnavailable",
    "VersionNotFound",
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


class ServiceUnavailable(BookstoreError):
    """The archive service cannot be reached, or cannot answer now; try again later."""


class ServiceRefused(BookstoreError):
    """The archive service refused the token (401, 403): the message says what it needs."""


class InvalidPath(BookstoreError):
    """A notebook path that is empty, absolute, or could step outside its prefix."""


class IndexMissing(BookstoreError):
    """The index database does not exist yet, or cannot be opened at all."""


class IndexUnavailable(BookstoreError):
    """The index's database server cannot be reached: a wrong host, or it is down."""


class VersionNotFound(BookstoreError):
    """No archived version matches the path, number or time asked for."""


class CorruptVersion(BookstoreError):
    """A stored version's bytes do not match its sha256, or are not a valid notebook."""


class NotComparable(BookstoreError):
    """One side of a diff is not an nbformat 4 notebook; the message says which and why."""


class Refused(BookstoreError):
    """Going ahead would lose data; the message says how to go ahead anyway."""


class NotAllowed(BookstoreError):
    """The configuration forbids it; the message names the setting that would allow it."""


class OutboxFull(BookstoreError, OSError):
    """The outbox may not grow: its quota is reached, or its disk is nearly full.

    An ``OSError`` too, so whatever copes with a full disk copes with it; the save
    itself has succeeded, and the message says why its version is not kept.
    """


class LimitExceeded(BookstoreError):
    """The work is larger, or slower, than bookstore does for one request, so that no
    request can keep the server busy; the message names the limit that was reached."""
