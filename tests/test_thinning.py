"""Thinning on a schedule: a server with ``retention`` set prunes its history by those
rules in the background, keeping labelled versions; one server of a workspace at a
time does it (a lease in the index); a policy that would keep nothing is refused."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.archiver import archive_record
from bookstore.archiving.thinning import ScheduledThinning
from bookstore.config import BookstoreSettings
from bookstore.core.errors import ConfigurationError
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.core.retention import RetentionPolicy
from bookstore.index import IndexDatabase, queries
from bookstore.store.local import LocalStore
from tests.support.inprocess import LiveServer, until
from tests.support.jupyter_process import notebook


@pytest.fixture
def bookstore_config() -> dict[str, Any]:
    return {"retention": {"keep_last": 2}, "retention_interval": 0.1}


async def test_a_server_thins_its_history_on_schedule_keeping_labelled_versions(
    live: LiveServer,
) -> None:
    await live.save("a.ipynb", notebook("first"))
    await live.wait_archived()
    await live.services.history.annotate("a.ipynb", 1, label="submitted")
    for text in ("second", "third", "fourth", "fifth"):
        await live.save("a.ipynb", notebook(text))
    await live.wait_archived()

    async def thinned() -> bool:
        # The index shows the versions gone before the run that removed them (still
        # deleting their objects) counts them: wait for both.
        kept = [v.number for v in await live.versions("a.ipynb")]
        counted = (await live.status())["archive"]["thinning"]["removed"]
        return kept == [1, 4, 5] and counted == 2

    await until(thinned, 30, "the scheduled thinning to keep the labelled and last 2")
    status = (await live.status())["archive"]["thinning"]
    assert status["rules"] == {"keep_last": 2}
    assert status["last_run"] is not None
    assert status["last_error"] is None


async def test_one_server_at_a_time_holds_the_lease(tmp_path: Path) -> None:
    index = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    now = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    later = now + timedelta(minutes=10)
    try:
        await index.migrate()

        async def take(holder: str, at: datetime) -> bool:
            async with index.writing() as session:
                return await queries.take_lease(
                    session, "thinning ws", holder, at, at + timedelta(minutes=5)
                )

        assert await take("first", now)
        assert not await take("second", now + timedelta(minutes=1))
        assert await take("first", now + timedelta(minutes=2))  # its holder renews it
        assert not await take("second", now + timedelta(minutes=6))
        assert await take("second", later)  # expired: the next server takes it
        assert not await take("first", later)
    finally:
        await index.close()


@pytest.mark.parametrize(
    ("retention", "words"),
    [
        ({"keep_weekdays": 3}, "unknown rules ['keep_weekdays']"),
        ({"keep_last": 0}, "no rule keeps anything"),
        ({"keep_within": "soon"}, "invalid duration 'soon'"),
    ],
)
def test_a_retention_that_cannot_work_is_refused_in_words(
    retention: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigurationError, match="retention") as refused:
        BookstoreSettings(retention=retention).validate()
    assert words in str(refused.value)


async def test_the_service_thins_only_the_workspaces_its_template_makes(tmp_path: Path) -> None:
    """A service with ``bookstore/{username}`` thins alice's and bob's workspaces, and
    neither a deeper one, a servers' ``files``, nor one that only contains the prefix."""
    store = LocalStore(tmp_path / "store")
    index = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    workspaces = ["bookstore/alice", "bookstore/bob", "bookstore/alice/deeper", "files"]
    workspaces += ["other/bookstore/carol", "bookstore%/dave"]
    try:
        await index.migrate()
        for n, workspace in enumerate(workspaces):
            content = f'{{"n": {n}}}'.encode()
            record = ArchiveRecord("n.ipynb", content, datetime(2026, 12, 6, tzinfo=timezone.utc))
            await archive_record(store, index, workspace, HashedRecord.of(record))
        thinning = ScheduledThinning(
            store,
            index,
            "bookstore/{username}",
            RetentionPolicy(keep_last=1),
            interval=60,
            log=logging.getLogger("test"),
            every_workspace_of="bookstore/{username}",
        )

        assert await thinning._workspaces() == ["bookstore/alice", "bookstore/bob"]
    finally:
        await index.close()
        await store.close()
