"""A server in service mode pushes its outbox to the archive service: what each answer does.

In-process: a real outbox on disk, the real ``Pusher``, and a real tornado HTTP
server on a loopback port standing in for the service, so each status the
service may give is given on purpose. The service itself, behind a real
JupyterHub, is in ``test_archive_service.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.outbox import IN_MEMORY_BYTES, Outbox
from bookstore.archiving.pushing import Pusher
from bookstore.archiving.service_client import ServiceClient
from bookstore.core.keys import format_timestamp
from bookstore.core.service_api import SHA256_HEADER
from tests.support.inprocess import until
from tests.support.moto_server import free_port

SAVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
TOKEN = "a-users-hub-token"


class FakeService:
    """Answers each push with the next status of ``answers`` (then 201), and keeps
    what the pushes that were taken carried."""

    def __init__(self, answers: dict[str, list[int]]) -> None:
        self.answers = answers
        self.taken: list[tuple[str, str, bytes]] = []
        self.tokens: set[str] = set()
        self.changes: list[tuple[str, str, str]] = []
        """The renames and copies taken: (kind, from, to)."""


class Versions(RequestHandler):
    def initialize(self, service: FakeService) -> None:
        self.service = service

    def post(self) -> None:
        path = self.get_argument("path")
        self.service.tokens.add(self.request.headers.get("Authorization", ""))
        waiting = self.service.answers.get(path, [])
        status = waiting.pop(0) if waiting else 201
        if status == 201:
            body = self.request.body
            assert hashlib.sha256(body).hexdigest() == self.request.headers[SHA256_HEADER]
            self.service.taken.append((path, self.get_argument("saved_at"), body))
        self.set_status(status)
        self.finish({"message": f"answered {status} on purpose"})


class Changes(RequestHandler):
    """Answers each change with the next status of ``answers`` for its ``from`` path."""

    def initialize(self, service: FakeService) -> None:
        self.service = service

    def post(self) -> None:
        kind, source, target = (self.get_argument(name) for name in ("kind", "from", "to"))
        waiting = self.service.answers.get(f"{kind} {source}", [])
        status = waiting.pop(0) if waiting else 200
        if status == 200:
            self.service.changes.append((kind, source, target))
        self.set_status(status)
        self.finish({"message": f"answered {status} on purpose"})


@asynccontextmanager
async def pushing(
    tmp_path: Path, answers: dict[str, list[int]]
) -> AsyncIterator[tuple[FakeService, Outbox, Pusher]]:
    service = FakeService(answers)
    port = free_port()
    app = Application(
        [
            (r"/services/bookstore/api/versions", Versions, {"service": service}),
            (r"/services/bookstore/api/changes", Changes, {"service": service}),
        ]
    )
    server = HTTPServer(app, max_body_size=64 << 20)
    server.listen(port, "127.0.0.1")
    outbox = Outbox(tmp_path / "outbox")
    client = ServiceClient(f"http://127.0.0.1:{port}/services/bookstore/", TOKEN)
    pusher = Pusher(
        client=client,
        outbox=outbox,
        workspace="pushed",
        retry=RetryPolicy(0.01, 0.05),
        scan_interval=0.05,
    )

    async def nothing() -> None:
        pass

    try:
        await pusher.start(nothing)
        yield service, outbox, pusher
    finally:
        await pusher.stop(5)
        server.stop()


def save(pusher: Pusher, outbox: Outbox, path: str, n: int, content: bytes) -> None:
    pusher.submit(outbox.add_bytes(path, SAVED_AT + timedelta(seconds=n), content))


async def test_each_save_is_pushed_once_in_order_with_the_servers_token(tmp_path: Path) -> None:
    async with pushing(tmp_path, {}) as (service, outbox, pusher):
        for n in range(3):
            for path in ("a.ipynb", "b.ipynb"):
                save(pusher, outbox, path, n, f"{path} {n}".encode())
        await until(lambda: _idle(pusher), what="the pushes")

        by_path: dict[str, list[Any]] = {}
        for path, saved_at, body in service.taken:
            by_path.setdefault(path, []).append((saved_at, body))
        assert by_path == {
            path: [
                (format_timestamp(SAVED_AT + timedelta(seconds=n)), f"{path} {n}".encode())
                for n in range(3)
            ]
            for path in ("a.ipynb", "b.ipynb")
        }
        assert service.tokens == {f"token {TOKEN}"}
        assert outbox.pending() == []
        assert pusher.archived == 6


async def test_a_refusal_a_retry_may_mend_keeps_the_save_and_pushes_it_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = [401, 403, 429, 500, 502, 503]
    async with pushing(tmp_path, {"a.ipynb": list(statuses)}) as (service, outbox, pusher):
        save(pusher, outbox, "a.ipynb", 1, b"first")
        save(pusher, outbox, "a.ipynb", 2, b"second")
        await until(lambda: _idle(pusher), what="the pushes")

        # Each refusal was reported, in words, as it came.
        warnings = [r.getMessage() for r in caplog.records if "could not archive" in r.getMessage()]
        assert [f"answered {status}: answered {status} on purpose" for status in statuses] == [
            message[message.index("answered") : message.index(" on purpose") + 11]
            for message in warnings
        ]
        assert [body for _, _, body in service.taken] == [b"first", b"second"]
        assert pusher.set_aside == []
        assert outbox.pending() == []


async def test_a_refusal_for_good_sets_the_save_aside_and_the_paths_next_save_goes_on(
    tmp_path: Path,
) -> None:
    answers = {"a.ipynb": [400, 413], "b.ipynb": [409]}
    async with pushing(tmp_path, answers) as (service, outbox, pusher):
        for n, (path, content) in enumerate(
            [("a.ipynb", b"bad"), ("a.ipynb", b"too big"), ("a.ipynb", b"fine"), ("b.ipynb", b"x")]
        ):
            save(pusher, outbox, path, n, content)
        await until(lambda: _idle(pusher), what="the pushes")

        assert [body for _, _, body in service.taken] == [b"fine"]
        reasons = sorted(item.reason for item in outbox.set_aside_saves())
        assert reasons == [
            "the archive service refused it: answered 400 on purpose",
            "the archive service refused it: answered 409 on purpose",
            "the archive service refused it: answered 413 on purpose",
        ]
        assert len(pusher.set_aside) == 3


async def test_a_save_too_large_to_hold_in_memory_is_streamed_from_its_outbox_file(
    tmp_path: Path,
) -> None:
    content = bytes(range(256)) * ((IN_MEMORY_BYTES // 256) + 17)
    async with pushing(tmp_path, {}) as (service, outbox, pusher):
        save(pusher, outbox, "big.bin", 1, content)
        await until(lambda: _idle(pusher), what="the push")

        assert [body for _, _, body in service.taken] == [content]


async def test_a_service_that_does_not_answer_keeps_every_save(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    client = ServiceClient(f"http://127.0.0.1:{free_port()}/services/bookstore/", TOKEN)
    pusher = Pusher(client=client, outbox=outbox, workspace="pushed", retry=RetryPolicy(0.01, 0.05))

    async def nothing() -> None:
        pass

    await pusher.start(nothing)
    try:
        save(pusher, outbox, "a.ipynb", 1, b"kept")
        last_error = await until(_last_error(pusher), what="a failure reported")
    finally:
        await pusher.stop(0)

    assert "cannot be reached" in last_error
    assert [entry.path for entry in Outbox(tmp_path / "outbox").pending()] == ["a.ipynb"]


async def test_a_rename_waits_for_the_saves_before_it_and_is_retried_until_taken(
    tmp_path: Path,
) -> None:
    answers = {"a.ipynb": [503], "rename a.ipynb": [503, 429]}
    async with pushing(tmp_path, answers) as (service, outbox, pusher):
        save(pusher, outbox, "a.ipynb", 1, b"before")
        await pusher.rename("a.ipynb", "b.ipynb", wait=0)
        save(pusher, outbox, "b.ipynb", 2, b"after")

        async def done() -> bool:
            return await _idle(pusher) and bool(service.changes)

        await until(done, what="the pushes and the rename")

        assert [body for _, _, body in service.taken] == [b"before", b"after"]
        assert service.changes == [("rename", "a.ipynb", "b.ipynb")]


async def test_a_rename_refused_for_good_is_let_go_and_holds_up_no_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An older service without the changes endpoint answers 404."""
    answers = {"rename a.ipynb": [404], "copy b.ipynb": [400]}
    async with pushing(tmp_path, answers) as (service, outbox, pusher):
        moved = await pusher.rename("a.ipynb", "b.ipynb", wait=5)
        pusher.note_copy("b.ipynb", "c.ipynb")
        save(pusher, outbox, "b.ipynb", 1, b"saved after")
        await until(lambda: _idle(pusher), what="the push")

        assert moved is True
        assert [body for _, _, body in service.taken] == [b"saved after"]
        assert service.changes == []
        assert pusher.last_error is None
    refusals = [r.getMessage() for r in caplog.records if "refused the" in r.getMessage()]
    assert len(refusals) == 2
    assert "refused the rename of a.ipynb to b.ipynb" in refusals[0]


async def _idle(pusher: Pusher) -> bool:
    return pusher.ready and pusher.backlog == 0


def _last_error(pusher: Pusher) -> Any:
    async def reported() -> str | None:
        return pusher.last_error

    return reported
