"""REST handlers: thin, authenticated, authorized; the work happens elsewhere."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

__all__ = ["StatusHandler", "handlers"]

AUTH_RESOURCE = "bookstore"


class StatusHandler(APIHandler):
    """``GET /api/bookstore``: the release, the enabled features and the archive backlog."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(self.settings["bookstore"].status()))


handlers = [(r"/api/bookstore/?", StatusHandler)]
