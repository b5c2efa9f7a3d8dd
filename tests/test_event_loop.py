"""Bookstore's heavy work never stalls the server: the issue's three cases, on a real
server with a loop-lag probe (``tests/support/loop_lag.py``) inside it, and, in
process, the limits that refuse a diff too large, in words.

The probe counts how late a 10 ms timer fires on the server's loop, capped by the
CPU time the server used meanwhile, so a busy machine does not count as lag. Run
with ``-s`` to see the figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bookstore.config import FILES_WORKSPACE
from bookstore.core.view import PathView
from tests.support.deep_history import add_history
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.loop_lag import LoopLag, loop_lag_config

MAX_LAG_MS = 50.0
DEEP = 200_000
"""Versions of one path in the index."""


def cells_without_ids(count: int) -> dict[str, Any]:
    """A valid nbformat 4.4 notebook (no cell ids) of ``count`` identical cells: the
    worst case of pairing cells by their sources."""
    cell = {"cell_type": "markdown", "metadata": {}, "source": "Note"}
    return {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [cell] * count}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    jupyter = JupyterServer(tmp_path_factory.mktemp("event-loop"))
    loop_lag_config(jupyter)
    with jupyter:
        jupyter.wait_archived()
        yield jupyter


@pytest.mark.e2e
def test_a_rest_diff_of_16000_cells_without_ids_does_not_stall_the_loop(
    server: JupyterServer,
) -> None:
    server.save("big.ipynb", cells_without_ids(16_000))
    server.save("big.ipynb", cells_without_ids(15_999))
    server.wait_archived()
    size = (server.root / "big.ipynb").stat().st_size
    assert 1_000_000 < size < 2_000_000
    assert '"id"' not in (server.root / "big.ipynb").read_text()

    answers = []
    lag = LoopLag.during(
        server, lambda: answers.append(server.api("GET", "/api/bookstore/diff/1/big.ipynb"))
    )
    print(f"\nREST diff of {size:,} bytes, 16,000 cells without ids: {lag}")
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"] == "1 cell removed"
    assert lag.worst_ms <= MAX_LAG_MS, lag


@pytest.fixture(scope="module")
def deep(server: JupyterServer) -> str:
    """``deep.ipynb`` with 200,000 versions: all but the last written into the index."""
    index_url = f"sqlite+aiosqlite:///{server.index_file}"
    stored = PathView.of_root(server.root).stored("deep.ipynb")
    add_history(index_url, FILES_WORKSPACE, stored, range(1, DEEP))
    server.save("deep.ipynb", notebook("newest"))
    server.wait_archived()
    return "deep.ipynb"


@pytest.mark.e2e
def test_the_checkpoint_list_of_200000_versions_is_bounded_and_does_not_stall_the_loop(
    server: JupyterServer, deep: str
) -> None:
    answers = []
    lag = LoopLag.during(
        server, lambda: answers.append(server.api("GET", f"/api/contents/{deep}/checkpoints"))
    )
    (answer,) = answers
    print(f"\ncheckpoint list of {DEEP:,} versions ({len(answer.content):,} bytes): {lag}")
    assert answer.status_code == 200, answer.text
    listed = [item["id"] for item in answer.json()]
    assert listed == [str(n) for n in range(DEEP - 99, DEEP + 1)]
    assert lag.worst_ms <= MAX_LAG_MS, lag


@pytest.mark.e2e
def test_a_checkpoint_of_a_path_with_200000_versions_does_not_stall_the_loop(
    server: JupyterServer, deep: str
) -> None:
    created, saved = [], []

    def save_and_checkpoint() -> None:
        server.save(deep, notebook("saved and checkpointed"))
        saved.append((server.root / deep).read_bytes())
        created.append(server.api("POST", f"/api/contents/{deep}/checkpoints"))
        server.wait_archived()

    lag = LoopLag.during(server, save_and_checkpoint)
    print(f"\nsave and create-checkpoint with {DEEP:,} versions, until archived: {lag}")
    (answer,) = created
    assert answer.status_code == 201, answer.text
    server.save(deep, notebook("edited since"))
    restored = server.api("POST", f"/api/contents/{deep}/checkpoints/{answer.json()['id']}")
    assert restored.status_code == 204, restored.text
    assert (server.root / deep).read_bytes() == saved[0]
    assert lag.worst_ms <= MAX_LAG_MS, lag


# -- limits, in process ------------------------------------------------------------


async def test_a_diff_past_a_limit_is_refused_in_words(live: LiveServer) -> None:
    await live.save("many.ipynb", notebook("few cells"))
    await live.wait_archived()
    (live.root / "many.ipynb").write_text(json.dumps(cells_without_ids(50_001)))
    answer = await live.api("GET", "api/bookstore/diff/1/many.ipynb")
    assert answer.status_code == 413
    assert answer.json()["message"] == (
        "the new version has 50,001 cells, and bookstore compares notebooks of at most 50,000 cells"
    )
