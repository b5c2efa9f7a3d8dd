"""The index is derived data: a server rebuilds it from the store when it is lost or damaged."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.archives import index_rows
from tests.support.jupyter_process import JupyterServer, notebook


def archive_some(server: JupyterServer) -> list[tuple[str, int, str, int, str]]:
    with server:
        for n in range(3):
            server.save("kept.ipynb", notebook(f"kept {n}"))
        server.save("other.ipynb", notebook("other"))
        server.wait_archived()
    return index_rows(server)


def test_a_deleted_index_is_rebuilt_at_the_next_start(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path)
    before = archive_some(server)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{server.index_file}{suffix}").unlink(missing_ok=True)
    with server:
        server.wait_archived()
        server.save("kept.ipynb", notebook("after the rebuild"))
        server.wait_archived()
    after = index_rows(server)
    assert set(before) <= set(after)
    assert [v for p, v, *_ in after if p == "kept.ipynb"] == [1, 2, 3, 4]
    assert "rebuilt the index from the store: 4 versions indexed" in server.log()


def test_a_damaged_index_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path)
    before = archive_some(server)
    with open(server.index_file, "r+b") as damaged:
        damaged.seek(0)
        damaged.write(os.urandom(4096))
    with server:
        server.wait_archived()
        server.save("other.ipynb", notebook("archived after the rebuild"))
        server.wait_archived()
    assert set(before) <= set(index_rows(server))
    assert [v for p, v, *_ in index_rows(server) if p == "other.ipynb"] == [1, 2]
    log = server.log()
    assert "is damaged" in log
    assert "rebuilding it from the store" in log
    assert list(server.index_file.parent.glob("index.sqlite.damaged-*"))
