"""A client of the archive service's API, with a JupyterHub API token.

It hands saves over (``push``, for the pusher) and reads history back
(``read``, ``read_json``, ``write_json``, for ``ServiceHistory``). The token
names the user; the service decides what it may reach. Each refusal becomes one
of bookstore's errors, in the service's own words.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.iostream import StreamClosedError

from bookstore.core.body import chunks_of, size_of
from bookstore.core.errors import (
    BookstoreError,
    CorruptVersion,
    InvalidPath,
    LimitExceeded,
    Refused,
    ServiceRefused,
    ServiceUnavailable,
    VersionNotFound,
)
from bookstore.core.keys import format_timestamp, normalize_path
from bookstore.core.record import HashedRecord
from bookstore.core.service_api import (
    RETRIED_REFUSALS,
    SET_ASIDE_STATUSES,
    SHA256_HEADER,
    VERSIONS_ENDPOINT,
)

__all__ = ["ServiceClient", "ServiceVersion", "Unpushable"]

PUSH_TIMEOUT = 300.0
"""Seconds one push of a small save may take."""
SLOWEST_LINK = 1024 * 1024
"""Bytes a second a push may go as slowly as: a large save is given longer."""
READ_TIMEOUT = 10.0
"""Seconds one read of history may take, plus a second a MiB of a version read: a
checkpoint list must not hang on a service that does not answer."""
MAX_READ_BYTES = 1 << 30
"""The largest answer read: above any ``max_version_bytes`` a service takes."""


class Unpushable(BookstoreError):
    """The archive service refused a save (400, 409 or 413), or a rename or copy, for good."""


@dataclass(frozen=True)
class ServiceVersion:
    """A version as the archive service describes it."""

    path: str
    saved_as: str
    number: int
    store_key: str
    size: int
    sha256: str
    queued_at: datetime
    archived_at: datetime
    label: str | None
    pinned: bool

    @classmethod
    def described(cls, answer: Any) -> ServiceVersion:
        """The version an answer of the service describes (``describe_version``)."""
        try:
            return cls(
                path=normalize_path(str(answer["path"])),
                saved_as=normalize_path(str(answer["saved_as"])),
                number=int(answer["version"]),
                store_key=str(answer["store_key"]),
                size=int(answer["size"]),
                sha256=str(answer["sha256"]),
                queued_at=datetime.fromisoformat(answer["queued_at"]),
                archived_at=datetime.fromisoformat(answer["archived_at"]),
                label=None if answer.get("label") is None else str(answer["label"]),
                pinned=bool(answer.get("pinned")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnavailable(
                f"the archive service described a version oddly: {exc}"
            ) from exc


class ServiceClient:
    """Talks to the archive service at ``url`` with a JupyterHub API token."""

    def __init__(self, url: str, token: str, *, timeout: float = PUSH_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._reads: AsyncHTTPClient | None = None

    def close(self) -> None:
        """Close the connections reads keep."""
        if self._reads is not None:
            self._reads.close()
            self._reads = None

    async def push(self, hashed: HashedRecord) -> ServiceVersion | None:
        """Hand one save over: the version it made, ``None`` if the latest held it already.
        ``Unpushable`` or ``ServiceUnavailable`` if it is not taken (a refused token is the
        latter: the save waits until the Hub gives the server a token that may push)."""
        query = {"path": hashed.filepath, "saved_at": format_timestamp(hashed.queued_time)}
        request = HTTPRequest(
            f"{self.url}/{VERSIONS_ENDPOINT}?{urlencode(query)}",
            method="POST",
            headers={
                **self._authorization(),
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size_of(hashed.body)),
                SHA256_HEADER: hashed.sha256,
            },
            body_producer=_producer(hashed),
            request_timeout=self.timeout + size_of(hashed.body) / SLOWEST_LINK,
        )
        response = await self._fetch(request)
        if 200 <= response.code < 300:
            made = _json_of(response)
            described = made.get("version") if isinstance(made, dict) else None
            return None if described is None else ServiceVersion.described(described)
        if response.code in SET_ASIDE_STATUSES:
            raise Unpushable(f"the archive service refused it: {_message(response)}")
        raise ServiceUnavailable(
            f"the archive service at {self.url} answered {response.code}: {_message(response)}"
        )

    async def change(self, kind: str, source: str, target: str, at: datetime) -> None:
        """Tell the service of a rename or copy (``core.changes``) made at ``at``;
        ``Unpushable`` if it refuses it for good (a 4xx no retry mends), so that it never
        holds up the saves made after it; ``ServiceUnavailable`` to try again."""
        query = {"kind": kind, "from": source, "to": target, "at": format_timestamp(at)}
        response = await self._send("POST", "changes", query, b"")
        if 200 <= response.code < 300:
            return
        refusal = self._refusal(response)
        if 400 <= response.code < 500 and response.code not in RETRIED_REFUSALS:
            raise Unpushable(str(refusal)) from refusal
        raise ServiceUnavailable(str(refusal)) from refusal

    async def read(self, endpoint: str, *, size: int = 0, **query: Any) -> HTTPResponse:
        """``GET api/<endpoint>?<query>``; the response, if the service answered 2xx.
        ``size``: the bytes expected, which give a slow link more time."""
        timeout = READ_TIMEOUT + size / SLOWEST_LINK
        return self._answer(await self._send("GET", endpoint, query, timeout=timeout))

    async def read_json(self, endpoint: str, **query: Any) -> Any:
        return _json_of(await self.read(endpoint, **query))

    async def write_json(self, endpoint: str, body: Any, **query: Any) -> Any:
        """``PUT api/<endpoint>?<query>`` with a JSON body; the JSON answered."""
        sent = await self._send("PUT", endpoint, query, json.dumps(body).encode())
        return _json_of(self._answer(sent))

    async def _send(
        self,
        method: str,
        endpoint: str,
        query: dict[str, Any],
        body: bytes | None = None,
        *,
        timeout: float = READ_TIMEOUT,
    ) -> HTTPResponse:
        present = {name: value for name, value in query.items() if value is not None}
        request = HTTPRequest(
            f"{self.url}/api/{endpoint}?{urlencode(present)}",
            method=method,
            headers={**self._authorization(), "Content-Type": "application/json"},
            body=body,
            request_timeout=timeout,
            follow_redirects=False,
        )
        if self._reads is None:
            # Apart from the pushes' client: a read never queues behind a large push.
            self._reads = AsyncHTTPClient(force_instance=True, max_body_size=MAX_READ_BYTES)
        return await self._fetch(request, self._reads)

    def _answer(self, response: HTTPResponse) -> HTTPResponse:
        """The service's answer, if 2xx; its refusal as an error otherwise."""
        if 200 <= response.code < 300:
            return response
        raise self._refusal(response)

    def _refusal(self, response: HTTPResponse) -> BookstoreError:
        """The error a refusal of the service's stands for, in its words."""
        message, code = _message(response), response.code
        if code in (401, 403):
            return ServiceRefused(
                f"the archive service at {self.url} refused the token ({code}): "
                f"{message}; a token needs the scope access:services!service=bookstore"
            )
        if code in _ERRORS:
            return _ERRORS[code](message)
        if 400 <= code < 500 and code not in RETRIED_REFUSALS:
            return Refused(f"the archive service refused it ({code}): {message}")
        return ServiceUnavailable(f"the archive service at {self.url} answered {code}: {message}")

    def _authorization(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def _fetch(
        self, request: HTTPRequest, client: AsyncHTTPClient | None = None
    ) -> HTTPResponse:
        try:
            return await (client or AsyncHTTPClient()).fetch(request, raise_error=False)
        except (OSError, StreamClosedError, HTTPClientError) as exc:
            # No answer at all (a timeout is one too): tornado raises even so.
            raise ServiceUnavailable(
                f"the archive service at {self.url} cannot be reached ({exc})"
            ) from exc


_ERRORS: dict[int, type[BookstoreError]] = {
    400: InvalidPath,
    404: VersionNotFound,
    409: Refused,
    413: LimitExceeded,
    422: CorruptVersion,
}
"""The service's refusals, as the errors its handlers turned into them."""


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


def _json_of(response: HTTPResponse) -> Any:
    try:
        return json.loads(response.body or b"null")
    except ValueError as exc:
        raise ServiceUnavailable(f"the archive service answered something not JSON: {exc}") from exc


def _message(response: HTTPResponse) -> str:
    """The service's own words for a refusal, else the HTTP reason."""
    try:
        message = json.loads(response.body or b"{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason)
