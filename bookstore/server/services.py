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
_LATEST_SET_ASIDE = 5


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
        """What ``GET /api/bookstore`` reports: the release, features, the backlog, the
        outbox's fill and the saves set aside."""
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
                "outbox": self._outbox_status(),
                "set_aside": self._set_aside_status(),
            },
        }

    def _outbox_status(self) -> dict[str, Any]:
        """How full the outbox is, and whether saves went unkept, in words."""
        outbox, not_kept = self.archiver.outbox, self.hooks.not_kept
        return {
            "bytes": outbox.used_bytes,
            "max_bytes": outbox.limits.max_bytes,
            "not_kept": not_kept.saves if not_kept else 0,
            "warning": str(not_kept) if not_kept else outbox.warning(),
        }

    def _set_aside_status(self) -> dict[str, Any]:
        """Saves that can never be archived as they are: how many, and the latest few."""
        set_aside = self.archiver.set_aside
        return {
            "count": len(set_aside),
            "latest": [
                {
                    "path": None if item.path is None else self.history.view.name(item.path),
                    "queued_at": item.queued_time.isoformat() if item.queued_time else None,
                    "set_aside_at": item.set_aside_at.isoformat(),
                    "reason": item.reason,
                }
                for item in reversed(set_aside[-_LATEST_SET_ASIDE:])
            ],
        }
