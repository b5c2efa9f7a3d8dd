"""The original bookstore's documented API (nteract/bookstore), kept working.

``from bookstore.archive import ArchiveRecord, BookstoreContentsArchiver``: the
record's fields and their order, the contents manager's constructor, and its
archiving methods (``archive``, ``path_locks``, ``path_lock_ready``,
``run_pre_save_hook``), checked against the in-process Jupyter server
(jupyter_server's pytest plugin, through the ``live`` fixture) configured with
``BookstoreContentsArchiver`` as its contents manager, as the original's
documentation told users to configure it; and outside a running extension,
where the methods must say why they cannot work.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bookstore.archive import ArchiveRecord, BookstoreContentsArchiver
from bookstore.core.errors import ConfigurationError
from bookstore.core.notebook import model_to_bytes
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import notebook

CONTENTS_MANAGER = "bookstore.archive.BookstoreContentsArchiver"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """conftest's server (bookstore on, fast retries), with the original's contents manager."""
    server = {**jp_server_config["ServerApp"], "contents_manager_class": CONTENTS_MANAGER}
    return {**jp_server_config, "ServerApp": server}


def notebook_model(text: str) -> dict[str, Any]:
    """A contents-API notebook model whose bytes depend only on ``text``."""
    return {"type": "notebook", "format": "json", "content": notebook(text)}


def notebook_bytes(text: str) -> bytes:
    """The bytes a save of ``notebook_model(text)`` writes."""
    return model_to_bytes(notebook_model(text))


def contents_manager(live: LiveServer) -> BookstoreContentsArchiver:
    """The server's contents manager, which the configuration made the original's."""
    manager = live.contents_manager
    assert isinstance(manager, BookstoreContentsArchiver)
    return manager


async def archived_bytes(live: LiveServer, path: str) -> list[bytes]:
    """The verified bytes of every archived version of ``path``, oldest first."""
    history = live.services.history
    return [await history.read(row) for row in await history.versions(path)]


# -- the record and the constructor ------------------------------------------------


def test_archive_record_is_a_named_tuple_of_filepath_content_and_queued_time() -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    record = ArchiveRecord("dir/a.ipynb", b"{}", moment)

    assert isinstance(record, tuple)
    assert ArchiveRecord._fields == ("filepath", "content", "queued_time")
    assert (record[0], record[1], record[2]) == ("dir/a.ipynb", b"{}", moment)
    assert (record.filepath, record.content, record.queued_time) == tuple(record)
    assert ArchiveRecord(filepath="x", content=b"", queued_time=moment)._replace(
        filepath="y"
    ) == ArchiveRecord("y", b"", moment)


def test_the_contents_archiver_constructs_with_no_arguments_and_refuses_positional_ones() -> None:
    manager = BookstoreContentsArchiver()
    assert manager.root_dir  # an ordinary contents manager, rooted somewhere

    with pytest.raises(TypeError):
        BookstoreContentsArchiver(42, True, "hello")  # type: ignore[call-arg]


async def test_outside_a_running_extension_archiving_says_the_extension_is_not_running() -> None:
    manager = BookstoreContentsArchiver()
    record = ArchiveRecord("a.ipynb", notebook_bytes("nowhere"), datetime.now(timezone.utc))

    with pytest.raises(ConfigurationError, match=r"extension\b.* is not running"):
        await manager.archive(record)
    with pytest.raises(ConfigurationError, match="is not running"):
        _ = manager.path_locks
    with pytest.raises(ConfigurationError, match="is not running"):
        _ = manager.path_lock_ready
    with pytest.raises(ConfigurationError, match="is not running"):
        manager.run_pre_save_hook(notebook_model("nowhere"), "a.ipynb")


# -- the methods, on a running server --------------------------------------------------


async def test_archive_stores_the_record_as_a_version_with_exactly_its_bytes(
    live: LiveServer,
) -> None:
    manager = contents_manager(live)
    content = notebook_bytes("archived by hand")

    await manager.archive(ArchiveRecord("a.ipynb", content, datetime.now(timezone.utc)))

    assert await archived_bytes(live, "a.ipynb") == [content]
    assert [row.number for row in await live.versions("a.ipynb")] == [1]


async def test_two_concurrent_archive_calls_of_one_path_are_both_archived_in_order(
    live: LiveServer,
) -> None:
    manager = contents_manager(live)
    now = datetime.now(timezone.utc)
    first = ArchiveRecord("both.ipynb", notebook_bytes("first"), now)
    second = ArchiveRecord("both.ipynb", notebook_bytes("second"), now + timedelta(milliseconds=1))

    # The original skipped a record whose path lock was held; both must be kept.
    await asyncio.gather(manager.archive(first), manager.archive(second))

    assert await archived_bytes(live, "both.ipynb") == [first.content, second.content]
    assert [row.queued_at for row in await live.versions("both.ipynb")] == [
        first.queued_time,
        second.queued_time,
    ]


async def test_path_locks_map_paths_to_asyncio_locks_and_path_lock_ready_is_one(
    live: LiveServer,
) -> None:
    manager = contents_manager(live)

    await manager.archive(
        ArchiveRecord("locked.ipynb", notebook_bytes("locked"), datetime.now(timezone.utc))
    )

    kept_under = live.services.history.view.stored("locked.ipynb")
    assert isinstance(manager.path_locks[kept_under], asyncio.Lock)
    assert isinstance(manager.path_lock_ready, asyncio.Lock)
    archiver = live.services.archiver
    assert manager.path_locks is archiver.path_locks
    assert manager.path_lock_ready is archiver.path_lock_ready


async def test_run_pre_save_hook_queues_the_model_for_archiving_once(live: LiveServer) -> None:
    manager = contents_manager(live)
    model = notebook_model("from the hook")

    manager.run_pre_save_hook(model, "hooked.ipynb")
    status = await live.wait_archived()

    assert await archived_bytes(live, "hooked.ipynb") == [model_to_bytes(model)]
    assert status["archive"]["archived"] == 1


async def test_a_save_through_the_contents_api_is_archived_exactly_once(live: LiveServer) -> None:
    await live.save("saved.ipynb", notebook("saved over HTTP"))
    status = await live.wait_archived()

    # The class overrides run_pre_save_hook, but a save runs the hooks only once.
    assert await archived_bytes(live, "saved.ipynb") == [(live.root / "saved.ipynb").read_bytes()]
    assert status["archive"]["archived"] == 1
