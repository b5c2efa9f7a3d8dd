"""A TCP proxy on loopback that can slow, swallow or refuse traffic to a real server.

It stands between bookstore and the moto S3 server, so tests can make S3 slow
or unreachable without touching the server that holds the objects.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Literal

__all__ = ["TcpProxy"]

Mode = Literal["forward", "blackhole", "refuse"]


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream``; ``mode`` and ``delay`` change live.

    * ``forward``: pass bytes through, waiting ``delay`` seconds before each
      chunk a client sends (an upload slowed down).
    * ``blackhole``: accept connections and never answer (a hung endpoint).
    * ``refuse``: stop listening (a stopped server: connection refused).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.mode: Mode = "forward"
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = self._listen(0)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode) -> None:
        """Switch behaviour; every open connection is dropped so the change is immediate."""
        with self._lock:
            self.mode = mode
        self._drop_connections()
        if mode == "refuse" and self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would
            # leave the socket accepting connections on Linux.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        elif mode != "refuse" and self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        self.set_mode("refuse")

    def _listen(self, port: int) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return int(listener.getsockname()[1])

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._track(client) and self.mode == "forward":
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            self._forget(client)
            return
        if not self._track(upstream):
            self._forget(client)
            return
        sending = threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True)
        sending.start()
        self._pipe(upstream, client, False)
        sending.join()
        self._forget(client, upstream)

    def _pipe(self, source: socket.socket, target: socket.socket, slowed: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if slowed and self.delay:
                    time.sleep(self.delay)
                target.sendall(chunk)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket) -> bool:
        """Keep ``sock`` to drop on the next mode change; a closed proxy closes it at once."""
        with self._lock:
            if self.mode != "refuse":
                self._sockets.add(sock)
                return True
        sock.close()
        return False

    def _forget(self, *sockets: socket.socket) -> None:
        """Close connections that ended by themselves, so none is left for the collector."""
        with self._lock:
            self._sockets.difference_update(sockets)
        for sock in sockets:
            sock.close()

    def _drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
