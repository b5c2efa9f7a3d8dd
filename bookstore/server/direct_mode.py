"""Direct mode: the server archives its saves itself, into the store and index its
settings name. Wiring only: it builds the services, registers the hooks,
checkpoints and handlers, and starts and stops archiving with the server."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bookstore._version import __version__
from bookstore.archiving.archiver import Archiver
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.maintenance import prepare_index
from bookstore.archiving.outbox import Outbox, OutboxLimits
from bookstore.archiving.thinning import ScheduledThinning
from bookstore.config import EARLIER_DEFAULT_WORKSPACE, BookstoreSettings
from bookstore.core.errors import BookstoreError, StoreError
from bookstore.factory import open_index, open_store
from bookstore.history import History
from bookstore.server.checkpoints import attach_checkpoints
from bookstore.server.contents import stored_file_exists
from bookstore.server.contents_manager import BookstoreContentsArchiver
from bookstore.server.copies import follow_copies
from bookstore.server.events import VersionEvents
from bookstore.server.handlers import handlers
from bookstore.server.save_hooks import SaveHooks
from bookstore.server.services import SETTINGS_KEY, BookstoreServices
from bookstore.server.sharing_handlers import sharing_handlers

__all__ = ["DirectMode"]


class DirectMode:
    """Archives every save of the server's contents manager to the store and index."""

    def __init__(self, extension: Any, settings: BookstoreSettings) -> None:
        """Build everything from checked ``settings``; ``ConfigurationError`` if the
        store cannot be built from them."""
        self.extension = extension
        self.log: logging.Logger = extension.log
        self._startup: asyncio.Task[None] | None = None
        self._thinning_task: asyncio.Task[None] | None = None
        store = open_store(settings)
        index = open_index(settings)
        outbox = Outbox(
            settings.outbox_dir,
            workspace=settings.workspace,
            limits=OutboxLimits(settings.outbox_max_bytes, settings.outbox_min_free_bytes),
        )
        serverapp = extension.serverapp
        view = settings.path_view(serverapp.root_dir)
        contents_manager = serverapp.contents_manager
        event_logger = serverapp.event_logger
        events = None if event_logger is None else VersionEvents(event_logger, view, self.log)
        archiver = Archiver(
            store=store,
            index=index,
            outbox=outbox,
            workspace=settings.workspace,
            concurrency=settings.archive_concurrency,
            retry=RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay),
            log=self.log,
            file_exists=partial(stored_file_exists, contents_manager, view),
            on_archived=None if events is None else events.archived,
        )
        hooks = SaveHooks(outbox, archiver.submit, settings.archive_types, self.log, view)
        history = History(store, index, settings.workspace, view=view)
        policy = settings.retention_policy()
        thinning = None
        if policy is not None:
            interval = settings.retention_interval
            thinning = ScheduledThinning(
                store, index, settings.workspace, policy, interval=interval, log=self.log
            )
        services = BookstoreServices(
            settings,
            history,
            archiver,
            hooks,
            store=store,
            thinning=thinning,
            events=events,
        )
        self._attach(services, archiver, contents_manager)
        follow_copies(services, serverapp, contents_manager)
        self.services = services
        self.history, self.archiver = history, archiver
        extension.settings[SETTINGS_KEY] = services

    def handlers(self) -> list[Any]:
        return [*handlers, *sharing_handlers]

    def _attach(
        self, services: BookstoreServices, archiver: Archiver, contents_manager: Any
    ) -> None:
        """Hook into the contents manager; make the archive its checkpoints (async only)."""
        services.hooks.install(contents_manager)
        if isinstance(contents_manager, BookstoreContentsArchiver):
            contents_manager.attach(archiver, services.hooks)
        attach_checkpoints(self.extension, services, contents_manager)

    def start(self) -> None:
        """Begin archiving in the background: the server must not wait on an unreachable
        store or index."""
        self._startup = asyncio.create_task(self._start_archiving(self.services))

    async def _start_archiving(self, services: BookstoreServices) -> None:
        history, archiver = self.history, self.archiver
        try:
            await history.store.check()
        except StoreError as exc:
            self.log.warning(
                "bookstore: %s; saves are kept in %s and archived once the store is reachable",
                exc,
                archiver.outbox.directory,
            )
        prepare = partial(prepare_index, history.store, history.index, history.workspace, self.log)
        try:
            await archiver.start(prepare)
        except Exception as exc:
            # Whatever the archiver does not retry by itself: reported, never silent.
            reason = str(exc) if isinstance(exc, BookstoreError) else f"{type(exc).__name__}: {exc}"
            archiver.last_error = f"could not start archiving ({reason})"
            self.log.exception("bookstore: %s", archiver.last_error)
            return
        self.log.info(
            "bookstore %s: archiving to %s, indexed in %s",
            __version__,
            history.store.description,
            history.index.description,
        )
        if services.settings.by_file:
            await self._mention_earlier_versions(history)
        if services.thinning is not None:
            self._thinning_task = asyncio.create_task(services.thinning.run())

    async def _mention_earlier_versions(self, history: History) -> None:
        """Say where the versions an earlier release kept under its shared default are."""
        try:
            count = await history.count_in(EARLIER_DEFAULT_WORKSPACE)
        except SQLAlchemyError:
            return  # the index is reported wherever it is used; this is a courtesy
        if count:
            self.log.info(
                "bookstore: %d versions archived by an earlier release, for every folder "
                "at once, are kept in the workspace %r; list them from the folder they "
                "belong to with `bookstore-history --workspace-prefix %s list`",
                count,
                EARLIER_DEFAULT_WORKSPACE,
                EARLIER_DEFAULT_WORKSPACE,
            )

    async def stop(self) -> None:
        services = self.services
        timeout = services.settings.shutdown_timeout
        if services.thinning is not None and self._thinning_task is not None:
            services.thinning.stop()
            # A thinning under way may finish; past the timeout it is cut, which prune
            # is made to survive (the next one finishes what it left).
            finished, _ = await asyncio.wait({self._thinning_task}, timeout=timeout)
            if not finished:
                self._thinning_task.cancel()
                await asyncio.wait({self._thinning_task})
        await self.archiver.stop(timeout)
        if self._startup is not None:
            # Start-up gives up once the archiver stops; let it, rather than cut a
            # connection in half, unless the store keeps it waiting.
            finished, _ = await asyncio.wait({self._startup}, timeout=timeout)
            if not finished:
                self._startup.cancel()
                await asyncio.wait({self._startup})
        await self.history.store.close()
        await self.history.index.close()
