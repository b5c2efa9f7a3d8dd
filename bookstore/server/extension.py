"""The Jupyter Server extension: wiring only. It builds the services, registers the
hooks, checkpoints and handlers, and starts and stops archiving with the server."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.services.contents.manager import AsyncContentsManager
from traitlets import TraitError

from bookstore._version import __version__
from bookstore.archiving.archiver import Archiver, RetryPolicy
from bookstore.archiving.maintenance import prepare_index
from bookstore.config import BookstoreSettings
from bookstore.core.errors import ConfigurationError, StoreError
from bookstore.factory import open_index, open_outbox, open_store
from bookstore.history import History
from bookstore.server.checkpoints import BookstoreCheckpoints
from bookstore.server.contents_manager import BookstoreContentsArchiver
from bookstore.server.handlers import handlers
from bookstore.server.save_hooks import SaveHooks
from bookstore.server.services import SETTINGS_KEY, BookstoreServices
from bookstore.server.sharing_handlers import sharing_handlers

__all__ = ["BookstoreExtension"]


class BookstoreExtension(ExtensionAppJinjaMixin, ExtensionApp):
    """Archives every save of the server's contents manager."""

    name = "bookstore"
    description = "Every save of every notebook, archived as a version."
    template_paths = [str(Path(__file__).parent / "templates")]  # noqa: RUF012
    classes = [*ExtensionApp.classes, BookstoreSettings]  # noqa: RUF012 (traitlets' own pattern)

    def initialize_settings(self) -> None:
        try:
            settings = BookstoreSettings(parent=self)
            settings.validate()
            store = open_store(settings)
        except (ConfigurationError, TraitError) as exc:
            self.log.critical("bookstore cannot start: %s", exc)
            raise SystemExit(1) from exc
        index = open_index(settings)
        archiver = Archiver(
            store=store,
            index=index,
            outbox=open_outbox(settings),
            workspace=settings.workspace,
            concurrency=settings.archive_concurrency,
            retry=RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay),
            log=self.log,
        )
        hooks = SaveHooks(archiver.outbox, archiver.submit, settings.archive_types, self.log)
        self.services = BookstoreServices(
            settings, History(store, index, settings.workspace), archiver, hooks
        )
        assert self.serverapp is not None, "jupyter_server links the extension to its ServerApp"
        self._attach(self.serverapp.contents_manager)
        self._startup: asyncio.Task[None] | None = None
        self.settings[SETTINGS_KEY] = self.services

    def _attach(self, contents_manager: Any) -> None:
        """Hook into the contents manager; make the archive its checkpoints (async only)."""
        self.services.hooks.install(contents_manager)
        if isinstance(contents_manager, BookstoreContentsArchiver):
            contents_manager.attach(self.services.archiver, self.services.hooks)
        if isinstance(contents_manager, AsyncContentsManager):
            contents_manager.checkpoints = BookstoreCheckpoints(parent=self, services=self.services)
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
        history, archiver = self.services.history, self.services.archiver
        try:
            await history.store.check()
        except StoreError as exc:
            self.log.warning(
                "bookstore: %s; saves are kept in %s and archived once the store is reachable",
                exc,
                archiver.outbox.directory,
            )
        earlier = await asyncio.to_thread(archiver.outbox.pending)
        prepare = partial(prepare_index, history.store, history.index, history.workspace, self.log)
        await archiver.start(earlier, prepare)
        self.log.info(
            "bookstore %s: archiving to %s, indexed in %s",
            __version__,
            history.store.description,
            history.index.description,
        )

    async def stop_extension(self) -> None:
        timeout = self.services.settings.shutdown_timeout
        await self.services.archiver.stop(timeout)
        if self._startup is not None:
            # Start-up gives up once the archiver stops; let it, rather than cut a
            # connection in half, unless the store keeps it waiting.
            finished, _ = await asyncio.wait({self._startup}, timeout=timeout)
            if not finished:
                self._startup.cancel()
                await asyncio.wait({self._startup})
        await self.services.history.store.close()
        await self.services.history.index.close()
