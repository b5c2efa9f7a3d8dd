"""Renames when something is wrong or odd: the store down while a save waits and the
file is renamed, labels carried and rebuilt, and a rename onto a name that had a
history of its own. The in-process server, over HTTP; an index rebuilt from its store
into a fresh SQLite file must agree with the live one."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.exc import OperationalError

from bookstore.archiving import archiver as archiver_module
from bookstore.archiving.changes import rename_history
from bookstore.archiving.maintenance import reindex
from bookstore.core.body import Body
from bookstore.core.errors import StoreUnavailable
from bookstore.history import saved_as
from bookstore.index import IndexDatabase, queries
from bookstore.server import services as services_module
from tests.support.delegating_store import DelegatingStore
from tests.support.inprocess import LiveServer, until
from tests.support.jupyter_process import notebook


class SwitchableStore(DelegatingStore):
    """The server's own store, which refuses every write while ``down``, or only those
    of the versions saved as ``down_for`` (as an unreachable shard would)."""

    down = False
    down_for: str | None = None
    refused = 0

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        if self.down or (self.down_for is not None and f"/{self.down_for}/@" in key):
            self.refused += 1
            raise StoreUnavailable("the store is down for this test")
        await super().put(key, data, metadata, overwrite=overwrite)


def switchable(live: LiveServer) -> SwitchableStore:
    archiver = live.services.archiver
    store = SwitchableStore(archiver.store)
    archiver.store = store
    return store


async def rename(live: LiveServer, old: str, new: str) -> None:
    answer = await live.api("PATCH", f"api/contents/{quote(old)}", {"path": new})
    assert answer.status_code == 200, answer.text


async def described(live: LiveServer, path: str) -> list[tuple[int, str, str | None]]:
    """(number, name saved under, label) of each version of ``path``."""
    history = live.services.history
    return [(v.number, history.saved_as(v), v.label) for v in await live.versions(path)]


async def rebuilt(live: LiveServer, tmp_path: Path) -> list[tuple[Any, ...]]:
    """The rows an index rebuilt from the server's store holds, as ``live_rows`` gives them."""
    fresh = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.sqlite'}")
    try:
        await fresh.migrate()
        await reindex(live.services.history.store, fresh, live.services.workspace)
        return await rows_of(fresh, live.services.workspace)
    finally:
        await fresh.close()


async def rows_of(index: IndexDatabase, workspace: str) -> list[tuple[Any, ...]]:
    async with index.reading() as session:
        rows = await queries.workspace_versions(session, workspace)
    return [(r.path, r.number, saved_as(r), r.store_key, r.label, r.pinned) for r in rows]


async def test_a_save_waiting_when_its_file_is_renamed_joins_the_new_history_in_order(
    live: LiveServer,
) -> None:
    store = switchable(live)
    await live.save("a.ipynb", notebook("one"))
    await live.wait_archived()
    store.down_for = "a.ipynb"
    await live.save("a.ipynb", notebook("two"))  # waits in the outbox
    store.down = True  # the rename's record in the store waits too
    await rename(live, "a.ipynb", "b.ipynb")
    await live.save("b.ipynb", notebook("three"))
    store.down = False  # b's saves could be stored now, but a's earlier one goes first
    refused = store.refused

    async def tried_again() -> bool:
        return store.refused >= refused + 3

    await until(tried_again, 30, "a's save to be tried again")
    assert (await live.status())["archive"]["backlog"] == 2

    store.down_for = None
    await live.wait_archived()
    versions = await live.versions("b.ipynb")
    texts = [(await live.services.history.read(v)).decode() for v in versions]
    assert [("one" in t, "two" in t, "three" in t) for t in texts] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert await described(live, "b.ipynb") == [
        (1, "a.ipynb", None),
        (2, "a.ipynb", None),
        (3, "b.ipynb", None),
    ]
    assert await live.versions("a.ipynb") == []

    # The rename reaches the store once it answers, so a rebuilt index replays it.
    async def recorded() -> bool:
        return any("/@changes/" in key for key in live.stored_objects())

    await until(recorded, 30, "the rename to be kept in the store")


async def test_labels_follow_a_rename_and_survive_a_rebuilt_index(
    live: LiveServer, tmp_path: Path
) -> None:
    await live.save("a.ipynb", notebook("one"))
    await live.save("a.ipynb", notebook("two"))
    await live.wait_archived()
    await live.services.history.annotate("a.ipynb", 1, label="baseline")
    await rename(live, "a.ipynb", "b.ipynb")

    assert await described(live, "b.ipynb") == [(1, "a.ipynb", "baseline"), (2, "a.ipynb", None)]
    assert await rebuilt(live, tmp_path) == await rows_of(
        live.services.history.index, live.services.workspace
    )


async def test_a_rename_onto_a_name_with_a_history_numbers_the_moved_versions_after_it(
    live: LiveServer, tmp_path: Path
) -> None:
    await live.save("x.ipynb", notebook("old x 1"))
    await live.save("x.ipynb", notebook("old x 2"))
    await live.save("y.ipynb", notebook("y 1"))
    await live.save("y.ipynb", notebook("y 2"))
    await live.wait_archived()
    deleted = await live.api("DELETE", "api/contents/x.ipynb")
    assert deleted.status_code == 204, deleted.text
    await rename(live, "y.ipynb", "x.ipynb")

    assert await described(live, "x.ipynb") == [
        (1, "x.ipynb", None),
        (2, "x.ipynb", None),
        (3, "y.ipynb", None),
        (4, "y.ipynb", None),
    ]
    live_rows = await rows_of(live.services.history.index, live.services.workspace)
    assert await rebuilt(live, tmp_path) == live_rows


async def test_a_save_of_the_new_name_waits_for_a_rename_the_index_took_late(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await live.save("a.ipynb", notebook("one"))
    await live.wait_archived()
    index_down = True
    refused = 0

    async def refused_while_down(*args: Any) -> Any:
        nonlocal refused
        if index_down:
            refused += 1
            raise OperationalError("UPDATE versions", {}, Exception("database is locked"))
        return await rename_history(*args)

    monkeypatch.setattr(archiver_module, "rename_history", refused_while_down)
    monkeypatch.setattr(services_module, "RENAME_WAIT", 0)
    await rename(live, "a.ipynb", "b.ipynb")  # answers before the history follows
    await live.save("b.ipynb", notebook("two"))

    async def tried_again() -> bool:
        return refused >= 3

    await until(tried_again, 30, "the rename to be tried again")
    index_down = False
    await live.wait_archived()
    assert await described(live, "b.ipynb") == [(1, "a.ipynb", None), (2, "b.ipynb", None)]


async def test_a_rename_to_a_type_that_is_not_archived_leaves_the_history_listed_as_deleted(
    live: LiveServer,
) -> None:
    await live.save("a.ipynb", notebook("one"))
    await live.wait_archived()
    await rename(live, "a.ipynb", "a.ipynb.bak")

    assert [v.number for v in await live.versions("a.ipynb")] == [1]
    answer = await live.api("GET", "api/bookstore/paths?deleted=true")
    assert [p["path"] for p in answer.json()["paths"]] == ["a.ipynb"]


async def test_reindex_of_an_index_restored_from_before_a_rename_applies_the_rename(
    live: LiveServer, tmp_path: Path
) -> None:
    await live.save("x.ipynb", notebook("gone"))
    await live.save("a.ipynb", notebook("one"))
    await live.wait_archived()
    await live.api("DELETE", "api/contents/x.ipynb")
    backup = tmp_path / "backup.sqlite"
    with (
        closing(sqlite3.connect(live.index_file)) as source,
        closing(sqlite3.connect(backup)) as to,
    ):
        source.backup(to)
    await rename(live, "a.ipynb", "x.ipynb")  # onto a history: renumbered
    await live.save("x.ipynb", notebook("two"))
    await live.wait_archived()

    restored = IndexDatabase(f"sqlite+aiosqlite:///{backup}")
    try:
        await reindex(live.services.history.store, restored, live.services.workspace)
        rows = await rows_of(restored, live.services.workspace)
    finally:
        await restored.close()
    live_rows = await rows_of(live.services.history.index, live.services.workspace)
    assert [
        (path.rsplit("/", 1)[-1], n, saved.rsplit("/", 1)[-1]) for path, n, saved, *_ in live_rows
    ] == [
        ("x.ipynb", 1, "x.ipynb"),
        ("x.ipynb", 2, "a.ipynb"),
        ("x.ipynb", 3, "x.ipynb"),
    ]
    assert rows == live_rows
