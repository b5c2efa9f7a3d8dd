"""A prune interrupted after the index changed and before the objects went: nothing is lost,
the index never points at a missing object, and the next prune finishes the job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.archiver import archive_record
from bookstore.archiving.maintenance import (
    finish_interrupted_prunes,
    plan_prune,
    prune,
    reindex,
    verify,
)
from bookstore.core.errors import StoreUnavailable
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.core.retention import RetentionPolicy
from bookstore.index import IndexDatabase
from bookstore.store.local import LocalStore
from tests.support.inprocess import Run

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


class CrashingStore(LocalStore):
    """A real local store whose deletes fail, as when the process dies mid-prune."""

    async def delete(self, key: str) -> None:
        raise StoreUnavailable("the process died here")


@pytest.fixture
def history(tmp_path: Path, run: Run[Any]) -> Iterator[tuple[LocalStore, IndexDatabase]]:
    store = LocalStore(tmp_path / "store")
    index = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")

    async def fill() -> None:
        await index.migrate()
        for n in range(5):
            record = ArchiveRecord("a.ipynb", f"v{n}".encode(), T0 + timedelta(hours=n))
            await archive_record(store, index, "ws", HashedRecord.of(record))

    run(fill())
    yield store, index
    run(index.close())


async def test_an_interrupted_prune_is_finished_by_the_next(
    history: tuple[LocalStore, IndexDatabase],
) -> None:
    store, index = history
    policy = RetentionPolicy(keep_last=2)
    crashing = CrashingStore(store.root)
    with pytest.raises(StoreUnavailable):
        await prune(crashing, index, "ws", plan_prune(index, "ws", policy))

    report = await verify(store, index, "ws")
    assert [problem.kind for problem in report.problems] == ["orphan"] * 3
    assert all("interrupted prune" in problem.detail for problem in report.problems)
    assert report.checked == 2  # every row still points at an object that exists

    assert (await reindex(store, index, "ws")).added == []

    assert await finish_interrupted_prunes(store, index, "ws") == 3
    assert (await verify(store, index, "ws")).ok
    assert len([info async for info in store.list("ws/")]) == 2
