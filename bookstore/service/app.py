"""``bookstore-service``: the archive service as a JupyterHub externally managed service.

It is the only process that holds the store credentials and the index URL
(the usual ``BOOKSTORE_*`` settings), and it archives with the same code and in
the same format as a server does. It keeps no state of its own, so several
replicas may run behind one load balancer. JupyterHub names it, and tells it
its token, URL and prefix, through the ``JUPYTERHUB_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubAuth
from tornado.web import Application as WebApplication
from traitlets import Integer, Unicode, default
from traitlets.config import Application

from bookstore._version import __version__
from bookstore.archiving.draining import DEFAULT_RETRY
from bookstore.archiving.thinning import ScheduledThinning
from bookstore.config import BookstoreSettings
from bookstore.core import keys
from bookstore.core.errors import ConfigurationError
from bookstore.factory import open_index, open_store
from bookstore.index import IndexDatabase
from bookstore.service.handlers import ServiceState, service_handlers
from bookstore.service.owners import Owners
from bookstore.store import Store

__all__ = ["BookstoreService", "main"]

DEFAULT_WORKSPACE_PREFIX = "bookstore/{username}"


class BookstoreService(Application):
    """Archives the saves users' servers push, each in its user's own workspace."""

    name = "bookstore-service"
    version = __version__
    description = __doc__.split("\n\n")[0]
    classes = [BookstoreSettings]  # noqa: RUF012 (traitlets' own pattern)
    aliases = {  # noqa: RUF012
        "url": "BookstoreService.url",
        "prefix": "BookstoreService.prefix",
        "config": "BookstoreService.config_file",
    }

    config_file = Unicode("", help="A Python configuration file to load.").tag(config=True)
    url = Unicode(help="Where this replica listens (JUPYTERHUB_SERVICE_URL).").tag(config=True)
    prefix = Unicode(
        help="The URL prefix the Hub's proxy routes to the service (JUPYTERHUB_SERVICE_PREFIX)."
    ).tag(config=True)
    hub_cache_seconds = Integer(
        10,
        help="Seconds the Hub's answer about a token is reused: a revoked token is refused "
        "at most this long after.",
    ).tag(config=True)
    max_version_bytes = Integer(
        512 * 1024 * 1024, help="The largest save the service accepts (413 above)."
    ).tag(config=True)
    max_pushes = Integer(
        32,
        help="Pushes one replica receives or archives at once; more answer 429, and their "
        "servers push again later. Each holds up to 8 MiB in memory, the rest in TMPDIR.",
    ).tag(config=True)

    @default("url")
    def _default_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    @default("prefix")
    def _default_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/bookstore/")

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
            self.update_config(self.cli_config)  # the command line wins over the file

    def start(self) -> None:
        try:
            asyncio.run(self.serve())
        except ConfigurationError as exc:
            self.log.critical("bookstore-service cannot start: %s", exc)
            self.exit(1)

    async def serve(self) -> None:
        """Listen until SIGTERM or SIGINT, then close the store and index."""
        settings = BookstoreSettings(parent=self)
        if settings.workspace_prefix is None:
            settings.workspace_prefix = DEFAULT_WORKSPACE_PREFIX
        settings.enable_publish = False  # a user's server publishes; the service never does
        settings.validate()
        if keys.USERNAME_FIELD not in settings.workspace_prefix:
            raise ConfigurationError(
                "BookstoreSettings.workspace_prefix must contain {username}: the service "
                "keeps each user's history in a workspace of their own"
            )
        store = open_store(settings)
        index = open_index(settings)
        thinning = self._thinning(settings, store, index)
        state = ServiceState(
            store=store,
            index=index,
            owners=Owners(HubAuth(cache_max_age=self.hub_cache_seconds)),
            workspace_prefix=settings.workspace_prefix,
            max_version_bytes=self.max_version_bytes,
            pushing=asyncio.Semaphore(self.max_pushes),
            ready=asyncio.Event(),
        )
        web = WebApplication(service_handlers(self.prefix, state), log_function=self._log_request)
        where = urlsplit(self.url)
        server = web.listen(
            where.port or 80,
            where.hostname or "",
            max_body_size=1024 * 1024,  # pushes lift it for themselves, and count
            xheaders=True,
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        self.log.info(
            "bookstore-service %s archiving to %s, listening on %s%s",
            __version__,
            store.description,
            self.url.rstrip("/"),
            self.prefix,
        )
        preparing = asyncio.create_task(self._prepare(index, state.ready, thinning, stopping))
        try:
            await stopping.wait()
        finally:
            server.stop()
            if thinning is not None:
                thinning.stop()
            # A migration or thinning under way may finish; past the timeout it is cut.
            await asyncio.wait({preparing}, timeout=settings.shutdown_timeout)
            preparing.cancel()
            await asyncio.wait({preparing})
            await index.close()
            await store.close()

    async def _prepare(
        self,
        index: IndexDatabase,
        ready: asyncio.Event,
        thinning: ScheduledThinning | None,
        stopping: asyncio.Event,
    ) -> None:
        """Migrate the index, retrying while it cannot be reached (requests answer 503
        meanwhile, and servers keep their saves), then thin on schedule."""
        failures = 0
        while not ready.is_set():
            try:
                await index.migrate()
            except Exception as exc:
                failures += 1
                self.log.warning(
                    "bookstore-service: the index cannot be prepared (%s: %s); retrying",
                    type(exc).__name__,
                    exc,
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), DEFAULT_RETRY.delay(failures))
                if stopping.is_set():
                    return
            else:
                ready.set()
        if thinning is not None:
            await thinning.run()

    def _thinning(
        self, settings: BookstoreSettings, store: Store, index: IndexDatabase
    ) -> ScheduledThinning | None:
        """Every user's workspace thinned by ``retention``, by one replica at a time."""
        policy = settings.retention_policy()
        if policy is None:
            return None
        template = settings.workspace_prefix
        assert template is not None
        if not template.strip("/").split(keys.USERNAME_FIELD, 1)[0]:
            raise ConfigurationError(
                "BookstoreSettings.retention on the service needs a workspace_prefix that "
                "starts with a fixed part, such as bookstore/{username}: the service thins "
                "only the workspaces it keeps"
            )
        return ScheduledThinning(
            store,
            index,
            template,
            policy,
            interval=settings.retention_interval,
            log=self.log,
            every_workspace_of=template,
        )

    def _log_request(self, handler: Any) -> None:
        status = handler.get_status()
        log = self.log.info if status < 400 else self.log.warning
        request = handler.request
        log("%d %s %s %.1fms", status, request.method, request.path, 1000 * request.request_time())


def main() -> None:
    """The ``bookstore-service`` command."""
    BookstoreService.launch_instance()
