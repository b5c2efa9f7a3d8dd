"""What a History panel asks of the server, on a jupyter server in the test process:
versions newest first, labels and pins over REST, the diff's summary and nbdime forms,
and an event each time a version is archived or annotated."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest
from jupyter_events import EventLogger
from jupyter_server.auth.authorizer import Authorizer
from sqlalchemy.exc import OperationalError
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from bookstore.core.nbdime_format import nbformat_reads
from bookstore.core.view import PathView
from bookstore.index import Version
from bookstore.server.events import VERSION_EVENT, VersionEvents
from tests.support.deep_history import insert_history
from tests.support.inprocess import LiveServer, until
from tests.support.jupyter_process import notebook
from tests.support.nbdime_patch import patch

V = "/api/bookstore/versions"


async def save_versions(live: LiveServer, path: str, count: int) -> None:
    for n in range(count):
        await live.save(path, notebook(f"{path} v{n + 1}"))
    await live.wait_archived()


async def listed(live: LiveServer, url: str) -> dict[str, Any]:
    answer = await live.api("GET", url)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# -- versions, newest first ------------------------------------------------------------


async def test_newest_first_pages_chain_to_the_oldest_without_skipping_one(
    live: LiveServer,
) -> None:
    # Listing reads the index only: 250 versions written there, once it is ready.
    await live.wait_archived()
    history = live.services.history
    await insert_history(history.index, history.workspace, live.stored("long.ipynb"), range(1, 251))
    seen: list[int] = []
    pages, offset, saved_meanwhile = 0, 0, 0
    while offset is not None:
        page = await listed(live, f"{V}/long.ipynb?order=newest&limit=100&offset={offset}")
        numbers = [v["version"] for v in page["versions"]]
        assert numbers == sorted(numbers, reverse=True)
        seen += numbers
        offset, pages = page["next_offset"], pages + 1
        if pages == 1:  # a save while the panel pages: it moves the pages by one
            await save_versions(live, "long.ipynb", 1)
            saved_meanwhile = 1
    assert seen[0] == 250
    assert seen[-1] == 1
    assert set(seen) == set(range(1, 251)), "a version was skipped"
    assert len(seen) == 250 + saved_meanwhile  # the version on a page's edge, listed twice
    newest = await listed(live, f"{V}/long.ipynb?order=newest&limit=1")
    assert [v["version"] for v in newest["versions"]] == [251]
    assert (newest["total"], newest["next_offset"], newest["pending"]) == (251, 1, [])


async def test_a_page_the_index_cannot_give_says_why_and_still_lists_the_saves_waiting(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The History panel keeps showing what is safe in the outbox during an outage."""
    await save_versions(live, "a.ipynb", 1)

    async def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT versions", {}, Exception("disk I/O error"))

    monkeypatch.setattr(live.services.history, "page", unreadable)
    page = await listed(live, f"{V}/a.ipynb?order=newest")

    assert (page["total"], page["versions"], page["next_offset"]) == (0, [], None)
    assert page["pending"] == []
    assert "the archived versions cannot be read now" in page["unavailable"]
    assert "disk I/O error" in page["unavailable"]
    monkeypatch.undo()
    assert (await listed(live, f"{V}/a.ipynb"))["unavailable"] is None


async def test_oldest_first_stays_the_default_and_any_other_order_is_refused(
    live: LiveServer,
) -> None:
    await save_versions(live, "o.ipynb", 3)
    default = await listed(live, f"{V}/o.ipynb?limit=2")
    oldest = await listed(live, f"{V}/o.ipynb?limit=2&order=oldest")
    refused = await live.api("GET", f"{V}/o.ipynb?order=latest")
    assert [v["version"] for v in default["versions"]] == [1, 2]
    assert default == oldest
    assert refused.status_code == 400
    assert refused.json()["message"] == "order must be oldest or newest"


# -- labels and pins ----------------------------------------------------------------------


def version_of(page: dict[str, Any], number: int) -> dict[str, Any]:
    return next(v for v in page["versions"] if v["version"] == number)


async def test_labels_and_pins_are_set_and_cleared_and_listed_with_the_versions(
    live: LiveServer,
) -> None:
    await live.mkdir("dir")
    await save_versions(live, "dir/a.ipynb", 2)
    labelled = await live.api("PUT", "/api/bookstore/label/1/dir/a.ipynb", {"label": "submitted"})
    pinned = await live.api("PUT", "/api/bookstore/pin/2/dir/a.ipynb")
    assert labelled.status_code == 200, labelled.text
    assert pinned.status_code == 200, pinned.text
    page = await listed(live, f"{V}/dir/a.ipynb")
    assert labelled.json() == version_of(page, 1)
    assert pinned.json() == version_of(page, 2)
    assert (version_of(page, 1)["label"], version_of(page, 1)["pinned"]) == ("submitted", False)
    assert (version_of(page, 2)["label"], version_of(page, 2)["pinned"]) == (None, True)

    unlabelled = await live.api("DELETE", "/api/bookstore/label/1/dir/a.ipynb")
    unpinned = await live.api("DELETE", "/api/bookstore/pin/2/dir/a.ipynb")
    page = await listed(live, f"{V}/dir/a.ipynb")
    assert unlabelled.json() == version_of(page, 1)
    assert unpinned.json() == version_of(page, 2)
    assert [(v["label"], v["pinned"]) for v in page["versions"]] == [(None, False)] * 2


BAD_LABELS = {
    "not JSON": "{label",
    "not an object": '["x"]',
    "no label": "{}",
    "not a string": '{"label": 7}',
    "empty": '{"label": ""}',
    "only spaces": '{"label": "   "}',
    "two lines": '{"label": "a\\nb"}',
    "too long": json.dumps({"label": "x" * 1025}),
}


@pytest.mark.parametrize("body", BAD_LABELS.values(), ids=BAD_LABELS.keys())
async def test_a_label_the_command_line_would_refuse_is_a_400_with_a_reason(
    live: LiveServer, body: str
) -> None:
    await save_versions(live, "a.ipynb", 1)
    answer = await live.api("PUT", "/api/bookstore/label/1/a.ipynb", data=body)
    assert answer.status_code == 400
    assert answer.json()["message"]
    assert (await live.versions("a.ipynb"))[0].label is None


async def test_annotating_a_missing_version_or_a_hidden_path_is_a_404(live: LiveServer) -> None:
    await save_versions(live, "a.ipynb", 1)
    for method, route, body in [
        ("PUT", "label", {"label": "x"}),
        ("DELETE", "label", None),
        ("PUT", "pin", None),
        ("DELETE", "pin", None),
    ]:
        missing = await live.api(method, f"/api/bookstore/{route}/9/a.ipynb", body)
        hidden = await live.api(method, f"/api/bookstore/{route}/1/.hidden.ipynb", body)
        assert missing.status_code == 404, (method, route)
        assert "no version 9" in missing.json()["message"]
        assert hidden.status_code == 404, (method, route)


class ReadOnlyAuthorizer(Authorizer):
    """Lets everyone read, and no one write."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


async def test_labels_and_pins_need_write_access_to_contents(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save_versions(live, "a.ipynb", 1)
    anonymous = await live.api("PUT", "/api/bookstore/pin/1/a.ipynb", anonymous=True)
    reader = ReadOnlyAuthorizer(parent=live.app, identity_provider=live.app.identity_provider)
    monkeypatch.setitem(live.app.web_app.settings, "authorizer", reader)
    statuses = [
        (await live.api(method, f"/api/bookstore/{route}/1/a.ipynb", body)).status_code
        for method, route, body in [
            ("PUT", "label", {"label": "x"}),
            ("DELETE", "label", None),
            ("PUT", "pin", None),
            ("DELETE", "pin", None),
        ]
    ]
    assert anonymous.status_code == 403
    assert statuses == [403] * 4
    assert (await live.api("GET", f"{V}/a.ipynb")).status_code == 200
    [row] = await live.versions("a.ipynb")
    assert (row.label, row.pinned) == (None, False)


# -- diff formats ---------------------------------------------------------------------------


async def two_versions(live: LiveServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Version 1, then version 2: one cell changed, one added, the kernel named."""
    old = notebook("v1", cells=2)
    new = notebook("v1", cells=2)
    new["cells"][0]["source"] = "print('v2')\nprint('more')"
    new["cells"].append({**notebook("x")["cells"][0], "id": "added", "source": "# added"})
    new["metadata"] = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    await live.save("d.ipynb", old)
    await live.save("d.ipynb", new)
    await live.wait_archived()
    stored = [(await live.api("GET", f"/api/bookstore/content/{n}/d.ipynb")).json() for n in (1, 2)]
    return stored[0], stored[1]


COUNTS = {"added": 1, "removed": 0, "changed": 1, "moved": 0}


async def test_the_cells_diff_now_gives_its_counts_too(live: LiveServer) -> None:
    await two_versions(live)
    cells = await listed(live, "/api/bookstore/diff/1/d.ipynb?to=2")
    explicit = await listed(live, "/api/bookstore/diff/1/d.ipynb?to=2&format=cells")
    assert cells == explicit
    assert cells["counts"] == COUNTS
    assert cells["summary"] == "1 cell added, 1 changed; notebook metadata changed"
    assert [c["kind"] for c in cells["cells"]] == ["changed", "unchanged", "added"]


async def test_the_summary_diff_is_the_counts_without_the_cells(live: LiveServer) -> None:
    await two_versions(live)
    summary = await listed(live, "/api/bookstore/diff/1/d.ipynb?to=2&format=summary")
    assert summary == {
        "path": "d.ipynb",
        "from": 1,
        "to": 2,
        "summary": "1 cell added, 1 changed; notebook metadata changed",
        "counts": COUNTS,
        "metadata_changed": True,
    }


async def test_the_nbdime_diff_applied_to_its_base_gives_the_newer_version(
    live: LiveServer,
) -> None:
    old, new = await two_versions(live)
    answer = await listed(live, "/api/bookstore/diff/1/d.ipynb?to=2&format=nbdime")
    assert set(answer) == {"path", "from", "to", "summary", "counts", "base", "diff"}
    assert (answer["path"], answer["from"], answer["to"]) == ("d.ipynb", 1, 2)
    assert answer["counts"] == COUNTS
    assert answer["base"] == nbformat_reads(old)
    assert [entry["key"] for entry in answer["diff"]] == ["cells", "metadata"]
    assert patch(answer["base"], answer["diff"]) == nbformat_reads(new)


async def test_the_nbdime_diff_against_the_file_now_has_no_newer_version(
    live: LiveServer,
) -> None:
    await two_versions(live)
    answer = await listed(live, "/api/bookstore/diff/2/d.ipynb?format=nbdime")
    assert (answer["to"], answer["diff"], answer["counts"]) == (None, [], dict.fromkeys(COUNTS, 0))


async def test_a_diff_format_other_than_cells_summary_or_nbdime_is_refused(
    live: LiveServer,
) -> None:
    await two_versions(live)
    refused = await live.api("GET", "/api/bookstore/diff/1/d.ipynb?to=2&format=html")
    assert refused.status_code == 400
    assert refused.json()["message"] == "format must be cells, summary or nbdime"


# -- events ------------------------------------------------------------------------------------


async def test_each_archived_version_reaches_a_subscriber_of_the_event_websocket(
    live: LiveServer,
) -> None:
    url = f"ws://localhost:{live.app.port}{live.app.base_url}api/events/subscribe"
    token = {"Authorization": f"token {live.app.identity_provider.token}"}
    socket = await websocket_connect(HTTPRequest(url, headers=token))
    try:
        await live.mkdir("dir")
        await save_versions(live, "dir/e.ipynb", 2)
        events = []
        while len(events) < 2:
            message = await asyncio.wait_for(socket.read_message(), timeout=30)
            assert message is not None, "the server closed the event websocket"
            event = json.loads(message)
            if event["schema_id"] == VERSION_EVENT:
                events.append(event)
    finally:
        socket.close()
    assert events == [
        {"schema_id": VERSION_EVENT, "action": "archived", "path": "dir/e.ipynb", "version": 1},
        {"schema_id": VERSION_EVENT, "action": "archived", "path": "dir/e.ipynb", "version": 2},
    ]


async def test_labels_and_pins_set_over_rest_are_announced(live: LiveServer) -> None:
    await save_versions(live, "a.ipynb", 2)
    heard: list[dict[str, Any]] = []

    async def listener(logger: EventLogger, schema_id: str, data: dict[str, Any]) -> None:
        heard.append(data)

    live.app.event_logger.add_listener(schema_id=VERSION_EVENT, listener=listener)
    await live.api("PUT", "/api/bookstore/label/2/a.ipynb", {"label": "final"})
    await live.api("DELETE", "/api/bookstore/pin/1/a.ipynb")
    await live.api("PUT", "/api/bookstore/pin/9/a.ipynb")  # no such version: nothing to say

    async def both() -> bool:
        return len(heard) >= 2

    await until(both, 10, "the two annotated events")
    await live.app.event_logger.gather_listeners()
    assert heard == [
        {"action": "annotated", "path": "a.ipynb", "version": 2},
        {"action": "annotated", "path": "a.ipynb", "version": 1},
    ]


async def test_an_event_that_cannot_be_emitted_never_stops_archiving(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def listener(logger: EventLogger, schema_id: str, data: dict[str, Any]) -> None:
        """Someone listens, so the event is made (and its modifier run)."""

    def refuse(schema_id: str, data: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("this event bus is broken")

    def fail(version: Version) -> None:
        raise RuntimeError("so is this callback")

    live.app.event_logger.add_listener(schema_id=VERSION_EVENT, listener=listener)
    live.app.event_logger.add_modifier(schema_id=VERSION_EVENT, modifier=refuse)
    await save_versions(live, "kept.ipynb", 2)
    live.services.archiver.on_archived = fail
    await save_versions(live, "kept.ipynb", 1)
    status = await live.status()
    assert [row.number for row in await live.versions("kept.ipynb")] == [1, 2, 3]
    assert status["archive"]["last_error"] is None
    assert "this event bus is broken" in caplog.text
    assert "so is this callback" in caplog.text


async def test_versions_outside_the_servers_root_are_not_announced() -> None:
    logger = EventLogger()
    events = VersionEvents(logger, PathView("home/ada/project", by_file=True), logging.getLogger())
    heard: list[dict[str, Any]] = []

    async def listener(logger: EventLogger, schema_id: str, data: dict[str, Any]) -> None:
        heard.append(data)

    logger.add_listener(schema_id=VERSION_EVENT, listener=listener)
    now = datetime.now(timezone.utc)
    for path in ("home/ada/elsewhere.ipynb", "home/ada/project/in/a.ipynb"):
        row = Version(path=path, number=3, queued_at=now, archived_at=now)
        events.archived(row)
    await logger.gather_listeners()
    assert heard == [{"action": "archived", "path": "in/a.ipynb", "version": 3}]
