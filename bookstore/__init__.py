"""bookstore: every save of every Jupyter notebook, kept as a version you can restore."""

from __future__ import annotations

from typing import Any

from bookstore._version import __version__

__all__ = ["BookstoreContentsArchiver", "__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from bookstore.server.extension import BookstoreExtension

    return [{"module": "bookstore", "app": BookstoreExtension}]


def __getattr__(name: str) -> Any:
    # The original's ``bookstore.BookstoreContentsArchiver``, imported only when
    # asked for: the command line should not pay for jupyter_server.
    if name == "BookstoreContentsArchiver":
        from bookstore.archive import BookstoreContentsArchiver

        return BookstoreContentsArchiver
    raise AttributeError(f"module 'bookstore' has no attribute {name!r}")
