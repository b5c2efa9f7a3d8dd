"""What bookstore's handlers and checkpoints may use, and nothing more.

The extension builds one ``BookstoreServices`` and puts it in the web app's
settings, as jupyter_server does with its ``contents_manager``; handlers and
checkpoints never see the extension itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_server.services.contents.manager import AsyncContentsManager

from bookstore._version import __version__
from bookstore.archiving.following import FollowingDrain
from bookstore.config import BookstoreSettings
from bookstore.core.errors import BookstoreError, InvalidPath
from bookstore.core.history_base import BaseHistory
from bookstore.core.keys import normalize_path
from bookstore.server.archive_status import archive_status
from bookstore.server.events import VersionEvents
from bookstore.server.save_hooks import SaveHooks

if TYPE_CHECKING:
    from bookstore.archiving.thinning import ScheduledThinning
    from bookstore.store import Store

_STORAGE_TIMEOUT = 2.0
"""Seconds the status waits for the index's figures: it must answer in an outage too."""
_STORAGE_TTL = 60.0
"""Seconds the status reuses the index's figures while this server changed nothing."""

__all__ = ["RENAME_WAIT", "SETTINGS_KEY", "BookstoreServices"]

SETTINGS_KEY = "bookstore_services"
"""Where the services live in the Tornado application's settings."""
RENAME_WAIT = 5.0
"""Seconds a rename waits for its history to follow it before it answers; a slower
index finishes the move in the background."""


@dataclass
class _StorageFigures:
    """The storage figures last read: what this server had changed by then, and when."""

    changes: tuple[int, int] | None = None
    read_at: float = 0.0
    figures: dict[str, Any] | None = None


@dataclass(frozen=True)
class BookstoreServices:
    """The settings, the history, and the archive's queue, as the server sees them: the
    server's own archiver and the index (direct mode), or the outbox's pusher and the
    archive service (service mode)."""

    settings: BookstoreSettings
    history: BaseHistory
    archiver: FollowingDrain
    hooks: SaveHooks
    store: Store | None = None
    """The store, in direct mode: what publishing writes to."""
    thinning: ScheduledThinning | None = None
    """The scheduled thinning, when ``retention`` is set."""
    events: VersionEvents | None = None
    """Tells clients of the server's event bus that a history changed."""
    _storage_seen: _StorageFigures = field(default_factory=_StorageFigures, repr=False)

    @property
    def workspace(self) -> str:
        """The server's workspace: the only history it shows."""
        return self.history.workspace

    async def follow_rename(self, old: str, new: str, log: logging.Logger) -> None:
        """Carry the history of the file or folder ``old`` to ``new``, which it was just
        renamed to. Never raises: the rename is made, and saves archived, regardless."""
        try:
            stored_old, stored_new = self._stored(old), self._stored(new)
        except InvalidPath as exc:
            log.error("bookstore: the history of %s cannot follow it to %s: %s", old, new, exc)
            return
        if not await self.archiver.rename(stored_old, stored_new, wait=RENAME_WAIT):
            log.warning(
                "bookstore: the history of %s follows it to %s once it can be moved (%s)",
                old,
                new,
                self.archiver.last_error or "it is slow",
            )

    def note_copy(self, source: str, copy: str) -> None:
        """Note, in the background, that ``copy`` was made by copying ``source``."""
        try:
            stored_source, stored_copy = self._stored(source), self._stored(copy)
        except InvalidPath:
            return  # the copy is archived, or set aside, as its saves are
        self.archiver.note_copy(stored_source, stored_copy)

    def _stored(self, path: str) -> str:
        """The stored path of a contents-API path; ``InvalidPath`` if it is none."""
        return self.history.view.stored(normalize_path(path))

    def status(self, contents_manager: Any, storage: dict[str, Any] | None) -> dict[str, Any]:
        """What ``GET /api/bookstore`` reports: the release, features, the backlog, the
        outbox's fill, the saves set aside, and the ``storage`` figures."""
        settings = self.settings
        direct = settings.service_url is None
        return {
            "release": __version__,
            "features": {
                "archive": True,
                "history_api": True,
                "checkpoints": isinstance(contents_manager, AsyncContentsManager),
                "publish": direct and settings.enable_publish,
                "clone_s3": direct and bool(settings.clone_s3_buckets),
                "clone_fs": direct and bool(settings.fs_clone_dir),
                "storage": settings.storage if direct else None,
                "service_url": settings.service_url,
                "archive_types": list(settings.archive_types),
                "contents_manager": type(contents_manager).__name__,
            },
            "archive": {
                **archive_status(self.archiver, self.hooks, self.history.view.name),
                "thinning": self._thinning_status(),
            },
            "storage": storage,
        }

    async def storage(self) -> dict[str, Any] | None:
        """The versions, bytes saved and bytes stored of the workspace, for the status;
        ``None`` while the index cannot say (the status is read most in an outage).

        An open History panel reads the status every few seconds: the sums are read
        again only once this server archived or thinned since, or a minute went by
        (for what other servers and the command line changed).
        """
        thinned = self.thinning.removed if self.thinning is not None else 0
        changes = (self.archiver.archived, thinned)
        seen = self._storage_seen
        if seen.changes == changes and time.monotonic() - seen.read_at < _STORAGE_TTL:
            return seen.figures
        passing: tuple[type[BaseException], ...] = (
            BookstoreError,
            OSError,
            asyncio.TimeoutError,
            *self.history.outages,
        )
        try:
            totals = await asyncio.wait_for(self.history.storage(), _STORAGE_TIMEOUT)
        except passing:
            return None
        figures = None if totals is None else totals.describe()
        seen.changes, seen.read_at, seen.figures = changes, time.monotonic(), figures
        return seen.figures

    def _thinning_status(self) -> dict[str, Any] | None:
        """The scheduled thinning's rules and what this server's runs did; ``None``: off."""
        thinning = self.thinning
        if thinning is None:
            return None
        return {
            "rules": dict(self.settings.retention),
            "interval": thinning.interval,
            "last_run": thinning.last_run.isoformat() if thinning.last_run else None,
            "removed": thinning.removed,
            "last_error": thinning.last_error,
        }
