"""What versions cost in the store is visible beside what they saved: in the status, the
paths list, the SQL view and ``stats``, and an index rebuilt from the store agrees."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import nbformat

from bookstore.archiving.maintenance import reindex
from bookstore.index import IndexDatabase
from tests.support.inprocess import LiveServer

PLOT = os.urandom(96 * 1024).hex()  # an image's worth of bytes that do not compress


def session(save: int) -> dict[str, Any]:
    """A notebook with a large output every save repeats, and a cell each save edits."""
    nb = nbformat.v4.new_notebook()
    plot = nbformat.v4.new_output("display_data", data={"text/plain": PLOT})
    nb.cells = [
        nbformat.v4.new_code_cell("plot()", id="plot", outputs=[plot]),
        nbformat.v4.new_markdown_cell(f"Edited {save} times\n" + "Notes. " * 80, id="notes"),
    ]
    return dict(nb)


def stored_sizes(index_file: Path) -> dict[str, int]:
    with sqlite3.connect(index_file) as db:
        return dict(db.execute("SELECT store_key, stored_size FROM versions"))


async def test_bytes_stored_are_a_fraction_of_bytes_saved_everywhere_they_are_shown(
    live: LiveServer, tmp_path: Path
) -> None:
    for save in range(10):
        await live.save("plots.ipynb", session(save))
    await live.wait_archived()
    saved = sum(row[3] for row in live.index_rows())

    status = (await live.status())["storage"]
    paths = (await live.api("GET", "/api/bookstore/paths")).json()["paths"]
    with sqlite3.connect(live.index_file) as db:
        view = db.execute(
            "SELECT path, versions, logical_bytes, stored_bytes, ratio FROM storage_by_path"
            " ORDER BY path"
        ).fetchall()

    by_path = {p["path"]: (p["versions"], p["total_bytes"], p["stored_bytes"]) for p in paths}
    assert (status["versions"], status["total_bytes"]) == (10, saved)
    assert status["stored_bytes"] == sum(stored for _, _, stored in by_path.values())
    assert status["ratio"] == status["stored_bytes"] / saved
    plots_versions, plots_saved, plots_stored = by_path["plots.ipynb"]
    assert plots_versions == 10
    # The plot is kept once; each later version costs its manifest and a notes part.
    assert plots_stored < plots_saved / 5
    assert plots_stored > len(PLOT) / 2  # the one copy of the plot, compressed or not
    assert [row[:4] for row in view] == [
        (live.stored(path), *by_path[path]) for path in sorted(by_path)
    ]
    assert view[-1][4] == plots_stored / plots_saved

    # Rebuilt from the store alone, the index gives each version the same cost.
    before = stored_sizes(live.index_file)
    rebuilt_file = tmp_path / "rebuilt.sqlite"
    rebuilt = IndexDatabase(f"sqlite+aiosqlite:///{rebuilt_file}")
    try:
        await rebuilt.migrate()
        await reindex(live.services.archiver.store, rebuilt, live.services.workspace)
    finally:
        await rebuilt.close()
    assert stored_sizes(rebuilt_file) == before
