"""Archived versions as checkpoints, through the stock contents API a jupyter server serves.

The server runs in the test process (the ``live`` fixture); the test marked ``e2e``
lists and restores checkpoints on a real ``jupyter server`` process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import archives
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import s3_config
from tests.support.tcp_proxy import TcpProxy

ID = re.compile(r"\A[\w-]+\Z")


@pytest.fixture
def bookstore_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The defaults, or (``indirect`` parameter ``"s3"``) moto S3 behind ``s3_proxy``."""
    if getattr(request, "param", None) != "s3":
        return {}
    bucket: str = request.getfixturevalue("s3_bucket")
    proxy: TcpProxy = request.getfixturevalue("s3_proxy")
    return s3_config(bucket, proxy.endpoint_url)


async def test_versions_are_listed_oldest_first_and_restoring_one_archives_it_again(
    live: LiveServer,
) -> None:
    saved = []
    for text in ("first", "second", "third"):
        await live.save("history.ipynb", notebook(text))
        saved.append((live.root / "history.ipynb").read_bytes())
    await live.wait_archived()

    listed = await live.checkpoints("history.ipynb")
    assert [item["id"] for item in listed] == ["1", "2", "3"]
    assert all(ID.match(item["id"]) for item in listed)
    assert [item["last_modified"] for item in listed] == sorted(
        item["last_modified"] for item in listed
    )

    restored = await live.api("POST", "api/contents/history.ipynb/checkpoints/1")
    assert restored.status_code == 204, restored.text
    assert (live.root / "history.ipynb").read_bytes() == saved[0]
    await live.wait_archived()
    assert [item["id"] for item in await live.checkpoints("history.ipynb")] == [
        "1",
        "2",
        "3",
        "4",
    ]
    rows = live.index_rows()
    assert rows[3][4] == rows[0][4]  # version 4 holds version 1's bytes


async def test_creating_a_checkpoint_of_archived_content_adds_no_version(live: LiveServer) -> None:
    await live.save("a.ipynb", notebook("only"))
    await live.wait_archived()
    created = await live.api("POST", "api/contents/a.ipynb/checkpoints")
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "1"
    await live.wait_archived()
    assert len(live.index_rows()) == 1


async def test_deleting_a_notebook_keeps_its_history_and_checkpoints_cannot_be_deleted(
    live: LiveServer,
) -> None:
    await live.save("gone.ipynb", notebook("v1"))
    await live.save("gone.ipynb", notebook("v2"))
    await live.wait_archived()
    refused = await live.api("DELETE", "api/contents/gone.ipynb/checkpoints/1")
    assert refused.status_code == 403
    assert "bookstore-history prune" in refused.json()["message"]
    assert (await live.api("DELETE", "api/contents/gone.ipynb")).status_code == 204
    assert [item["id"] for item in await live.checkpoints("gone.ipynb")] == ["1", "2"]
    assert len(live.index_rows()) == 2


@pytest.mark.parametrize("bookstore_config", ["s3"], indirect=True)
async def test_saves_waiting_for_s3_are_listed_and_can_be_restored(
    live: LiveServer, s3_proxy: TcpProxy
) -> None:
    await live.save("wait.ipynb", notebook("archived"))
    await live.wait_archived()
    s3_proxy.set_mode("refuse")
    await live.save("wait.ipynb", notebook("waiting"))
    waiting = (live.root / "wait.ipynb").read_bytes()
    await live.save("wait.ipynb", notebook("newest"))

    listed = [item["id"] for item in await live.checkpoints("wait.ipynb")]
    assert listed[0] == "1"
    assert len(listed) == 3
    assert all(ID.match(i) and i.startswith("pending-") for i in listed[1:])

    restored = await live.api("POST", f"api/contents/wait.ipynb/checkpoints/{listed[1]}")
    assert restored.status_code == 204, restored.text
    assert (live.root / "wait.ipynb").read_bytes() == waiting

    s3_proxy.set_mode("forward")
    await live.wait_archived(timeout=60)
    assert [item["id"] for item in await live.checkpoints("wait.ipynb")] == ["1", "2", "3", "4"]


async def test_an_unknown_checkpoint_is_a_404(live: LiveServer) -> None:
    await live.save("a.ipynb", notebook("x"))
    await live.wait_archived()
    assert (await live.api("POST", "api/contents/a.ipynb/checkpoints/99")).status_code == 404
    assert (await live.api("POST", "api/contents/a.ipynb/checkpoints/pending-x")).status_code == 404


# -- a real jupyter server process ---------------------------------------------------


def real_checkpoints(server: JupyterServer, path: str) -> list[dict[str, str]]:
    response = server.api("GET", f"/api/contents/{path}/checkpoints")
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.mark.e2e
def test_a_real_server_lists_and_restores_archived_versions_as_checkpoints(
    tmp_path: Path,
) -> None:
    """The round trip the in-process tests above stand in for, in a real process."""
    with JupyterServer(tmp_path) as server:
        saved = []
        for text in ("first", "second", "third"):
            server.save("history.ipynb", notebook(text))
            saved.append((server.root / "history.ipynb").read_bytes())
        server.wait_archived()

        listed = real_checkpoints(server, "history.ipynb")
        assert [item["id"] for item in listed] == ["1", "2", "3"]
        content = server.api("GET", "/api/bookstore/content/2/history.ipynb")
        assert (content.status_code, content.content) == (200, saved[1])

        restored = server.api("POST", "/api/contents/history.ipynb/checkpoints/1")
        assert restored.status_code == 204, restored.text
        assert (server.root / "history.ipynb").read_bytes() == saved[0]
        server.wait_archived()
        listed = real_checkpoints(server, "history.ipynb")
        assert [item["id"] for item in listed] == ["1", "2", "3", "4"]
    rows = archives.index_rows(server)
    assert rows[3][4] == rows[0][4]  # version 4 holds version 1's bytes
