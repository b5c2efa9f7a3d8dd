"""No trust by restore: whatever bookstore writes back is trusted only if Jupyter's
signature store already trusts that exact content.

One real ``jupyter server`` serves the module, with S3 (moto) and directory cloning
on. A notebook is trusted when its HTML and JavaScript outputs may run: Jupyter
reports it on every ``GET /api/contents/<path>`` as ``"trusted"`` in the metadata
of each code cell.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nbformat
import pytest

from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer

pytestmark = pytest.mark.e2e

STRANGER = "stranger.ipynb"
"""The stranger's notebook, as it lies in the clone bucket and in the clone directory."""


def scripted_notebook(text: str) -> dict[str, Any]:
    """A notebook whose one code cell shows an HTML output with a ``<script>``.

    Its cell claims ``"trusted": true``, as a JupyterLab session that ran it sends
    it when it saves, or as anyone can write it in a file.
    """
    cell = nbformat.v4.new_code_cell(f"display(HTML({text!r}))", id="cell-0")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": f"<script>console.log({text!r})</script>"}
        )
    ]
    cell.metadata["trusted"] = True
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [cell]
    return dict(notebook)


def strangers_bytes(text: str) -> bytes:
    """A file that claims ``"trusted": true``; nobody on this server ever ran it.

    Each test brings its own ``text``: once Jupyter has signed some content, every
    copy of it is trusted, so one test's failure would spread to the next.
    """
    return json.dumps(scripted_notebook(text), indent=1).encode()


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    """The allowlisted bucket, holding the stranger's notebook."""
    name = f"trust-{uuid.uuid4().hex[:12]}"
    moto_server.make_bucket(name)
    with moto_server.client() as s3:
        s3.put_object(Bucket=name, Key=STRANGER, Body=strangers_bytes("from s3"))
    return name


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, bucket: str
) -> Iterator[JupyterServer]:
    """A server that archives locally and may clone from ``bucket`` and from a directory
    that also holds the stranger's notebook."""
    clone_dir = tmp_path_factory.mktemp("clone-source")
    (clone_dir / STRANGER).write_bytes(strangers_bytes("from the directory"))
    env = {
        "BOOKSTORE_CLONE_S3_BUCKETS": bucket,
        "BOOKSTORE_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "BOOKSTORE_S3_REGION_NAME": REGION,
        "BOOKSTORE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "BOOKSTORE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "BOOKSTORE_FS_CLONE_DIR": str(clone_dir),
    }
    with JupyterServer(tmp_path_factory.mktemp("trust"), env=env) as server:
        yield server


def trusted(server: JupyterServer, path: str) -> bool:
    """Whether Jupyter serves ``path`` as trusted: every code cell marked so on GET."""
    response = server.api("GET", f"/api/contents/{path}")
    assert response.status_code == 200, response.text
    cells = [c for c in response.json()["content"]["cells"] if c["cell_type"] == "code"]
    assert cells, path
    return all(cell["metadata"]["trusted"] is True for cell in cells)


def upload(server: JupyterServer, path: str, content: bytes) -> None:
    """Upload a file as it is, as a plain file (the contents API keeps its bytes)."""
    server.save(path, content.decode(), kind="file")


def edit_in_session(server: JupyterServer, path: str) -> None:
    """Change the notebook and save it as the session that shows it would.

    JupyterLab sends back each cell's ``trusted`` as the server served it.
    """
    model = server.api("GET", f"/api/contents/{path}").json()["content"]
    model["cells"][0]["source"] = "# edited\n" + model["cells"][0]["source"]
    server.save(path, model)
    server.wait_archived()


def revert_to_checkpoint_1(server: JupyterServer, path: str) -> str:
    edit_in_session(server, path)
    ids = [c["id"] for c in server.api("GET", f"/api/contents/{path}/checkpoints").json()]
    assert ids[0] == "1", ids
    response = server.api("POST", f"/api/contents/{path}/checkpoints/1")
    assert response.status_code == 204, response.text
    return path


def restore_in_place(server: JupyterServer, path: str) -> str:
    edit_in_session(server, path)
    response = server.api("POST", f"/api/bookstore/restore/1/{path}")
    assert response.status_code == 200, response.text
    return path


def restore_as_copy(server: JupyterServer, path: str) -> str:
    target = path.replace(".ipynb", "-copy.ipynb")
    response = server.api("POST", f"/api/bookstore/restore/1/{path}", json={"target": target})
    assert response.status_code == 200, response.text
    return str(response.json()["target"])


RESTORES: dict[str, Callable[[JupyterServer, str], str]] = {
    "revert-to-checkpoint": revert_to_checkpoint_1,
    "rest-restore": restore_in_place,
    "rest-restore-as-copy": restore_as_copy,
}


# -- the user's own notebook ---------------------------------------------------


@pytest.mark.parametrize("restore", RESTORES)
def test_the_users_own_executed_notebook_comes_back_trusted(
    server: JupyterServer, restore: str
) -> None:
    path = f"own-{restore}.ipynb"
    # The session that ran it saves it with its cells trusted; Jupyter signs it.
    server.save(path, scripted_notebook("mine"))
    assert trusted(server, path)
    server.wait_archived()
    written = RESTORES[restore](server, path)
    assert trusted(server, written)


# -- a stranger's notebook -------------------------------------------------------


def test_a_plain_upload_of_a_strangers_notebook_is_untrusted(server: JupyterServer) -> None:
    """The yardstick: what every writer below must match."""
    upload(server, "uploaded.ipynb", strangers_bytes("uploaded"))
    assert not trusted(server, "uploaded.ipynb")


@pytest.mark.parametrize("restore", RESTORES)
def test_a_strangers_notebook_restored_from_the_archive_stays_untrusted(
    server: JupyterServer, restore: str
) -> None:
    path = f"stranger-{restore}.ipynb"
    upload(server, path, strangers_bytes(path))  # archived as version 1, claim and all
    server.wait_archived()
    assert not trusted(server, path)
    written = RESTORES[restore](server, path)
    assert not trusted(server, written)


def test_a_strangers_notebook_cloned_from_s3_stays_untrusted(
    server: JupyterServer, bucket: str
) -> None:
    body = {"s3_bucket": bucket, "s3_key": STRANGER, "target_path": "s3-clone.ipynb"}
    response = server.api("POST", "/api/bookstore/clone", json=body)
    assert response.status_code == 201, response.text
    assert not trusted(server, response.json()["path"])


def test_a_strangers_notebook_cloned_from_the_directory_stays_untrusted(
    server: JupyterServer,
) -> None:
    body = {"relpath": STRANGER, "target_path": "fs-clone.ipynb"}
    response = server.api("POST", "/api/bookstore/fs-clone", json=body)
    assert response.status_code == 201, response.text
    assert not trusted(server, response.json()["path"])
