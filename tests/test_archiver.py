"""The ``Archiver`` in the test process: outbox entries to the store and the index.

Against the in-memory store (``MemoryStore``, or a small wrapper of it in this
module whose puts fail or wait when a test says so), a real SQLite index file and
a real ``Outbox``, all in ``tmp_path``. What is checked is what a user of the archive
sees: one version per save, numbered in save order, holding exactly the saved
bytes; no duplicates; and nothing lost while the store is down, across a stop and
a restart, before start-up, or when two servers share one outbox.

Nothing here sleeps to synchronise: tests wait on events or on conditions with a
deadline (``until``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest

from bookstore.archiving.archiver import Archiver, Latest, store_and_index
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.outbox import Outbox, OutboxEntry
from bookstore.archiving.version_objects import read_version
from bookstore.core import keys
from bookstore.core.body import Body
from bookstore.core.errors import StoreUnavailable
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase, Version, queries
from bookstore.store.base import Store
from bookstore.store.memory import MemoryStore
from tests.support.delegating_store import DelegatingStore
from tests.support.inprocess import Run, until

WORKSPACE = "workspace"
FAST_RETRY = RetryPolicy(0.01, 0.05)
DEADLINE = 5.0
"""Seconds any one wait may take before the test fails (each normally takes milliseconds)."""
FIRST_SAVE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
DOWN = "the test store is switched off"


def at(n: int) -> datetime:
    """The time of save number ``n``: saves are a second apart, so save order is time order."""
    return FIRST_SAVE + timedelta(seconds=n)


async def eventually(predicate: Callable[[], object], what: str) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``DEADLINE`` seconds."""

    async def holds() -> bool:
        return bool(predicate())

    await until(holds, DEADLINE, what)


async def versions(index: IndexDatabase, path: str) -> list[Version]:
    """Every indexed version of ``path``, oldest first."""
    async with index.reading() as session:
        return await queries.list_versions(session, WORKSPACE, path)


async def archived_bytes(store: Store, index: IndexDatabase, path: str) -> list[bytes]:
    """The bytes of every version of ``path``, oldest first, read back from the store."""
    return [
        await read_version(store, WORKSPACE, row.store_key) for row in await versions(index, path)
    ]


async def stored_keys(store: Store) -> list[str]:
    """Every key in the store."""
    return [info.key async for info in store.list("")]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FailingStore(DelegatingStore):
    """Puts raise ``StoreUnavailable`` while ``down`` is set, and for the first ``fail_first``."""

    def __init__(self, *, down: bool = False, fail_first: int = 0) -> None:
        super().__init__()
        self.down = down
        self.failures_left = fail_first
        self.failed = 0
        self.stored = 0

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        if self.down or self.failures_left > 0:
            self.failures_left = max(0, self.failures_left - 1)
            self.failed += 1
            raise StoreUnavailable(DOWN)
        await super().put(key, data, metadata, overwrite=overwrite)
        self.stored += 1


class GatedStore(DelegatingStore):
    """Puts wait at a gate until the test lets them through, one at a time and oldest
    first; it records the most puts ever in progress at once, overall and of one path."""

    def __init__(self, inner: Store | None = None) -> None:
        super().__init__(inner)
        self.held: list[tuple[str, asyncio.Event]] = []
        self.finished: list[str] = []
        self.most_held = 0
        self.most_held_of_one_path = 0

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        gate = (key, asyncio.Event())
        self.held.append(gate)
        self.most_held = max(self.most_held, len(self.held))
        per_path = Counter(self.path_of(held_key) for held_key, _ in self.held)
        self.most_held_of_one_path = max(self.most_held_of_one_path, *per_path.values())
        try:
            await gate[1].wait()
        finally:
            self.held.remove(gate)
        await super().put(key, data, metadata, overwrite=overwrite)
        self.finished.append(key)

    def release_oldest(self) -> None:
        """Let the put that has waited longest go through."""
        self.held[0][1].set()

    async def settled(self, *, finished: int, held: int) -> None:
        """Wait until ``finished`` puts are done and ``held`` others wait at the gate."""
        await eventually(
            lambda: (len(self.finished), len(self.held)) == (finished, held),
            f"{finished} puts finished and {held} held",
        )

    def held_paths(self) -> set[str]:
        """The paths whose puts are waiting at the gate."""
        return {self.path_of(key) for key, _ in self.held}

    @staticmethod
    def path_of(key: str) -> str:
        parsed = keys.parse_version_key(WORKSPACE, key)
        assert parsed is not None, key
        return parsed.path


class SlowOutbox(Outbox):
    """An ``Outbox`` whose ``add_bytes`` (run in a worker thread) waits for the test's word."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.writing = threading.Event()
        self.may_finish = threading.Event()

    def add_bytes(self, path: str, queued_time: datetime, content: bytes) -> OutboxEntry:
        self.writing.set()
        self.may_finish.wait(DEADLINE)
        return super().add_bytes(path, queued_time, content)


class MakeArchiver(Protocol):
    def __call__(
        self,
        store: Store,
        *,
        outbox: Outbox | None = None,
        index: IndexDatabase | None = None,
        concurrency: int = 8,
    ) -> Archiver: ...


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox")


@pytest.fixture
def index(tmp_path: Path, run: Run[Any]) -> Iterator[IndexDatabase]:
    """A SQLite index file, not made yet: ``start`` migrates it (``prepare=index.migrate``)."""
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    yield database
    run(database.close())


@pytest.fixture
def second_index(tmp_path: Path, run: Run[Any]) -> Iterator[IndexDatabase]:
    """The same index file opened again, as a second server opens it."""
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    yield database
    run(database.close())


@pytest.fixture
def make_archiver(outbox: Outbox, index: IndexDatabase, run: Run[Any]) -> Iterator[MakeArchiver]:
    """Archivers on the test's outbox and index with fast retries; all stopped afterwards."""
    made: list[Archiver] = []
    test_outbox, test_index = outbox, index

    def make(
        store: Store,
        *,
        outbox: Outbox | None = None,
        index: IndexDatabase | None = None,
        concurrency: int = 8,
    ) -> Archiver:
        archiver = Archiver(
            store=store,
            index=index if index is not None else test_index,
            outbox=outbox if outbox is not None else test_outbox,
            workspace=WORKSPACE,
            concurrency=concurrency,
            retry=FAST_RETRY,
        )
        made.append(archiver)
        return archiver

    yield make
    for archiver in made:
        run(archiver.stop(0.1))


# -- order ------------------------------------------------------------------------


async def test_a_burst_of_saves_of_one_path_becomes_versions_1_to_n_in_save_order(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = MemoryStore()
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    contents = [f"save {n} of burst.ipynb".encode() for n in range(12)]
    entries = [outbox.add_bytes("burst.ipynb", at(n), data) for n, data in enumerate(contents)]

    for entry in entries:
        archiver.submit(entry)
    archiver.submit(entries[0])  # submitted twice, queued once
    assert archiver.backlog == 12
    await archiver.wait_idle()

    rows = await versions(index, "burst.ipynb")
    assert [row.number for row in rows] == list(range(1, 13))
    assert [row.queued_at for row in rows] == [at(n) for n in range(12)]
    assert [row.sha256 for row in rows] == [sha256(data) for data in contents]
    assert await archived_bytes(store, index, "burst.ipynb") == contents
    assert len(await stored_keys(store)) == 12
    assert (archiver.archived, archiver.backlog, archiver.last_error) == (12, 0, None)
    assert outbox.pending() == []


async def test_different_paths_are_archived_in_parallel_up_to_the_concurrency_limit(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = GatedStore()
    archiver = make_archiver(store, concurrency=3)
    await archiver.start(index.migrate)
    saves = [("p0.ipynb", b"p0 first"), ("p0.ipynb", b"p0 second")]
    saves += [(f"p{n}.ipynb", f"p{n}".encode()) for n in range(1, 6)]
    for n, (path, data) in enumerate(saves):
        archiver.submit(outbox.add_bytes(path, at(n), data))

    # Three paths upload at once, and while their puts are held no fourth one starts.
    await eventually(lambda: len(store.held) == 3, "three puts in progress")
    assert len(store.held_paths()) == 3
    for released in range(1, len(saves) + 1):
        store.release_oldest()
        await store.settled(finished=released, held=min(3, len(saves) - released))
    await archiver.wait_idle()

    assert store.most_held == 3
    assert store.most_held_of_one_path == 1
    assert await archived_bytes(store, index, "p0.ipynb") == [b"p0 first", b"p0 second"]
    for n in range(1, 6):
        assert await archived_bytes(store, index, f"p{n}.ipynb") == [f"p{n}".encode()]


# -- dedup ------------------------------------------------------------------------


async def test_a_save_equal_to_the_latest_version_makes_no_new_version(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = MemoryStore()
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    contents = [b"A", b"A", b"B", b"B", b"B", b"A"]

    for n, data in enumerate(contents):
        archiver.submit(outbox.add_bytes("same.ipynb", at(n), data))
    await archiver.wait_idle()

    # Equal to an older version, but not the latest, is a change: A, B, A.
    assert await archived_bytes(store, index, "same.ipynb") == [b"A", b"B", b"A"]
    assert [row.queued_at for row in await versions(index, "same.ipynb")] == [at(0), at(2), at(5)]
    assert len(await stored_keys(store)) == 3
    assert archiver.archived == 3
    assert outbox.pending() == []  # the repeats are done with, not left behind


async def test_after_a_restart_a_save_equal_to_the_latest_version_still_makes_none(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = MemoryStore()
    first = make_archiver(store)
    await first.start(index.migrate)
    first.submit(outbox.add_bytes("same.ipynb", at(0), b"A"))
    first.submit(outbox.add_bytes("same.ipynb", at(1), b"B"))
    await first.wait_idle()
    await first.stop(1.0)

    second = make_archiver(store)
    await second.start(index.migrate)
    second.submit(outbox.add_bytes("same.ipynb", at(2), b"B"))
    await second.wait_idle()
    assert await archived_bytes(store, index, "same.ipynb") == [b"A", b"B"]
    assert second.archived == 0

    second.submit(outbox.add_bytes("same.ipynb", at(3), b"A"))
    await second.wait_idle()
    assert await archived_bytes(store, index, "same.ipynb") == [b"A", b"B", b"A"]
    assert [row.number for row in await versions(index, "same.ipynb")] == [1, 2, 3]
    assert outbox.pending() == []


# -- retries ------------------------------------------------------------------------


async def test_while_the_store_is_down_saves_wait_in_the_outbox_and_then_archive_in_order(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = FailingStore(down=True)
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    saves = [("a.ipynb", b"a0"), ("a.ipynb", b"a1"), ("b.ipynb", b"b0"), ("a.ipynb", b"a2")]
    entries = [outbox.add_bytes(path, at(n), data) for n, (path, data) in enumerate(saves)]
    for entry in entries:
        archiver.submit(entry)

    await eventually(lambda: store.failed >= 4, "several failed puts")
    error = archiver.last_error
    assert error is not None
    assert error.startswith("could not archive ")
    assert DOWN in error
    assert error.endswith("retrying")
    assert archiver.backlog == 4
    assert archiver.pending("a.ipynb") == [entries[0], entries[1], entries[3]]
    assert outbox.pending() == entries
    assert await versions(index, "a.ipynb") == []
    assert await stored_keys(store) == []

    store.down = False
    await asyncio.wait_for(archiver.wait_idle(), DEADLINE)

    assert await archived_bytes(store, index, "a.ipynb") == [b"a0", b"a1", b"a2"]
    assert await archived_bytes(store, index, "b.ipynb") == [b"b0"]
    assert [row.number for row in await versions(index, "a.ipynb")] == [1, 2, 3]
    assert (archiver.last_error, archiver.backlog, archiver.archived) == (None, 0, 4)
    assert outbox.pending() == []


async def test_puts_that_fail_at_first_are_retried_until_every_save_is_archived_in_order(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = FailingStore(fail_first=3)
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    contents = [f"retried {n}".encode() for n in range(4)]

    for n, data in enumerate(contents):
        archiver.submit(outbox.add_bytes("retried.ipynb", at(n), data))
    await asyncio.wait_for(archiver.wait_idle(), DEADLINE)

    assert (store.failed, store.stored) == (3, 4)
    assert await archived_bytes(store, index, "retried.ipynb") == contents
    assert [row.number for row in await versions(index, "retried.ipynb")] == [1, 2, 3, 4]
    assert archiver.last_error is None
    assert outbox.pending() == []


# -- stop and restart ----------------------------------------------------------------


async def test_stopping_while_the_store_fails_leaves_saves_in_the_outbox_for_the_next_start(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = FailingStore(down=True)
    first = make_archiver(store)
    await first.start(index.migrate)
    saves = [("a.ipynb", b"a0"), ("a.ipynb", b"a1"), ("b.ipynb", b"b0"), ("a.ipynb", b"a2")]
    entries = [outbox.add_bytes(path, at(n), data) for n, (path, data) in enumerate(saves)]
    for entry in entries:
        first.submit(entry)
    await eventually(lambda: first.last_error is not None, "a failed put")

    await asyncio.wait_for(first.stop(0.05), DEADLINE)

    assert all(entry.outbox_file.is_file() for entry in entries)
    assert outbox.pending() == entries
    assert await versions(index, "a.ipynb") == []

    store.down = False
    second = make_archiver(store)
    await second.start(index.migrate)
    await asyncio.wait_for(second.wait_idle(), DEADLINE)

    assert await archived_bytes(store, index, "a.ipynb") == [b"a0", b"a1", b"a2"]
    assert await archived_bytes(store, index, "b.ipynb") == [b"b0"]
    assert [row.number for row in await versions(index, "a.ipynb")] == [1, 2, 3]
    assert len(await stored_keys(store)) == 4
    assert second.archived == 4
    assert outbox.pending() == []


async def test_stopping_before_start_up_finishes_leaves_saves_in_the_outbox(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    archiver = make_archiver(MemoryStore())
    entry = outbox.add_bytes("early.ipynb", at(0), b"early")
    archiver.submit(entry)
    never = asyncio.Event()

    async def prepare_never() -> None:
        await never.wait()

    starting = asyncio.ensure_future(archiver.start(prepare_never))
    await asyncio.wait_for(archiver.stop(0.05), DEADLINE)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting

    assert not archiver.ready
    assert outbox.pending() == [entry]


async def test_stopping_with_nothing_queued_warns_of_nothing_even_with_no_time_given(
    make_archiver: MakeArchiver, index: IndexDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    archiver = make_archiver(MemoryStore())
    await archiver.start(index.migrate)

    await archiver.stop(0)

    assert "not archived yet" not in caplog.text


async def test_stopping_lets_a_start_up_attempt_under_way_finish_and_begins_no_other(
    make_archiver: MakeArchiver,
) -> None:
    archiver = make_archiver(MemoryStore())
    attempts: list[str] = []
    release = asyncio.Event()

    async def prepare_failing_slowly() -> None:
        attempts.append("begun")
        await release.wait()
        attempts.append("finished")
        raise RuntimeError("the index cannot be opened")

    starting = asyncio.ensure_future(archiver.start(prepare_failing_slowly))
    await eventually(lambda: attempts == ["begun"], "the first attempt to begin")
    await archiver.stop(0)
    release.set()
    await asyncio.wait_for(starting, DEADLINE)  # returns: neither cancelled nor retrying

    assert attempts == ["begun", "finished"]
    assert not archiver.ready


# -- start-up ------------------------------------------------------------------------


async def test_saves_made_before_start_wait_for_the_index_and_follow_the_earlier_saves(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = MemoryStore()
    # Left in the outbox by a previous run of the server.
    previous_run = Outbox(outbox.directory)
    previous_run.add_bytes("a.ipynb", at(0), b"earlier a0")
    previous_run.add_bytes("b.ipynb", at(1), b"earlier b0")
    previous_run.add_bytes("a.ipynb", at(2), b"earlier a1")
    previous_run.close()
    archiver = make_archiver(store)
    # Saved while the server starts, before archiving has.
    archiver.submit(outbox.add_bytes("a.ipynb", at(3), b"new a2"))
    archiver.submit(outbox.add_bytes("a.ipynb", at(4), b"new a3"))
    preparing, may_prepare = asyncio.Event(), asyncio.Event()

    async def prepare() -> None:
        preparing.set()
        await may_prepare.wait()
        await index.migrate()

    starting = asyncio.ensure_future(archiver.start(prepare))
    await asyncio.wait_for(preparing.wait(), DEADLINE)

    assert not archiver.ready
    assert archiver.backlog == 5  # the earlier saves, taken over, and the two new ones
    assert archiver.last_error is None
    assert index.sqlite_file is not None
    assert not index.sqlite_file.exists()  # nothing has even opened the index
    assert await stored_keys(store) == []

    may_prepare.set()
    await asyncio.wait_for(starting, DEADLINE)
    assert archiver.ready
    await asyncio.wait_for(archiver.wait_idle(), DEADLINE)

    assert await archived_bytes(store, index, "a.ipynb") == [
        b"earlier a0",
        b"earlier a1",
        b"new a2",
        b"new a3",
    ]
    assert await archived_bytes(store, index, "b.ipynb") == [b"earlier b0"]
    assert outbox.pending() == []


# -- a shared outbox ------------------------------------------------------------------


async def test_two_archivers_sharing_one_outbox_archive_every_save_exactly_once(
    make_archiver: MakeArchiver,
    outbox: Outbox,
    index: IndexDatabase,
    second_index: IndexDatabase,
) -> None:
    store = MemoryStore()
    other_outbox = Outbox(outbox.directory)
    one = make_archiver(store, outbox=outbox, index=index)
    two = make_archiver(store, outbox=other_outbox, index=second_index)
    contents = [f"shared save {n}".encode() for n in range(20)]
    for n, data in enumerate(contents):
        server, its_outbox = (one, outbox) if n % 2 == 0 else (two, other_outbox)
        server.submit(its_outbox.add_bytes("shared.ipynb", at(n), data))
    one.submit(outbox.add_bytes("one.ipynb", at(30), b"only one"))
    two.submit(other_outbox.add_bytes("two.ipynb", at(31), b"only two"))

    # Both look at the outbox at start: neither takes the saves of the other, alive.
    await asyncio.gather(
        one.start(index.migrate),
        two.start(second_index.migrate),
    )
    await asyncio.wait_for(asyncio.gather(one.wait_idle(), two.wait_idle()), DEADLINE)

    # Each server archives its own saves, in its save order; together, each save once.
    rows = await versions(index, "shared.ipynb")
    assert [row.number for row in rows] == list(range(1, 21))
    archived = await archived_bytes(store, index, "shared.ipynb")
    assert sorted(archived) == sorted(contents)
    assert [data for data in archived if data in contents[0::2]] == contents[0::2]
    assert [data for data in archived if data in contents[1::2]] == contents[1::2]
    assert await archived_bytes(store, index, "one.ipynb") == [b"only one"]
    assert await archived_bytes(store, index, "two.ipynb") == [b"only two"]
    assert len(await stored_keys(store)) == 22
    assert (one.backlog, two.backlog) == (0, 0)
    assert outbox.pending() == []


async def test_replaying_a_save_another_server_has_indexed_takes_no_new_number(
    index: IndexDatabase,
) -> None:
    """Server two loaded an entry from the shared outbox just before server one archived
    and removed it, so it stores and indexes the save again while server one goes on."""
    await index.migrate()
    store = MemoryStore()
    replaying_store = GatedStore(store)
    first = HashedRecord.of(ArchiveRecord("replayed.ipynb", b"first", at(0)))
    second = HashedRecord.of(ArchiveRecord("replayed.ipynb", b"second", at(1)))
    row = await store_and_index(store, index, WORKSPACE, first, None)
    assert row is not None
    assert row.number == 1

    replay = asyncio.ensure_future(store_and_index(replaying_store, index, WORKSPACE, first, None))
    await eventually(lambda: len(replaying_store.held) == 1, "the replay at its upload")
    latest = Latest(row.number, row.sha256)
    row = await store_and_index(store, index, WORKSPACE, second, latest)
    replaying_store.release_oldest()
    replayed = await asyncio.wait_for(replay, DEADLINE)

    assert replayed is not None
    assert replayed.number == 1
    assert row is not None
    assert row.number == 2
    assert [row.number for row in await versions(index, "replayed.ipynb")] == [1, 2]
    assert await archived_bytes(store, index, "replayed.ipynb") == [b"first", b"second"]


# -- archive(record) ------------------------------------------------------------------


async def test_archive_returns_once_its_record_is_archived(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = MemoryStore()
    archiver = make_archiver(store)
    await archiver.start(index.migrate)

    await archiver.archive(ArchiveRecord("record.ipynb", b"the record", at(0)))

    [row] = await versions(index, "record.ipynb")
    assert (row.number, row.queued_at, row.sha256) == (1, at(0), sha256(b"the record"))
    assert await read_version(store, WORKSPACE, row.store_key) == b"the record"
    assert archiver.backlog == 0
    assert outbox.pending() == []
    assert isinstance(archiver.path_locks["record.ipynb"], asyncio.Lock)
    assert isinstance(archiver.path_lock_ready, asyncio.Lock)


async def test_concurrent_archive_calls_for_one_path_are_all_archived_in_call_order(
    make_archiver: MakeArchiver, index: IndexDatabase
) -> None:
    store = MemoryStore()
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    records = [ArchiveRecord("calls.ipynb", f"call {n}".encode(), at(n)) for n in range(10)]

    await asyncio.gather(*(archiver.archive(record) for record in records))

    assert await archived_bytes(store, index, "calls.ipynb") == [r.content for r in records]
    assert [row.queued_at for row in await versions(index, "calls.ipynb")] == [
        record.queued_time for record in records
    ]


async def test_archiving_a_path_waits_while_its_path_lock_is_held(
    make_archiver: MakeArchiver, index: IndexDatabase
) -> None:
    store = MemoryStore()
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    lock = await archiver.path_lock("locked.ipynb")
    assert archiver.path_locks["locked.ipynb"] is lock

    async with lock:
        archiving = asyncio.ensure_future(
            archiver.archive(ArchiveRecord("locked.ipynb", b"locked", at(0)))
        )
        await eventually(lambda: archiver.backlog == 1, "the record queued")
        assert not archiving.done()
        assert await versions(index, "locked.ipynb") == []
    await asyncio.wait_for(archiving, DEADLINE)

    assert await archived_bytes(store, index, "locked.ipynb") == [b"locked"]


async def test_cancelling_an_archive_wait_still_archives_the_record_in_the_background(
    make_archiver: MakeArchiver, outbox: Outbox, index: IndexDatabase
) -> None:
    store = FailingStore(down=True)
    archiver = make_archiver(store)
    await archiver.start(index.migrate)
    waiting = asyncio.ensure_future(
        archiver.archive(ArchiveRecord("cancelled.ipynb", b"keep me", at(0)))
    )
    await eventually(lambda: store.failed >= 1, "the record being tried")

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert archiver.backlog == 1
    assert len(outbox.pending()) == 1

    store.down = False
    await asyncio.wait_for(archiver.wait_idle(), DEADLINE)
    assert await archived_bytes(store, index, "cancelled.ipynb") == [b"keep me"]
    assert outbox.pending() == []


async def test_cancelling_an_archive_call_while_its_save_is_kept_still_archives_it(
    make_archiver: MakeArchiver, tmp_path: Path, index: IndexDatabase
) -> None:
    store = MemoryStore()
    slow_outbox = SlowOutbox(tmp_path / "outbox")
    archiver = make_archiver(store, outbox=slow_outbox)
    await archiver.start(index.migrate)
    waiting = asyncio.ensure_future(
        archiver.archive(ArchiveRecord("kept.ipynb", b"keep me too", at(0)))
    )
    try:
        await eventually(slow_outbox.writing.is_set, "the record being written to the outbox")
        waiting.cancel()
    finally:
        slow_outbox.may_finish.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    async def archived() -> bool:
        return await archived_bytes(store, index, "kept.ipynb") == [b"keep me too"]

    await until(archived, DEADLINE, "the cancelled record archived in the background")
    await asyncio.wait_for(archiver.wait_idle(), DEADLINE)
    assert slow_outbox.pending() == []
