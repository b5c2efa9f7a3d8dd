"""What bookstore's handlers and checkpoints may use, and nothing more.

The extension builds one ``BookstoreServices`` and puts it in the web app's
settings, as jupyter_server does with its ``contents_manager``; handlers and
checkpoints never see the extension itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_server.services.contents.manager import AsyncContentsManager

from bookstore._version import __version__
from bookstore.archiving.archiver import Archiver
from bookstore.config import BookstoreSettings
from bookstore.history import History
from bookstore.server.save_hooks import SaveHooks

__all__ = ["SETTINGS_KEY", "BookstoreServices"]

SETTINGS_KEY = "bookstore_services"
"""Where the services live in the Tornado application's settings."""


@dataclass(frozen=True)
class BookstoreServices:
    """The settings, the history, and the archive's queue, as the server sees them."""

    settings: BookstoreSettings
    history: History
    archiver: Archiver
    hooks: SaveHooks

    @property
    def workspace(self) -> str:
        """The server's workspace: the only history it shows."""
        return self.history.workspace

    def status(self, contents_manager: Any) -> dict[str, Any]:
        """What ``GET /api/bookstore`` reports: the release, features and the backlog."""
        settings = self.settings
        return {
            "release": __version__,
            "features": {
                "archive": True,
                "history_api": True,
                "checkpoints": isinstance(contents_manager, AsyncContentsManager),
                "publish": settings.enable_publish,
                "clone_s3": bool(settings.clone_s3_buckets),
                "clone_fs": bool(settings.fs_clone_dir),
                "storage": settings.storage,
                "archive_types": list(settings.archive_types),
                "contents_manager": type(contents_manager).__name__,
            },
            "archive": {
                "workspace": self.workspace,
                "ready": self.archiver.ready,
                "backlog": self.archiver.backlog,
                "archived": self.archiver.archived,
                "last_error": self.archiver.last_error,
            },
        }
