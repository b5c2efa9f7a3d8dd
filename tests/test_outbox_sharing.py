"""Servers that share one outbox directory: each archives its own saves, into its own
workspace, and the saves of a server that died are taken over by one of its workspace.

The end-to-end test starts real servers of one user that share the default outbox
(one Jupyter data directory) and one index, each with a workspace of its own; the
others drive ``Outbox`` and ``Archiver`` in the test process, where two outboxes on
one directory stand for two servers.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.archiver import Archiver
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.outbox import Outbox
from bookstore.core import keys
from bookstore.index import IndexDatabase, queries
from bookstore.store.memory import MemoryStore
from tests.support.inprocess import Run, until
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.outbox_files import BlockedDirectory, sha256, waiting_entries, workspace_rows

FAST = {"BOOKSTORE_RETRY_INITIAL_DELAY": "0.05", "BOOKSTORE_RETRY_MAX_DELAY": "0.5"}
FIRST_SAVE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
DEADLINE = 10.0


def at(n: int) -> datetime:
    return FIRST_SAVE + timedelta(seconds=n)


@pytest.mark.e2e
def test_servers_sharing_an_outbox_archive_each_save_into_its_own_workspace(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "data"  # one user's Jupyter data directory: one outbox, one index
    unmounted = BlockedDirectory(tmp_path)
    alpha_env = {
        "JUPYTER_DATA_DIR": str(shared),
        "BOOKSTORE_WORKSPACE_PREFIX": "alpha",
        "BOOKSTORE_LOCAL_STORE_DIR": str(unmounted.path),
        **FAST,
    }
    beta_env = {"JUPYTER_DATA_DIR": str(shared), "BOOKSTORE_WORKSPACE_PREFIX": "beta", **FAST}
    outbox, index_file = shared / "bookstore" / "outbox", shared / "bookstore" / "index.sqlite"
    alpha = JupyterServer(tmp_path / "alpha", env=alpha_env).start()
    beta = JupyterServer(tmp_path / "beta", env=beta_env)
    try:
        saved = {}
        for name in ("a1.ipynb", "a2.ipynb"):
            alpha.save(name, notebook(name))
            saved[name] = (alpha.root / name).read_bytes()
        wait_for(lambda: alpha.status()["archive"]["last_error"], what="alpha's store to fail")

        # Beta starts while alpha's saves wait for alpha's store: it leaves them alone.
        beta.start()
        beta.save("b1.ipynb", notebook("b1"))
        beta.wait_archived()
        beta_bytes = (beta.root / "b1.ipynb").read_bytes()
        assert workspace_rows(index_file) == [("beta", "b1.ipynb", 1, sha256(beta_bytes))]
        assert len(waiting_entries(outbox)) == 2
        assert alpha.status()["archive"]["backlog"] == 2

        # Alpha's store comes back: alpha archives its own saves, into its own workspace.
        unmounted.unblock()
        status = alpha.wait_archived()
        assert status["archive"]["last_error"] is None
        assert workspace_rows(index_file) == [
            ("alpha", "a1.ipynb", 1, sha256(saved["a1.ipynb"])),
            ("alpha", "a2.ipynb", 1, sha256(saved["a2.ipynb"])),
            ("beta", "b1.ipynb", 1, sha256(beta_bytes)),
        ]

        # Alpha dies with a save not archived; alpha's next start takes it over.
        unmounted.block()
        alpha.save("a3.ipynb", notebook("a3"))
        saved["a3.ipynb"] = (alpha.root / "a3.ipynb").read_bytes()
        wait_for(lambda: alpha.status()["archive"]["last_error"], what="alpha's store to fail")
        alpha.kill()
        unmounted.unblock()
        alpha.start()
        alpha.wait_archived()
        assert ("alpha", "a3.ipynb", 1, sha256(saved["a3.ipynb"])) in workspace_rows(index_file)
        assert [row for row in workspace_rows(index_file) if row[0] == "beta"] == [
            ("beta", "b1.ipynb", 1, sha256(beta_bytes))
        ]
        assert waiting_entries(outbox) == []
        assert beta.status()["archive"]["last_error"] is None
    finally:
        beta.stop()
        alpha.stop()


# -- in the test process ------------------------------------------------------------


@pytest.fixture
def index(tmp_path: Path, run: Run[Any]) -> Iterator[IndexDatabase]:
    database = IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")
    run(database.migrate())
    yield database
    run(database.close())


def archiver_of(outbox: Outbox, index: IndexDatabase, store: MemoryStore) -> Archiver:
    assert outbox.workspace is not None
    return Archiver(
        store=store,
        index=index,
        outbox=outbox,
        workspace=outbox.workspace,
        retry=RetryPolicy(0.01, 0.05),
        scan_interval=0.05,
    )


async def paths_of(index: IndexDatabase, workspace: str) -> list[str]:
    async with index.reading() as session:
        return [row.path for row in await queries.workspace_versions(session, workspace)]


def test_an_outbox_never_claims_the_saves_of_a_live_server(tmp_path: Path) -> None:
    mine = Outbox(tmp_path / "outbox", workspace="alpha")
    other = Outbox(tmp_path / "outbox", workspace="alpha")
    entry = other.add_bytes("theirs.ipynb", at(0), b"theirs")

    assert mine.claim().entries == []
    assert entry.outbox_file.is_file()


def test_the_saves_of_a_dead_server_go_to_a_server_of_the_same_workspace_only(
    tmp_path: Path,
) -> None:
    dead = Outbox(tmp_path / "outbox", workspace="alpha")
    entries = [dead.add_bytes("a.ipynb", at(n), f"a{n}".encode()) for n in range(3)]
    dead.close()  # as when its process ends: its lease is released
    beta = Outbox(tmp_path / "outbox", workspace="beta")
    alpha = Outbox(tmp_path / "outbox", workspace="alpha")

    assert beta.claim().entries == []
    claimed = alpha.claim().entries

    assert [(e.path, e.queued_time) for e in claimed] == [(e.path, e.queued_time) for e in entries]
    assert [alpha.read(e) for e in claimed] == [b"a0", b"a1", b"a2"]
    assert alpha.claim().entries == []  # claimed once
    assert beta.claim().entries == []


def test_saves_left_by_an_earlier_release_are_claimed_by_any_workspace(tmp_path: Path) -> None:
    """Entries written before entries named their server: a header of path and time."""
    directory = tmp_path / "outbox"
    directory.mkdir()
    header = {"path": "old.ipynb", "queued_time": at(0).isoformat()}
    legacy = directory / f"{keys.format_timestamp(at(0))}-4242-00000000.save"
    legacy.write_bytes(json.dumps(header).encode() + b"\nold bytes")

    [claimed] = Outbox(directory, workspace="beta").claim().entries

    assert (claimed.path, claimed.queued_time) == ("old.ipynb", at(0))
    assert not legacy.exists()
    assert claimed.outbox_file.read_bytes().endswith(b"\nold bytes")


def test_what_a_dead_server_left_unfinished_is_swept_away(tmp_path: Path) -> None:
    dead = Outbox(tmp_path / "outbox", workspace="alpha")
    dead.add_bytes("a.ipynb", at(0), b"a")  # takes its lease
    [lease] = (tmp_path / "outbox" / "leases").iterdir()
    unfinished = tmp_path / "outbox" / "tmp" / f"20240501T120000.000000Z-{lease.name}-7.save"
    unfinished.write_bytes(b"half a save, never acknowledged")
    os.utime(unfinished, (0, 0))  # written long ago
    dead.close()
    lease.touch()  # as a killed server leaves it
    survivor = Outbox(tmp_path / "outbox", workspace="alpha")

    assert len(survivor.claim().entries) == 1

    assert not unfinished.exists()
    [left] = (tmp_path / "outbox" / "leases").iterdir()  # the survivor's own
    assert left.name != lease.name


async def test_two_servers_on_one_outbox_each_archive_their_own_saves_in_their_own_workspace(
    tmp_path: Path, index: IndexDatabase
) -> None:
    store = MemoryStore()
    alpha_outbox = Outbox(tmp_path / "outbox", workspace="alpha")
    beta_outbox = Outbox(tmp_path / "outbox", workspace="beta")
    alpha = archiver_of(alpha_outbox, index, store)
    beta = archiver_of(beta_outbox, index, store)
    for n in range(5):
        alpha.submit(alpha_outbox.add_bytes(f"a{n}.ipynb", at(n), f"alpha {n}".encode()))
        beta.submit(beta_outbox.add_bytes(f"b{n}.ipynb", at(n), f"beta {n}".encode()))
    try:
        await asyncio.gather(alpha.start(index.migrate), beta.start(index.migrate))
        await asyncio.wait_for(asyncio.gather(alpha.wait_idle(), beta.wait_idle()), DEADLINE)
        assert await paths_of(index, "alpha") == [f"a{n}.ipynb" for n in range(5)]
        assert await paths_of(index, "beta") == [f"b{n}.ipynb" for n in range(5)]
        assert (alpha.last_error, beta.last_error) == (None, None)
    finally:
        await asyncio.gather(alpha.stop(0.1), beta.stop(0.1))


async def test_a_running_server_takes_over_the_saves_of_one_that_died(
    tmp_path: Path, index: IndexDatabase
) -> None:
    store = MemoryStore()
    dead = Outbox(tmp_path / "outbox", workspace="alpha")
    dead.add_bytes("left.ipynb", at(0), b"left behind")
    survivor = archiver_of(Outbox(tmp_path / "outbox", workspace="alpha"), index, store)
    try:
        await survivor.start(index.migrate)
        dead.close()  # dies while the survivor runs: its next scan takes the save over

        async def archived() -> bool:
            return await paths_of(index, "alpha") == ["left.ipynb"]

        await until(archived, DEADLINE, "the dead server's save archived")
        await asyncio.wait_for(survivor.wait_idle(), DEADLINE)
        assert waiting_entries(tmp_path / "outbox") == []
    finally:
        await survivor.stop(0.1)


async def test_a_save_archived_elsewhere_meanwhile_counts_as_done(
    tmp_path: Path, index: IndexDatabase
) -> None:
    store = MemoryStore()
    outbox = Outbox(tmp_path / "outbox", workspace="alpha")
    archiver = archiver_of(outbox, index, store)
    entry = outbox.add_bytes("gone.ipynb", at(0), b"gone")
    entry.outbox_file.unlink()  # as when another server archived and removed it
    archiver.submit(entry)
    try:
        await archiver.start(index.migrate)
        await asyncio.wait_for(archiver.wait_idle(), DEADLINE)
        assert (archiver.backlog, archiver.last_error) == (0, None)
    finally:
        await archiver.stop(0.1)
