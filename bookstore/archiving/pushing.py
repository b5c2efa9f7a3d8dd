"""Service mode: a server hands its saves to the archive service instead of archiving.

The server keeps its durable outbox, and drains it as the archiver does (in order
per path, retried, set aside when they never can be archived: ``draining``), but
each save goes to the archive service with the server's own JupyterHub token.
The server holds no store or index credentials, and imports neither aiobotocore
nor SQLAlchemy. A push is idempotent: the save's path and time name its version,
and the service checks the sha256 sent with it, so one repeated after a lost
answer is archived once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.iostream import StreamClosedError

from bookstore.archiving.draining import Drain
from bookstore.archiving.outbox import OutboxEntry
from bookstore.core import keys
from bookstore.core.body import chunks_of, size_of
from bookstore.core.errors import BookstoreError, InvalidPath
from bookstore.core.keys import format_timestamp
from bookstore.core.record import HashedRecord
from bookstore.core.service_api import SET_ASIDE_STATUSES, SHA256_HEADER, VERSIONS_ENDPOINT

__all__ = ["Pusher", "ServiceClient", "ServiceUnavailable", "Unpushable"]

PUSH_TIMEOUT = 300.0
"""Seconds one push of a small save may take."""
SLOWEST_LINK = 1024 * 1024
"""Bytes a second a push may go as slowly as: a large save is given longer."""


class Unpushable(BookstoreError):
    """The archive service refused a save for good (400, 409 or 413): it is set aside."""


class ServiceUnavailable(BookstoreError):
    """The archive service could not take a save now; it is kept and pushed again."""


class ServiceClient:
    """Pushes saves to the archive service at ``url`` with a JupyterHub API token."""

    def __init__(self, url: str, token: str, *, timeout: float = PUSH_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    async def push(self, hashed: HashedRecord) -> None:
        """Hand one save over; ``Unpushable`` or ``ServiceUnavailable`` if not taken."""
        query = urlencode(
            {"path": hashed.filepath, "saved_at": format_timestamp(hashed.queued_time)}
        )
        request = HTTPRequest(
            f"{self.url}/{VERSIONS_ENDPOINT}?{query}",
            method="POST",
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size_of(hashed.body)),
                SHA256_HEADER: hashed.sha256,
            },
            body_producer=_producer(hashed),
            request_timeout=self.timeout + size_of(hashed.body) / SLOWEST_LINK,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, StreamClosedError, HTTPClientError) as exc:
            # No answer at all (a timeout is one too): tornado raises even so.
            raise self._unreachable(exc) from exc
        if 200 <= response.code < 300:
            return
        if response.code in SET_ASIDE_STATUSES:
            raise Unpushable(f"the archive service refused it: {_message(response)}")
        raise ServiceUnavailable(
            f"the archive service at {self.url} answered {response.code}: {_message(response)}"
        )

    def _unreachable(self, cause: BaseException | None) -> ServiceUnavailable:
        return ServiceUnavailable(f"the archive service at {self.url} cannot be reached ({cause})")


def _producer(hashed: HashedRecord) -> Callable[[Callable[[bytes], Any]], asyncio.Future[None]]:
    """Sends the save in chunks, read off the loop: a large one stays in its file."""

    async def produce(write: Callable[[bytes], Any]) -> None:
        pieces = chunks_of(hashed.body)
        try:
            while piece := await asyncio.to_thread(next, pieces, b""):
                written = write(piece)  # tornado's connection gives a future to wait on
                if written is not None:
                    await written
        finally:
            pieces.close()

    return lambda write: asyncio.ensure_future(produce(write))


def _message(response: HTTPResponse) -> str:
    """The service's own words for a refusal, else the HTTP reason."""
    try:
        message = json.loads(response.body or b"{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason)


class Pusher(Drain):
    """Drains the outbox to the archive service."""

    def __init__(self, *, client: ServiceClient, **drain: Any) -> None:
        """``drain``: the outbox and how to drain it, as ``Drain`` takes them."""
        super().__init__(**drain)
        self.client = client

    def unarchivable(self, exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, (Unpushable, InvalidPath)) else None

    async def _archive(self, entry: OutboxEntry, memo: list[Any]) -> None:
        keys.normalize_path(entry.path)  # a name no store can hold is set aside, as ever
        try:
            hashed = await asyncio.to_thread(self.outbox.load, entry)
        except FileNotFoundError:
            return  # another server sharing the outbox pushed it: entries go once pushed
        await self.client.push(hashed)
        self.archived += 1
        await asyncio.to_thread(self.outbox.remove, entry)
