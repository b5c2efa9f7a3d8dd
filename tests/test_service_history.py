"""History read through the archive service: ``ServiceHistory`` against the service's
own handlers.

In-process: the service's real handlers, store (a local directory) and index (a
SQLite file) on a loopback port, read with the real ``ServiceClient``. Only who
a token belongs to is decided here, by a table, as the Hub would; the Hub's
answers themselves are tested with a real JupyterHub in ``test_archive_service.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.web import Application, HTTPError

import bookstore.service_history as service_history_module
from bookstore.archiving.service_client import ServiceClient
from bookstore.core.errors import (
    CorruptVersion,
    InvalidPath,
    ServiceRefused,
    ServiceUnavailable,
    VersionNotFound,
)
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase
from bookstore.service import handlers as service_handlers_module
from bookstore.service.handlers import ServiceState, service_handlers
from bookstore.service.owners import Owners
from bookstore.service_history import ServiceHistory
from bookstore.store.local import LocalStore
from tests.support.moto_server import free_port

SAVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
PREFIX = "/services/bookstore/"
TOKENS = {"alice-token": "alice", "bob-token": "bob"}


class TokenTable(Owners):
    """Names a token's owner from ``TOKENS`` instead of asking a Hub."""

    def __init__(self) -> None:
        pass

    async def owner_of(self, headers: HTTPHeaders) -> str:
        token = headers.get("Authorization", "").partition(" ")[2]
        if token not in TOKENS:
            raise HTTPError(403, "this token lacks the scope access:services!service=bookstore")
        return TOKENS[token]


class Service:
    """The running service's address, and a history of it for each token."""

    def __init__(self, url: str) -> None:
        self.url = url

    def history(self, token: str = "alice-token") -> ServiceHistory:
        return ServiceHistory(ServiceClient(self.url, token))

    async def push(self, path: str, content: bytes, at: int) -> None:
        """A save of alice's, as her server's pusher hands it over."""
        record = ArchiveRecord(path, content, SAVED_AT + timedelta(seconds=at))
        await ServiceClient(self.url, "alice-token").push(HashedRecord.of(record))

    async def raw(self, method: str, endpoint: str, body: bytes | None = None) -> HTTPResponse:
        request = HTTPRequest(
            f"{self.url}api/{endpoint}",
            method=method,
            headers={"Authorization": "token alice-token"},
            body=body,
        )
        return await AsyncHTTPClient().fetch(request, raise_error=False)


@asynccontextmanager
async def running_service(tmp_path: Path) -> AsyncIterator[Service]:
    index = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    await index.migrate()
    ready = asyncio.Event()
    ready.set()
    state = ServiceState(
        store=LocalStore(tmp_path / "store"),
        index=index,
        owners=TokenTable(),
        workspace_prefix="bookstore/{username}",
        max_version_bytes=1 << 20,
        pushing=asyncio.Semaphore(4),
        ready=ready,
    )
    port = free_port()
    server = HTTPServer(Application(service_handlers(PREFIX, state)))
    server.listen(port, "127.0.0.1")
    try:
        yield Service(f"http://127.0.0.1:{port}{PREFIX}")
    finally:
        server.stop()
        await state.store.close()
        await index.close()


async def test_versions_are_read_page_by_page_in_the_order_and_window_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three to a page, on both sides: seven versions take three answers.
    monkeypatch.setattr(service_handlers_module, "MAX_PAGE", 3)
    monkeypatch.setattr(service_history_module, "MAX_PAGE", 3)
    async with running_service(tmp_path) as service:
        for n in range(1, 8):
            await service.push("a.ipynb", f"draft {n}".encode(), at=n)
        history = service.history()

        every = await history.versions("a.ipynb")
        newest = await history.versions("a.ipynb", limit=5, newest=True)
        total, page = await history.page("a.ipynb", 2, 4, newest=True)
        window = await history.versions(
            "a.ipynb", since=SAVED_AT + timedelta(seconds=3), until=SAVED_AT + timedelta(seconds=5)
        )
        _, content = await history.fetch("a.ipynb", 6)
        counted = await history.page("a.ipynb", 0, 0)

    assert [version.number for version in every] == [1, 2, 3, 4, 5, 6, 7]
    assert [version.number for version in newest] == [3, 4, 5, 6, 7]
    assert (total, [version.number for version in page]) == (7, [5, 4, 3, 2])
    assert [version.number for version in window] == [3, 4, 5]
    assert content == b"draft 6"
    assert counted == (7, [])
    assert every[0].queued_at == SAVED_AT + timedelta(seconds=1)


async def test_a_version_is_found_by_number_by_time_by_content_or_as_the_latest(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path) as service:
        for n in (1, 2, 3):
            await service.push("dir/b.ipynb", f"b {n}".encode(), at=10 * n)
        history = service.history()

        by_number = await history.find("dir/b.ipynb", 2)
        by_time = await history.find("dir/b.ipynb", at=SAVED_AT + timedelta(seconds=25))
        latest = await history.latest("dir/b.ipynb")
        held, not_held = (
            await history.holds("dir/b.ipynb", b"b 1"),
            await history.holds("dir/b.ipynb", b"never saved"),
        )
        never = await history.latest("none.ipynb")
        with pytest.raises(VersionNotFound, match=r"no version 9 of 'dir/b.ipynb'"):
            await history.find("dir/b.ipynb", 9)
        described = history.describe(by_number)

    assert (by_number.number, by_time.number) == (2, 2)
    assert latest is not None
    assert latest.number == 3
    assert (held, not_held, never) == (True, False, None)
    assert described["saved_as"] == "dir/b.ipynb"
    assert described["store_key"].startswith("bookstore/alice/dir/b.ipynb/@")


async def test_bytes_that_do_not_match_the_recorded_sha256_are_refused(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        await service.push("c.ipynb", b"the real bytes", at=1)
        history = service.history()
        version = await history.find("c.ipynb", 1)
        claimed = dataclasses.replace(version, sha256="0" * 64)

        with pytest.raises(CorruptVersion, match="do not match the sha256"):
            await history.read(claimed)
        assert await history.read(version) == b"the real bytes"


async def test_labels_and_pins_are_kept_by_the_service(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        await service.push("d.ipynb", b"d", at=1)
        history = service.history()

        labelled = await history.annotate("d.ipynb", 1, label="submitted")
        pinned = await history.annotate("d.ipynb", 1, pinned=True)
        with pytest.raises(InvalidPath, match="line"):
            await history.annotate("d.ipynb", 1, label="two\nlines")
        unlabelled = await history.annotate("d.ipynb", 1, label="")
        found = await history.find("d.ipynb", 1)

    assert (labelled.label, labelled.pinned) == ("submitted", False)
    assert (pinned.label, pinned.pinned) == ("submitted", True)
    assert (unlabelled.label, found.label, found.pinned) == (None, None, True)


async def test_another_users_history_is_not_there_and_a_token_refused_says_why(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path) as service:
        await service.push("alice.ipynb", b"alice's", at=1)
        bob = service.history("bob-token")

        with pytest.raises(VersionNotFound):
            await bob.find("alice.ipynb", 1)
        assert await bob.paths() == []
        assert await bob.versions("alice.ipynb") == []
        with pytest.raises(ServiceRefused, match=r"refused the token \(403\)"):
            await service.history("unknown-token").paths()
        assert [summary.path for summary in await service.history().paths()] == ["alice.ipynb"]


async def test_a_service_that_cannot_be_reached_is_an_outage(tmp_path: Path) -> None:
    history = ServiceHistory(ServiceClient(f"http://127.0.0.1:{free_port()}{PREFIX}", "t"))

    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        await history.latest("a.ipynb")
    # A token the service refuses is no bug of the server's either: listings go on.
    assert {ServiceUnavailable, ServiceRefused} <= set(history.outages)


@pytest.mark.parametrize(
    ("method", "endpoint", "body", "message"),
    [
        ("GET", "version?path=a.ipynb&version=two", None, "version must be a whole number"),
        ("GET", "versions?path=a.ipynb&limit=-1", None, "limit must be a whole number"),
        ("GET", "version?path=a.ipynb&version=2147483648", None, "below 2**31"),
        ("GET", "version?path=a.ipynb&version=" + "9" * 5000, None, "below 2**31"),
        ("GET", "versions?path=a.ipynb&order=sideways", None, "order must be oldest or newest"),
        ("GET", "version?path=a.ipynb&at=yesterday", None, "at must read like"),
        ("GET", "content?path=a.ipynb", None, "name the version"),
        ("GET", "versions?path=../a.ipynb", None, ".."),
        ("PUT", "annotation?path=a.ipynb&version=1", b"not json", "the body must be JSON"),
        ("PUT", "annotation?path=a.ipynb&version=1", b'{"pinned": "yes"}', "the body must be"),
        ("PUT", "annotation?path=a.ipynb&version=1", b"[1]", "the body must be"),
    ],
)
async def test_the_services_arguments_are_checked(
    tmp_path: Path, method: str, endpoint: str, body: bytes | None, message: str
) -> None:
    async with running_service(tmp_path) as service:
        await service.push("a.ipynb", b"a", at=1)
        answer = await service.raw(method, endpoint, body)

    assert answer.code == 400
    assert message in json.loads(answer.body)["message"]


async def test_a_rename_told_to_the_service_carries_the_history_once_and_a_copy_its_origin(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path) as service:
        for n in (1, 2):
            await service.push("old.ipynb", f"old {n}".encode(), at=n)
        client = ServiceClient(service.url, "alice-token")
        renamed_at = SAVED_AT + timedelta(seconds=10)
        await client.change("rename", "old.ipynb", "new.ipynb", renamed_at)
        # The same change again, as after an answer lost on the way back.
        await client.change("rename", "old.ipynb", "new.ipynb", renamed_at)
        await client.change("copy", "new.ipynb", "copy.ipynb", SAVED_AT + timedelta(seconds=20))
        history = service.history()

        moved = await history.versions("new.ipynb")
        left = await history.versions("old.ipynb")
        origin = await history.origin("copy.ipynb")
        no_origin = await history.origin("new.ipynb")
        repeated = await service.raw(
            "POST",
            "changes?kind=rename&from=old.ipynb&to=new.ipynb&at=20261201T000010.000000Z",
            b"",
        )
        refused = await service.raw(
            "POST", "changes?kind=move&from=a.ipynb&to=b.ipynb&at=20261201T000010.000000Z", b""
        )

    assert [(version.number, history.saved_as(version)) for version in moved] == [
        (1, "old.ipynb"),
        (2, "old.ipynb"),
    ]
    assert left == []
    assert origin is not None
    assert (origin.path, origin.version) == ("new.ipynb", 2)
    assert no_origin is None
    assert json.loads(repeated.body)["made"] is False
    assert refused.code == 400
