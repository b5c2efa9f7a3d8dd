"""The Jupyter Server extension: wires the settings, store, index, outbox and hooks together."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.services.contents.manager import AsyncContentsManager
from traitlets import TraitError

from bookstore import __version__
from bookstore.archive import SaveHooks
from bookstore.archiver import Archiver, RetryPolicy
from bookstore.checkpoints import BookstoreCheckpoints
from bookstore.config import BookstoreSettings
from bookstore.errors import ConfigurationError, StoreError
from bookstore.factory import open_index, open_outbox, open_store
from bookstore.handlers import handlers
from bookstore.maintenance import prepare_index
from bookstore.sharing_handlers import sharing_handlers

__all__ = ["BookstoreExtension"]


class BookstoreExtension(ExtensionAppJinjaMixin, ExtensionApp):
    """Archives every save of the server's contents manager."""

    name = "bookstore"
    description = "Every save of every notebook, archived as a version."
    template_paths = [str(Path(__file__).parent / "templates")]  # noqa: RUF012
    classes = [*ExtensionApp.classes, BookstoreSettings]  # noqa: RUF012 (traitlets' own pattern)

    def initialize_settings(self) -> None:
        try:
            self.bookstore_settings = settings = BookstoreSettings(parent=self)
            settings.validate()
            self.workspace = settings.workspace
            self.store = open_store(settings)
        except (ConfigurationError, TraitError) as exc:
            self.log.critical("bookstore cannot start: %s", exc)
            raise SystemExit(1) from exc
        self.index = open_index(settings)
        self.outbox = open_outbox(settings)
        self.archiver = Archiver(
            store=self.store,
            index=self.index,
            outbox=self.outbox,
            workspace=self.workspace,
            concurrency=settings.archive_concurrency,
            retry=RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay),
            log=self.log,
        )
        self.hooks = SaveHooks(self.outbox, self.archiver.submit, settings.archive_types, self.log)
        assert self.serverapp is not None, "jupyter_server links the extension to its ServerApp"
        contents_manager = self.serverapp.contents_manager
        self.hooks.install(contents_manager)
        self._serve_checkpoints(contents_manager)
        self._startup: asyncio.Task[None] | None = None
        self.settings["bookstore"] = self

    def _serve_checkpoints(self, contents_manager: Any) -> None:
        """Make the archive the contents manager's checkpoints (async managers only)."""
        if isinstance(contents_manager, AsyncContentsManager):
            contents_manager.checkpoints = BookstoreCheckpoints(parent=self, bookstore=self)
        else:
            self.log.warning(
                "bookstore: %s is not asynchronous, so archived versions are not offered as "
                "checkpoints (File > Revert to Checkpoint); they are archived all the same",
                type(contents_manager).__name__,
            )

    def initialize_handlers(self) -> None:
        self.handlers.extend([*handlers, *sharing_handlers])

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # In the background: the server must not wait on an unreachable store or index.
        self._startup = asyncio.create_task(self._start_archiving())

    async def _start_archiving(self) -> None:
        try:
            await self.store.check()
        except StoreError as exc:
            self.log.warning(
                "bookstore: %s; saves are kept in %s and archived once the store is reachable",
                exc,
                self.outbox.directory,
            )
        earlier = await asyncio.to_thread(self.outbox.pending)
        await self.archiver.start(
            earlier, partial(prepare_index, self.store, self.index, self.workspace, self.log)
        )
        self.log.info(
            "bookstore %s: archiving to %s, indexed in %s",
            __version__,
            self.store.description,
            self.index.description,
        )

    async def stop_extension(self) -> None:
        await self.archiver.stop(self.bookstore_settings.shutdown_timeout)
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        await self.store.close()
        await self.index.close()

    def status(self) -> dict[str, Any]:
        """What ``GET /api/bookstore`` reports."""
        settings = self.bookstore_settings
        assert self.serverapp is not None
        return {
            "release": __version__,
            "features": {
                "archive": True,
                "history_api": True,
                "checkpoints": isinstance(self.serverapp.contents_manager, AsyncContentsManager),
                "publish": settings.enable_publish,
                "clone_s3": bool(settings.clone_s3_buckets),
                "clone_fs": bool(settings.fs_clone_dir),
                "storage": settings.storage,
                "archive_types": list(settings.archive_types),
                "contents_manager": type(self.serverapp.contents_manager).__name__,
            },
            "archive": {
                "workspace": self.workspace,
                "ready": self.archiver.ready,
                "backlog": self.archiver.backlog,
                "archived": self.archiver.archived,
                "last_error": self.archiver.last_error,
            },
        }
