"""The one place bookstore's errors become HTTP statuses, for every handler and checkpoint."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tornado.web import HTTPError

from bookstore.core.errors import (
    BookstoreError,
    CorruptVersion,
    InvalidPath,
    LimitExceeded,
    NotAllowed,
    NotComparable,
    ObjectNotFound,
    Refused,
    ServiceRefused,
    ServiceUnavailable,
    StoreError,
    VersionNotFound,
)

__all__ = ["http_errors"]

_STATUS: list[tuple[type[Exception], int]] = [
    (InvalidPath, 400),
    (NotAllowed, 403),
    (VersionNotFound, 404),
    (ObjectNotFound, 404),
    (Refused, 409),
    (ServiceUnavailable, 503),
    (ServiceRefused, 503),
    (CorruptVersion, 422),
    (NotComparable, 422),
    (StoreError, 503),
    (LimitExceeded, 413),
    (BookstoreError, 500),
]


@contextmanager
def http_errors() -> Iterator[None]:
    """Translate bookstore's errors raised inside the block into ``HTTPError`` with words."""
    try:
        yield
    except BookstoreError as exc:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        raise HTTPError(status, str(exc)) from exc
    except Exception as exc:
        if not _index_error(exc):
            raise
        raise HTTPError(503, "the version index cannot be read now; try again shortly") from exc


def _index_error(exc: Exception) -> bool:
    """Whether SQLAlchemy raised ``exc``: looked up only if it was imported, as a server in
    service mode never imports it."""
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_errors is not None and isinstance(exc, sqlalchemy_errors.SQLAlchemyError)
