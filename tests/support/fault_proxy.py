"""An HTTP/1.1 proxy on loopback that injects S3 faults between bookstore and a moto server.

Unlike ``tcp_proxy.TcpProxy``, which only sees bytes, this proxy parses each
request, so it can fail the Nth PUT of one object in ways S3 really fails:

* answer ``503``/``429`` with S3's XML error body (``SlowDown``,
  ``ServiceUnavailable``) for the first N PUTs of every key;
* reset the connection (``SO_LINGER`` 0, then close: an RST) after part of a
  PUT body has arrived, for the first N uploads of every key; the part is
  forwarded to moto first, so S3 too sees an upload cut short;
* answer every request with one error while ``outage`` is set (S3 down);
* wait ``latency`` seconds before handling each request;
* run a hook once moto has stored a PUT, before its answer is relayed, so a
  test can kill the client at exactly "stored, but it does not know yet".

Bodies are forwarded byte for byte. botocore sends ``Content-Length`` bodies
after ``Expect: 100-continue`` over plain HTTP (its ``aws-chunked`` encoding,
with ``x-amz-decoded-content-length``, is also a ``Content-Length`` body on
the wire, so it passes through unchanged); ``Transfer-Encoding: chunked`` is
decoded and forwarded with a length. Faults are set by assigning a ``Faults``
value to ``proxy.faults``, which takes effect for the next request.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["THROTTLING", "FaultProxy", "Faults", "S3Error"]

_HOST = "127.0.0.1"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_UPSTREAM_TIMEOUT = 60.0


class S3Error(NamedTuple):
    """An error answer as S3 gives it: a status and the code and message of its XML body."""

    status: int
    code: str
    message: str

    def body(self, resource: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<Resource>{resource}</Resource><RequestId>{uuid.uuid4().hex[:16].upper()}"
            "</RequestId></Error>"
        ).encode()


THROTTLING = (
    S3Error(503, "SlowDown", "Please reduce your request rate."),
    S3Error(429, "SlowDown", "Please reduce your request rate."),
    S3Error(503, "ServiceUnavailable", "Service is unable to handle request."),
)
"""The answers S3 (503) and S3-compatible services (429) give when overloaded, in turn."""

PutHook = Callable[[str, int], None]


@dataclass(frozen=True)
class Faults:
    """What the proxy does to the requests it forwards; the default passes everything through.

    Counts are per object key: ``error_first_puts=3`` fails the first three PUTs
    of every key, whatever their order across keys.
    """

    error_first_puts: int = 0
    """Answer the first N PUTs of every key with ``errors`` (in turn), without forwarding them."""
    errors: tuple[S3Error, ...] = THROTTLING
    reset_first_puts: int = 0
    """Reset the connection during the body of the first N PUTs of every key."""
    reset_limit: int | None = None
    """At most this many resets in all (``None``: no limit)."""
    reset_fraction: float = 0.5
    """How much of the body arrives (and is forwarded) before the reset."""
    outage: S3Error | None = None
    """Answer every request, of any method, with this error (without forwarding it)."""
    latency: float = 0.0
    """Seconds added before every request is handled."""
    on_put_stored: PutHook | None = None
    """Called with (key, attempt) after moto stored a PUT, before the answer is relayed."""


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to an S3 endpoint on loopback, injecting ``faults``."""

    def __init__(self, upstream_port: int, faults: Faults | None = None) -> None:
        self.upstream_port = upstream_port
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        self._injected: Counter[int] = Counter()
        self._requests: Counter[str] = Counter()
        self._resets = 0
        self.hook_errors: list[BaseException] = []
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    # -- what happened -----------------------------------------------------------

    def attempts(self) -> dict[str, int]:
        """PUTs received per object key (``bucket/`` excluded), faulted ones included."""
        with self._lock:
            return dict(self._attempts)

    def injected(self) -> dict[int, int]:
        """Error answers given instead of forwarding, by HTTP status."""
        with self._lock:
            return dict(self._injected)

    @property
    def resets(self) -> int:
        """Connections reset during an upload."""
        with self._lock:
            return self._resets

    def requests(self) -> dict[str, int]:
        """Requests received, by method."""
        with self._lock:
            return dict(self._requests)

    # -- decisions, made under the lock ---------------------------------------------

    def _count(self, method: str, key: str | None) -> int:
        with self._lock:
            self._requests[method] += 1
            if method != "PUT" or key is None:
                return 0
            self._attempts[key] += 1
            return self._attempts[key]

    def _error_for(self, faults: Faults, method: str, attempt: int) -> S3Error | None:
        if faults.outage is not None:
            error = faults.outage
        elif method == "PUT" and 0 < attempt <= faults.error_first_puts and faults.errors:
            error = faults.errors[(attempt - 1) % len(faults.errors)]
        else:
            return None
        with self._lock:
            self._injected[error.status] += 1
        return error

    def _take_reset(self, faults: Faults, attempt: int) -> bool:
        if not 0 < attempt <= faults.reset_first_puts:
            return False
        with self._lock:
            if faults.reset_limit is not None and self._resets >= faults.reset_limit:
                return False
            self._resets += 1
            return True

    def _hook_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.hook_errors.append(exc)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Stop listening, drop every open connection, and wait for the handler threads."""
        self._server.shutdown()
        self._thread.join()
        self._server.drop_connections()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client or moto going away mid-request is what these tests are about.
        pass


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a dropped connection looks to its peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    # -- one request -------------------------------------------------------------

    def _proxy(self) -> None:
        proxy = self.server.proxy
        faults = proxy.faults
        if faults.latency:
            time.sleep(faults.latency)  # the injected latency itself
        key = _object_key(self.path)
        attempt = proxy._count(self.command, key)
        if self.command == "PUT" and proxy._take_reset(faults, attempt):
            self._reset_during_body(faults)
            return
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return
        error = proxy._error_for(faults, self.command, attempt)
        if error is not None:
            self._answer_error(error)
            return
        status, reason, headers, answer = self._forward(body)
        if self.command == "PUT" and key is not None and 200 <= status < 300:
            hook = faults.on_put_stored
            if hook is not None:
                try:
                    hook(key, attempt)
                except BaseException as exc:
                    proxy._hook_failed(exc)
        self._relay(status, reason, headers, answer)

    def _request_headers(self) -> list[tuple[str, str]]:
        return [(n, v) for n, v in self.headers.items() if n.lower() not in _HOP_BY_HOP]

    def _read_body(self) -> bytes | None:
        """The request body (``None`` if the client went away before sending all of it)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return None
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (trailer := self.rfile.readline(65537)) not in (b"\r\n", b"\n"):
                    if not trailer:
                        return None
                return b"".join(parts)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                return None
            parts.append(chunk)
            self.rfile.readline(3)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(_HOST, self.server.proxy.upstream_port, _UPSTREAM_TIMEOUT)

    def _send_head(self, upstream: http.client.HTTPConnection, length: int) -> None:
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self._request_headers():
            if name.lower() != "content-length":
                upstream.putheader(name, value)
        upstream.putheader("Content-Length", str(length))
        upstream.endheaders()

    def _reset_during_body(self, faults: Faults) -> None:
        """Take part of the body, hand it to moto, then reset both connections."""
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        part = self.rfile.read(min(length, max(1, int(length * faults.reset_fraction))))
        upstream = self._connect()
        try:
            self._send_head(upstream, length)
            if part:
                upstream.send(part)
        except OSError:
            pass
        finally:
            if upstream.sock is not None:
                _reset(upstream.sock)
                upstream.sock = None
            upstream.close()
        _reset(self.connection)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = self._connect()
        try:
            self._send_head(upstream, len(body))
            upstream.send(body)
            response = upstream.getresponse()
            answer = response.read()
            return response.status, response.reason, response.getheaders(), answer
        finally:
            upstream.close()

    def _relay(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        bodiless = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        self.send_response_only(status, reason)
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or (lowered == "content-length" and not bodiless):
                continue
            self.send_header(name, value)
        if not bodiless:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(body)
        self.wfile.flush()

    def _answer_error(self, error: S3Error) -> None:
        body = error.body(urlsplit(self.path).path)
        self.send_response_only(error.status, http.client.responses.get(error.status, ""))
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        if error.status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()


def _object_key(raw_path: str) -> str | None:
    """The object key of a path-style request (``/bucket/key``), or ``None`` for a bucket."""
    path = urlsplit(raw_path).path
    _, _, key = path.lstrip("/").partition("/")
    return unquote(key) if key else None
