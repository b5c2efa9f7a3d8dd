"""Checkpoints obey the contents API's rules: a hidden file's checkpoints are refused
(unless ``allow_hidden``), and a file whose type ``archive_types`` leaves out gets
Jupyter's own checkpoints, as without bookstore, and is never archived. A refused
request writes nothing.

The real-process test replays the issue's cases; the in-process ones go through
every checkpoint request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- the cases, on a real server ---------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """The defaults: hidden files refused, only notebooks archived."""
    with JupyterServer(tmp_path_factory.mktemp("checkpoint-rules")) as jupyter:
        (jupyter.root / ".ssh").mkdir()
        (jupyter.root / ".ssh" / "id_rsa").write_text(KEY)
        jupyter.wait_archived()
        yield jupyter


@pytest.mark.e2e
def test_a_hidden_file_gets_no_checkpoint_and_nothing_is_archived(server: JupyterServer) -> None:
    before = files_under(server.root), files_under(server.store_dir)
    created = server.api("POST", "/api/contents/.ssh/id_rsa/checkpoints")
    listed = server.api("GET", "/api/contents/.ssh/id_rsa/checkpoints")
    restored = server.api("POST", "/api/contents/.ssh/id_rsa/checkpoints/1")
    assert (created.status_code, listed.status_code, restored.status_code) == (404, 404, 400)
    assert created.json()["message"] == "file or directory '.ssh/id_rsa' does not exist"
    server.wait_archived()
    assert server.api("GET", "/api/bookstore/content/1/.ssh/id_rsa").status_code == 404
    assert (files_under(server.root), files_under(server.store_dir)) == before
    assert not list(server.outbox_dir.glob("*.save"))


@pytest.mark.e2e
def test_a_type_that_is_not_archived_keeps_jupyters_own_checkpoints(
    server: JupyterServer,
) -> None:
    server.save("notes.py", "print('first')\n", kind="file")
    created = server.api("POST", "/api/contents/notes.py/checkpoints")
    assert created.status_code == 201, created.text
    checkpoint = created.json()["id"]
    assert (server.root / ".ipynb_checkpoints" / f"notes-{checkpoint}.py").is_file()
    server.save("notes.py", "print('second')\n", kind="file")
    listed = server.api("GET", "/api/contents/notes.py/checkpoints").json()
    assert [item["id"] for item in listed] == [checkpoint]
    restored = server.api("POST", f"/api/contents/notes.py/checkpoints/{checkpoint}")
    assert restored.status_code == 204, restored.text
    assert (server.root / "notes.py").read_text() == "print('first')\n"

    server.wait_archived()
    assert server.status()["archive"]["archived"] == 0
    assert server.api("GET", "/api/bookstore/versions/notes.py").status_code == 404
    assert not list(server.outbox_dir.glob("*.save"))


# -- every request, in process ---------------------------------------------------


async def statuses(live: LiveServer, path: str) -> dict[str, int]:
    requests: dict[str, tuple[str, str]] = {
        "list": ("GET", f"api/contents/{path}/checkpoints"),
        "create": ("POST", f"api/contents/{path}/checkpoints"),
        "restore": ("POST", f"api/contents/{path}/checkpoints/1"),
        "delete": ("DELETE", f"api/contents/{path}/checkpoints/1"),
    }
    return {name: (await live.api(*request)).status_code for name, request in requests.items()}


async def test_every_checkpoint_request_on_a_hidden_file_is_refused_and_writes_nothing(
    live: LiveServer,
) -> None:
    # A version of it from before, as a laxer configuration could have archived.
    live.services.hooks.capture(".hidden.ipynb", None, b"{}")
    await live.wait_archived()
    (live.root / ".hidden.ipynb").write_text("{}")
    (live.root / ".config").mkdir()
    (live.root / ".config" / "nb.ipynb").write_text("{}")
    before = files_under(live.root), live.stored_objects(), live.index_rows()
    refused = {"list": 404, "create": 404, "restore": 400, "delete": 400}
    assert await statuses(live, ".hidden.ipynb") == refused
    assert await statuses(live, ".config/nb.ipynb") == refused
    await live.wait_archived()
    assert (files_under(live.root), live.stored_objects(), live.index_rows()) == before


async def test_with_allow_hidden_a_hidden_notebooks_checkpoints_are_versions(
    live: LiveServer,
) -> None:
    live.contents_manager.allow_hidden = True
    await live.save(".shown.ipynb", notebook("one"))
    await live.save(".shown.ipynb", notebook("two"))
    await live.wait_archived()
    assert [item["id"] for item in await live.checkpoints(".shown.ipynb")] == ["1", "2"]


@pytest.mark.parametrize("bookstore_config", [{"archive_types": ["notebook", "file"]}])
async def test_an_archived_file_type_has_versions_as_checkpoints(live: LiveServer) -> None:
    await live.save("notes.py", "x = 1\n", kind="file")
    await live.wait_archived()
    created = await live.api("POST", "api/contents/notes.py/checkpoints")
    assert created.json()["id"] == "1"
    assert not (live.root / ".ipynb_checkpoints").exists()
