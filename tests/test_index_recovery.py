"""The index is derived data: a server rebuilds it from the store when it is lost or damaged.

What an earlier run archived is put in the store and index the in-process server
uses, with the archiver's own ``archive_record``, before that server starts; the
index is then deleted or damaged, and the server starting is the "next start".
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp

from bookstore.archiving.archiver import archive_record
from bookstore.config import BookstoreSettings
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.factory import open_index, open_store
from tests.support.archives import sqlite_file, sqlite_index_rows
from tests.support.inprocess import LiveServer, Run
from tests.support.jupyter_process import notebook

Row = tuple[str, int, str, int, str]


@pytest.fixture
def archived_before(jp_environ: Any, jp_root_dir: Path, run: Run[Any]) -> list[Row]:
    """Three versions of kept.ipynb and one of other.ipynb, archived into the store and
    index a server with no configuration uses (in the plugin's data directory) as an
    earlier run of the server in the same root would have; their rows, read from the
    index file."""
    settings = BookstoreSettings()
    store, index = open_store(settings), open_index(settings)
    view = settings.path_view(jp_root_dir)

    async def archive() -> None:
        try:
            await index.migrate()
            saves = [("kept.ipynb", f"kept {n}") for n in range(3)] + [("other.ipynb", "other")]
            for path, text in saves:
                content = json.dumps(notebook(text), indent=1).encode()
                saved = ArchiveRecord(view.stored(path), content, datetime.now(timezone.utc))
                record = HashedRecord.of(saved)
                assert await archive_record(store, index, settings.workspace, record)
        finally:
            await store.close()
            await index.close()

    run(archive())
    rows = sqlite_index_rows(sqlite_file(settings.index_url), jp_root_dir)
    assert [(path, version) for path, version, *_ in rows] == [
        ("kept.ipynb", 1),
        ("kept.ipynb", 2),
        ("kept.ipynb", 3),
        ("other.ipynb", 1),
    ]
    return rows


@pytest.fixture
def bookstore_config(request: pytest.FixtureRequest, archived_before: list[Row]) -> dict[str, Any]:
    """No configuration; before the server starts, its index is ``deleted`` or ``damaged``
    (the indirect parameter)."""
    index = sqlite_file(BookstoreSettings().index_url)
    if request.param == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{index}{suffix}").unlink(missing_ok=True)
    else:
        assert request.param == "damaged"
        with open(index, "r+b") as damaged:
            damaged.seek(0)
            damaged.write(os.urandom(4096))
    return {}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def bookstore_log(jp_serverapp: ServerApp) -> Iterator[list[str]]:
    """Every line bookstore logs, from before its archiving starts."""
    [extension] = jp_serverapp.extension_manager.extension_apps["bookstore"]
    handler = _Lines()
    extension.log.addHandler(handler)
    yield handler.lines
    extension.log.removeHandler(handler)


@pytest.fixture
def live(bookstore_log: list[str], live: LiveServer) -> LiveServer:
    """The in-process server, started once its log is collected."""
    return live


@pytest.mark.parametrize("bookstore_config", ["deleted"], indirect=True)
async def test_a_deleted_index_is_rebuilt_at_the_next_start(
    live: LiveServer, archived_before: list[Row], bookstore_log: list[str]
) -> None:
    before = archived_before
    await live.wait_archived()
    await live.save("kept.ipynb", notebook("after the rebuild"))
    await live.wait_archived()
    after = live.index_rows()
    assert set(before) <= set(after)
    assert [v for p, v, *_ in after if p == "kept.ipynb"] == [1, 2, 3, 4]
    assert "bookstore: rebuilt the index from the store: 4 versions indexed" in bookstore_log


@pytest.mark.parametrize("bookstore_config", ["damaged"], indirect=True)
async def test_a_damaged_index_is_moved_aside_and_rebuilt(
    live: LiveServer, archived_before: list[Row], bookstore_log: list[str]
) -> None:
    before = archived_before
    await live.wait_archived()
    await live.save("other.ipynb", notebook("archived after the rebuild"))
    await live.wait_archived()
    assert set(before) <= set(live.index_rows())
    assert [v for p, v, *_ in live.index_rows() if p == "other.ipynb"] == [1, 2]
    log = "\n".join(bookstore_log)
    assert "is damaged" in log
    assert "rebuilding it from the store" in log
    assert list(live.index_file.parent.glob("index.sqlite.damaged-*"))
