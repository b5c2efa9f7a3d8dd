"""Service mode: the server hands its saves to the archive service (``service_url``),
and reads its history back from it.

It keeps the durable outbox and its guarantees, and pushes each save with its
own ``JUPYTERHUB_API_TOKEN`` (``archiving.pushing``). The checkpoints, the REST
API and the History panel read versions through the service
(``service_history``), with the saves still waiting in the outbox, as in direct
mode; renames and copies are told to the service in order with the saves, so a
history follows its file. It holds no store or index settings and imports
neither aiobotocore nor SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from bookstore._version import __version__
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.outbox import Outbox, OutboxLimits
from bookstore.archiving.pushing import Pusher
from bookstore.archiving.service_client import ServiceClient
from bookstore.config import BookstoreSettings
from bookstore.core.errors import ConfigurationError
from bookstore.core.view import AS_STORED
from bookstore.server.checkpoints import attach_checkpoints
from bookstore.server.contents_manager import BookstoreContentsArchiver
from bookstore.server.copies import follow_copies
from bookstore.server.events import VersionEvents
from bookstore.server.handlers import handlers
from bookstore.server.save_hooks import SaveHooks
from bookstore.server.services import SETTINGS_KEY, BookstoreServices
from bookstore.service_history import ServiceHistory

__all__ = ["ServiceMode"]


class ServiceMode:
    """Pushes every save of the server's contents manager to the archive service."""

    def __init__(self, extension: Any, settings: BookstoreSettings) -> None:
        """``ConfigurationError`` without a Hub token to push with."""
        assert settings.service_url is not None
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            raise ConfigurationError(
                "BookstoreSettings.service_url is set, but JUPYTERHUB_API_TOKEN is not: "
                "the server pushes its saves to the archive service with its Hub token"
            )
        self.log: logging.Logger = extension.log
        self.settings = settings
        self._startup: asyncio.Task[None] | None = None
        outbox = Outbox(
            settings.outbox_dir,
            # Every save in this user's outbox is theirs, whichever mode kept it: saves
            # a server archiving directly left behind are pushed too.
            workspace=None,
            limits=OutboxLimits(settings.outbox_max_bytes, settings.outbox_min_free_bytes),
        )
        client = ServiceClient(settings.service_url, token)
        serverapp = extension.serverapp
        event_logger = serverapp.event_logger
        # Paths relative to the server's root: the service keeps one workspace per user.
        events = None if event_logger is None else VersionEvents(event_logger, AS_STORED, self.log)
        self.pusher = Pusher(
            client=client,
            on_archived=None if events is None else events.archived,
            outbox=outbox,
            workspace=settings.workspace,
            concurrency=settings.archive_concurrency,
            retry=RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay),
            log=self.log,
        )
        hooks = SaveHooks(outbox, self.pusher.submit, settings.archive_types, self.log, AS_STORED)
        history = ServiceHistory(client, view=AS_STORED)
        self.services = BookstoreServices(settings, history, self.pusher, hooks, events=events)
        contents_manager = serverapp.contents_manager
        hooks.install(contents_manager)
        if isinstance(contents_manager, BookstoreContentsArchiver):
            contents_manager.attach(self.pusher, hooks)
        attach_checkpoints(extension, self.services, contents_manager)
        follow_copies(self.services, serverapp, contents_manager)
        extension.settings[SETTINGS_KEY] = self.services

    def handlers(self) -> list[Any]:
        return list(handlers)

    def start(self) -> None:
        """Begin pushing, the saves left in the outbox first, in the background."""
        self.log.info(
            "bookstore %s: pushing saves to the archive service at %s",
            __version__,
            self.settings.service_url,
        )
        self._startup = asyncio.create_task(self.pusher.start(_nothing_to_prepare))

    async def stop(self) -> None:
        await self.pusher.stop(self.settings.shutdown_timeout)
        if self._startup is not None:
            await self._startup  # it gives up once the pusher stops
        self.pusher.client.close()


async def _nothing_to_prepare() -> None:
    """The service prepares its own index."""
