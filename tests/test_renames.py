"""A history follows its file: renames, folder moves, chains and swaps through the
contents API carry every version; a freed name starts afresh; a file moved in a
terminal is recognised by its content; a copy records where it came from; and an
index rebuilt from the store replays all of it.

Each test runs a real ``jupyter server`` and speaks HTTP to it, as JupyterLab does.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import nbformat
import pytest

from tests.support.archives import sqlite_index_rows
from tests.support.cli_archives import CLI, table_rows
from tests.support.jupyter_process import JupyterServer, notebook, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with JupyterServer(tmp_path_factory.mktemp("renames")) as jupyter:
        yield jupyter


def saves(server: JupyterServer, path: str, *texts: str) -> None:
    for text in texts:
        server.save(path, notebook(text))
    server.wait_archived()


def rename(server: JupyterServer, old: str, new: str) -> None:
    """Rename as JupyterLab does: a PATCH of the contents API."""
    answer = server.api("PATCH", f"/api/contents/{quote(old)}", json={"path": new})
    assert answer.status_code == 200, answer.text


def history(server: JupyterServer, path: str) -> list[tuple[int, str, str]]:
    """(version, the name it was saved under, its first cell's text) of each version."""
    answer = server.api("GET", f"/api/bookstore/versions/{quote(path)}")
    assert answer.status_code == 200, answer.text
    return [
        (v["version"], v["saved_as"], text_of(server, path, v["version"]))
        for v in answer.json()["versions"]
    ]


def text_of(server: JupyterServer, path: str, version: int) -> str:
    answer = server.api("GET", f"/api/bookstore/content/{version}/{quote(path)}")
    assert answer.status_code == 200, answer.text
    source = "".join(json.loads(answer.content)["cells"][0]["source"])
    return str(ast.literal_eval(source.removeprefix("print(").removesuffix(", 0)")))


def cli(server: JupyterServer, *args: str) -> str:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(server.data_dir)}
    command = [CLI, "--root-dir", str(server.root), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_renamed_notebook_keeps_every_version_each_with_the_name_it_had(
    server: JupyterServer,
) -> None:
    saves(server, "draft.ipynb", "one", "two", "three")
    rename(server, "draft.ipynb", "final.ipynb")

    assert history(server, "final.ipynb") == [
        (1, "draft.ipynb", "one"),
        (2, "draft.ipynb", "two"),
        (3, "draft.ipynb", "three"),
    ]
    assert history(server, "draft.ipynb") == []
    # The checkpoint picker offers them, and restores them, under the new name.
    listed = server.api("GET", "/api/contents/final.ipynb/checkpoints").json()
    assert [(c["id"], c.get("saved_as")) for c in listed] == [
        ("1", "draft.ipynb"),
        ("2", "draft.ipynb"),
        ("3", "draft.ipynb"),
    ]
    restored = server.api("POST", "/api/contents/final.ipynb/checkpoints/1")
    assert restored.status_code == 204, restored.text
    server.wait_archived()
    assert history(server, "final.ipynb")[-1] == (4, "final.ipynb", "one")
    # The command line shows the same.
    header, *rows = table_rows(cli(server, "list", "final.ipynb"))
    assert header[-1] == "saved as"
    assert [(row[0], row[-1]) for row in rows] == [
        ("1", "draft.ipynb"),
        ("2", "draft.ipynb"),
        ("3", "draft.ipynb"),
        ("4", "final.ipynb"),
    ]
    listed_json = json.loads(cli(server, "list", "final.ipynb", "--json"))
    assert [v["saved_as"] for v in listed_json] == ["draft.ipynb"] * 3 + ["final.ipynb"]


def test_a_moved_folder_a_chain_and_a_swap_carry_every_version_and_a_rebuilt_index_agrees(
    server: JupyterServer,
) -> None:
    server.mkdir("project")
    server.mkdir("project/data")
    saves(server, "project/a.ipynb", "a1", "a2")
    saves(server, "project/data/b.ipynb", "b1")
    saves(server, "chain.ipynb", "c1", "c2")
    saves(server, "left.ipynb", "l1", "l2")
    saves(server, "right.ipynb", "r1")

    server.mkdir("archive")
    rename(server, "project", "archive/2026")
    rename(server, "chain.ipynb", "chain-b.ipynb")
    rename(server, "chain-b.ipynb", "chain-c.ipynb")
    rename(server, "left.ipynb", "tmp.ipynb")  # a swap, through a temporary name
    rename(server, "right.ipynb", "left.ipynb")
    rename(server, "tmp.ipynb", "right.ipynb")

    expected = {
        "archive/2026/a.ipynb": [(1, "project/a.ipynb", "a1"), (2, "project/a.ipynb", "a2")],
        "archive/2026/data/b.ipynb": [(1, "project/data/b.ipynb", "b1")],
        "chain-c.ipynb": [(1, "chain.ipynb", "c1"), (2, "chain.ipynb", "c2")],
        "left.ipynb": [(1, "right.ipynb", "r1")],
        "right.ipynb": [(1, "left.ipynb", "l1"), (2, "left.ipynb", "l2")],
    }
    for path, versions in expected.items():
        assert history(server, path) == versions, path
    listed = json.loads(cli(server, "list", "--json"))
    assert sorted(p["path"] for p in listed) == sorted(expected)
    assert all(p["exists"] for p in listed)

    # An index lost and rebuilt from the store replays the renames.
    before = sqlite_index_rows(server.index_file, server.root)
    server.stop()
    for part in ("", "-wal", "-shm"):
        server.index_file.with_name(server.index_file.name + part).unlink(missing_ok=True)
    cli(server, "reindex")
    assert sqlite_index_rows(server.index_file, server.root) == before


def test_a_new_file_under_a_freed_name_starts_a_fresh_history(server: JupyterServer) -> None:
    saves(server, "report.ipynb", "old 1", "old 2")
    rename(server, "report.ipynb", "report-2025.ipynb")
    saves(server, "report.ipynb", "new 1")

    assert history(server, "report.ipynb") == [(1, "report.ipynb", "new 1")]
    assert [text for _, _, text in history(server, "report-2025.ipynb")] == ["old 1", "old 2"]


def test_a_notebook_moved_in_a_terminal_is_recognised_by_its_content(
    server: JupyterServer,
) -> None:
    saves(server, "study.ipynb", "first draft", "second draft")
    blank = {**notebook("blank"), "cells": [nbformat.v4.new_code_cell("", id="cell-0")]}
    server.save("blank.ipynb", blank)
    server.wait_archived()
    os.rename(server.root / "study.ipynb", server.root / "moved.ipynb")  # as `mv` does
    os.rename(server.root / "blank.ipynb", server.root / "blank-moved.ipynb")

    # Opened and saved under the new name: the content the old name last had.
    server.save("moved.ipynb", notebook("second draft"))
    server.save("blank-moved.ipynb", blank)
    server.wait_archived()

    assert history(server, "moved.ipynb") == [
        (1, "study.ipynb", "first draft"),
        (2, "study.ipynb", "second draft"),
    ]
    # Empty notebooks are alike by chance: sameness says nothing of identity.
    [only] = server.api("GET", "/api/bookstore/versions/blank-moved.ipynb").json()["versions"]
    assert (only["version"], only["saved_as"]) == (1, "blank-moved.ipynb")
    assert "holds what" in server.log()


def test_a_duplicate_starts_its_own_history_recording_the_version_it_was_copied_from(
    server: JupyterServer,
) -> None:
    saves(server, "model.ipynb", "v1", "v2")
    copied = server.api("POST", "/api/contents", json={"copy_from": "model.ipynb"})
    assert copied.status_code == 201, copied.text
    copy = copied.json()["path"]
    server.wait_archived()

    def origin() -> Any:
        answer = server.api("GET", f"/api/bookstore/versions/{quote(copy)}").json()
        return answer["copied_from"]

    found = wait_for(origin, timeout=30, what="the copy to be noted")
    assert (found["path"], found["version"]) == ("model.ipynb", 2)
    assert [text for _, _, text in history(server, copy)] == ["v2"]
    assert [text for _, _, text in history(server, "model.ipynb")] == ["v1", "v2"]
    assert "copied from model.ipynb version 2" in cli(server, "list", copy)
    plain = server.api("GET", "/api/bookstore/versions/model.ipynb").json()
    assert plain["copied_from"] is None
