"""``BookstoreContentsArchiver``: the original bookstore's contents manager, kept working.

Configurations written for the original
(``c.ServerApp.contents_manager_class = "bookstore.archive.BookstoreContentsArchiver"``)
and code that calls its documented methods keep working. Its ``archive``,
``path_locks``, ``path_lock_ready`` and ``run_pre_save_hook`` are the real
archiver's (in service mode, the pusher's), which the extension attaches when it
starts, so using them goes through the outbox and the per-path queues like any
save: nothing is lost, skipped or archived twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from bookstore.archiving.draining import Drain
from bookstore.core.errors import ConfigurationError
from bookstore.core.record import ArchiveRecord
from bookstore.server.save_hooks import SaveHooks

__all__ = ["BookstoreContentsArchiver"]


class BookstoreContentsArchiver(AsyncLargeFileManager):
    """The default contents manager, with the original bookstore's archiving methods."""

    _archiver: Drain | None = None
    _hooks: SaveHooks | None = None

    def attach(self, archiver: Drain, hooks: SaveHooks) -> None:
        """Serve the methods below from the server's drain of the outbox (the extension
        calls this): its archiver, or in service mode its pusher."""
        self._archiver, self._hooks = archiver, hooks

    def _attached(self) -> tuple[Drain, SaveHooks]:
        if self._archiver is None or self._hooks is None:
            raise ConfigurationError(
                "BookstoreContentsArchiver archives through the bookstore server extension, "
                "which is not running in this server (see `jupyter server extension list`)"
            )
        return self._archiver, self._hooks

    @property
    def archiver(self) -> Drain:
        """The server's archiver (in service mode, its pusher)."""
        return self._attached()[0]

    @property
    def path_locks(self) -> dict[str, asyncio.Lock]:
        """Each path's lock, held while one of its saves is archived; by the path its
        history is kept under (the file's absolute path, unless a workspace is set)."""
        return self.archiver.path_locks

    @property
    def path_lock_ready(self) -> asyncio.Lock:
        """Held while a path's lock is looked up or made."""
        return self.archiver.path_lock_ready

    async def archive(self, record: ArchiveRecord) -> None:
        """Archive one record under its path's lock, after the saves queued before it.

        A save that finds the lock held waits for it (the original skipped it). The
        record's path is relative to the server's root, as the contents API names it.
        """
        archiver, hooks = self._attached()
        await archiver.archive(record._replace(filepath=hooks.view.stored(record.filepath)))

    def run_pre_save_hook(self, model: dict[str, Any], path: str, **kwargs: Any) -> None:
        """Queue ``model`` for archiving as a save of ``path``.

        jupyter_server 2 no longer calls this method on save (bookstore's own
        hooks archive every save); code that calls it, as the original's users
        did, still gets the record queued, once.
        """
        self._attached()[1].keep_model(model, path)
