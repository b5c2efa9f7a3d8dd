"""Every saved byte is restorable: the notebook variants found in the wild come back
exactly as saved, through the REST content endpoint, a checkpoint restore, a REST
restore and the command line, whether or not nbformat would validate them.

Each variant is written to the server's root as bytes (a save through the contents
API would re-serialise it) and archived by a create-checkpoint, as JupyterLab asks
for one after Ctrl+S.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cli_archives import CLI
from tests.support.jupyter_process import JupyterServer

pytestmark = pytest.mark.e2e


def cells_v4(ids: bool) -> list[dict[str, Any]]:
    code: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "outputs": [{"name": "stdout", "output_type": "stream", "text": ["2\n"]}],
        "source": ["1 + 1"],
    }
    markdown: dict[str, Any] = {"cell_type": "markdown", "metadata": {}, "source": ["# Notes"]}
    if ids:
        code["id"], markdown["id"] = "code-1", "notes-1"
    return [markdown, code]


def v4(minor: int, *, ids: bool, **metadata: Any) -> dict[str, Any]:
    return {
        "cells": cells_v4(ids),
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}, **metadata},
        "nbformat": 4,
        "nbformat_minor": minor,
    }


V3 = {
    "metadata": {"name": "old"},
    "nbformat": 3,
    "nbformat_minor": 0,
    "worksheets": [
        {
            "cells": [
                {
                    "cell_type": "code",
                    "collapsed": False,
                    "input": "1 + 1",
                    "language": "python",
                    "metadata": {},
                    "outputs": [],
                    "prompt_number": 1,
                }
            ],
            "metadata": {},
        }
    ],
}

VARIANTS: dict[str, bytes] = {
    "nbformat-3": json.dumps(V3, indent=1).encode(),
    **{
        f"nbformat-4.{minor}": json.dumps(v4(minor, ids=minor >= 5), indent=1).encode() + b"\n"
        for minor in range(6)
    },
    "4.4-with-cell-ids": json.dumps(v4(4, ids=True), indent=1).encode() + b"\n",
    "4.5-missing-ids": json.dumps(v4(5, ids=False), indent=1).encode() + b"\n",
    "unknown-metadata": json.dumps(
        v4(5, ids=True, some_tool={"settings": [1, 2]}), indent=1
    ).encode(),
    "very-long-line": json.dumps(
        v4(5, ids=True, blob=os.urandom(300_000).hex()), separators=(",", ":")
    ).encode(),
    "indent-4-unsorted-crlf": json.dumps(dict(reversed(v4(5, ids=True).items())), indent=4)
    .encode()
    .replace(b"\n", b"\r\n"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with JupyterServer(tmp_path_factory.mktemp("byte-exact")) as jupyter:
        for name, content in VARIANTS.items():
            (jupyter.root / f"{name}.ipynb").write_bytes(content)
            answer = jupyter.api("POST", f"/api/contents/{name}.ipynb/checkpoints")
            assert answer.status_code == 201, answer.text
            (jupyter.root / f"{name}.ipynb").write_bytes(b'{"edited": "since"}')
            answer = jupyter.api("POST", f"/api/contents/{name}.ipynb/checkpoints")
            assert answer.status_code == 201, answer.text
        jupyter.wait_archived()
        yield jupyter


@pytest.mark.parametrize("name", VARIANTS)
def test_the_content_endpoint_sends_the_bytes_saved(server: JupyterServer, name: str) -> None:
    answer = server.api("GET", f"/api/bookstore/content/1/{name}.ipynb")
    assert answer.status_code == 200, answer.text
    assert answer.content == VARIANTS[name]


@pytest.mark.parametrize("name", VARIANTS)
def test_a_checkpoint_restore_writes_the_bytes_saved(server: JupyterServer, name: str) -> None:
    answer = server.api("POST", f"/api/contents/{name}.ipynb/checkpoints/1")
    assert answer.status_code == 204, answer.text
    assert (server.root / f"{name}.ipynb").read_bytes() == VARIANTS[name]


@pytest.mark.parametrize("name", VARIANTS)
def test_a_rest_restore_writes_the_bytes_saved_and_warns_of_what_nbformat_refuses(
    server: JupyterServer, name: str
) -> None:
    target = f"rest-copies/{name}.ipynb"
    server.mkdir("rest-copies")
    answer = server.api("POST", f"/api/bookstore/restore/1/{name}.ipynb", json={"target": target})
    assert answer.status_code == 200, answer.text
    assert (server.root / target).read_bytes() == VARIANTS[name]
    warning = answer.json()["warning"]
    if name == "4.4-with-cell-ids":
        assert "'id' was unexpected" in warning
    if name in ("nbformat-4.5", "unknown-metadata", "very-long-line"):
        assert warning is None


@pytest.mark.parametrize("name", VARIANTS)
def test_the_command_line_restores_the_bytes_saved(server: JupyterServer, name: str) -> None:
    target = f"cli-copies/{name}.ipynb"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(server.data_dir)}
    result = subprocess.run(
        [CLI, "--root-dir", str(server.root), "restore", f"{name}.ipynb", "1", "--to", target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (server.root / target).read_bytes() == VARIANTS[name]
    if name == "4.4-with-cell-ids":
        assert "warning:" in result.stderr
        assert "'id' was unexpected" in result.stderr
