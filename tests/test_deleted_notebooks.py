"""Deleted notebooks are findable: their history is listed, marked deleted, by the REST
API and the command line, and restoring a version brings the file back."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cli_archives import CLI, table_rows
from tests.support.jupyter_process import JupyterServer, notebook

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with JupyterServer(tmp_path_factory.mktemp("deleted")) as jupyter:
        jupyter.mkdir("drafts")
        jupyter.save("drafts/old idea.ipynb", notebook("first"))
        jupyter.save("drafts/old idea.ipynb", notebook("second"))
        jupyter.save("kept.ipynb", notebook("kept"))
        jupyter.wait_archived()
        yield jupyter


def cli(server: JupyterServer, *args: str) -> Any:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(server.data_dir)}
    command = [CLI, "--root-dir", str(server.root), "list", *args, "--json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_deleted_notebook_is_listed_and_a_restore_brings_it_back(
    server: JupyterServer,
) -> None:
    second = (server.root / "drafts/old idea.ipynb").read_bytes()
    deleted = server.api("DELETE", "/api/contents/drafts/old%20idea.ipynb")
    assert deleted.status_code == 204, deleted.text

    everything = server.api("GET", "/api/bookstore/paths").json()["paths"]
    assert {(p["path"], p["exists"]) for p in everything} == {
        ("drafts/old idea.ipynb", False),
        ("kept.ipynb", True),
    }
    [gone] = server.api("GET", "/api/bookstore/paths?deleted=true").json()["paths"]
    assert (gone["path"], gone["versions"], gone["exists"]) == ("drafts/old idea.ipynb", 2, False)
    assert [(p["path"], p["versions"]) for p in cli(server, "--deleted")] == [
        ("drafts/old idea.ipynb", 2)
    ]

    restored = server.api("POST", "/api/bookstore/restore/2/drafts/old%20idea.ipynb")
    assert restored.status_code == 200, restored.text
    assert (server.root / "drafts/old idea.ipynb").read_bytes() == second
    assert server.api("GET", "/api/bookstore/paths?deleted=true").json()["paths"] == []
    assert cli(server, "--deleted") == []


def test_a_deleted_folder_lists_every_notebook_it_held(server: JupyterServer) -> None:
    server.save("drafts/another.ipynb", notebook("another"))
    server.wait_archived()
    deleted = server.api("DELETE", "/api/contents/drafts")
    assert deleted.status_code == 204, deleted.text

    listed = server.api("GET", "/api/bookstore/paths?deleted=true").json()["paths"]
    assert sorted(p["path"] for p in listed) == ["drafts/another.ipynb", "drafts/old idea.ipynb"]
    env = {**os.environ, "JUPYTER_DATA_DIR": str(server.data_dir)}
    table = subprocess.run(
        [CLI, "--root-dir", str(server.root), "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {row[0]: row for row in table_rows(table)}
    assert rows["path"][-1] == "file"
    assert rows["drafts/another.ipynb"][-1] == "deleted"
    assert rows["kept.ipynb"][-1] != "deleted"
