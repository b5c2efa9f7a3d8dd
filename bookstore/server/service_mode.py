"""Service mode: the server hands its saves to the archive service (``service_url``).

It keeps the durable outbox and its guarantees, and pushes each save with its
own ``JUPYTERHUB_API_TOKEN`` (``archiving.pushing``). It holds no store or index
settings and imports neither aiobotocore nor SQLAlchemy: ``GET /api/bookstore``
reports the outbox's drain; the history is read from the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from bookstore._version import __version__
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.outbox import Outbox, OutboxLimits
from bookstore.archiving.pushing import Pusher, ServiceClient
from bookstore.config import BookstoreSettings
from bookstore.core.errors import ConfigurationError
from bookstore.core.view import AS_STORED
from bookstore.server.archive_status import archive_status
from bookstore.server.save_hooks import SaveHooks

__all__ = ["ServiceMode"]

SERVICE_MODE_KEY = "bookstore_service_mode"
"""Where the service mode lives in the Tornado application's settings."""


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
        self.pusher = Pusher(
            client=ServiceClient(settings.service_url, token),
            outbox=outbox,
            workspace=settings.workspace,
            concurrency=settings.archive_concurrency,
            retry=RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay),
            log=self.log,
        )
        # Paths relative to the server's root: the service keeps one workspace per user.
        self.hooks = SaveHooks(
            outbox, self.pusher.submit, settings.archive_types, self.log, AS_STORED
        )
        self.hooks.install(extension.serverapp.contents_manager)
        extension.settings[SERVICE_MODE_KEY] = self

    def handlers(self) -> list[Any]:
        return [(r"/api/bookstore", PushStatusHandler)]

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

    def status(self) -> dict[str, Any]:
        """What ``GET /api/bookstore`` reports in service mode."""
        return {
            "release": __version__,
            "features": {
                "archive": True,
                "history_api": False,
                "checkpoints": False,
                "service_url": self.settings.service_url,
                "archive_types": list(self.settings.archive_types),
            },
            "archive": archive_status(self.pusher, self.hooks, AS_STORED.name),
            "storage": None,
        }


async def _nothing_to_prepare() -> None:
    """The service prepares its own index."""


class PushStatusHandler(APIHandler):
    """``GET /api/bookstore``: the release and what the outbox's drain is doing."""

    auth_resource = "bookstore"

    @web.authenticated
    @authorized
    def get(self) -> None:
        mode: ServiceMode = self.settings[SERVICE_MODE_KEY]
        self.finish(mode.status())
