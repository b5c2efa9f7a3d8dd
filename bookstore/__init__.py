"""bookstore: every save of every Jupyter notebook, kept as a version you can restore."""

from __future__ import annotations

from typing import Any

from bookstore._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from bookstore.extension import BookstoreExtension

    return [{"module": "bookstore", "app": BookstoreExtension}]
