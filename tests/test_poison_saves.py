"""Saves that can never be archived as they are: set aside with a reason, reported, and
re-queued on request, while every other save keeps being archived.

The end-to-end tests share one real server (local store, SQLite index), started with
an unreadable file already in its outbox. The others run the real archiver in the test
process, against a real local store (so real file-name limits) and a real SQLite index.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookstore.archiving.archiver import Archiver
from bookstore.archiving.draining import RetryPolicy
from bookstore.archiving.maintenance import reindex
from bookstore.archiving.outbox import Outbox
from bookstore.cli.main import main
from bookstore.core import keys
from bookstore.core.body import Body
from bookstore.core.errors import InvalidPath, StoreUnavailable
from bookstore.history import History
from bookstore.index import IndexDatabase, queries
from bookstore.store import Store
from bookstore.store.local import LocalStore
from tests.support.cli_archives import CLI
from tests.support.delegating_store import DelegatingStore
from tests.support.inprocess import until
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.outbox_files import failed_entries, waiting_entries

FIRST_SAVE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
DEADLINE = 10.0
GARBAGE = b"\x00\xffthis is no outbox entry\n" * 10
LONG_FOLDER = "f" * 250
"""A folder name a file system holds, four of which make a key over S3's 1,024 bytes."""
TOO_DEEP = "/".join([LONG_FOLDER] * 4)
PERCENT_NAMES = [f"{n}{'%' * 200}.ipynb" for n in range(8)]
"""File names of 207 bytes, whose percent-encoded form is over 600: "File name too long"."""


def at(n: int) -> datetime:
    return FIRST_SAVE + timedelta(seconds=n)


# -- one real server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A server whose outbox holds an unreadable file when it starts."""
    process = JupyterServer(
        tmp_path_factory.mktemp("poison"),
        env={"BOOKSTORE_RETRY_INITIAL_DELAY": "0.05", "BOOKSTORE_RETRY_MAX_DELAY": "0.5"},
    )
    process.outbox_dir.mkdir(parents=True)
    (process.outbox_dir / "20240501T120000.000000Z-4242-00000000.save").write_bytes(GARBAGE)
    with process:
        yield process


def set_aside(server: JupyterServer) -> dict[str, Any]:
    return dict(server.status()["archive"]["set_aside"])


def script(server: JupyterServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``bookstore-history`` as the server's user runs it, with the server's settings."""
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(server.config_dir),
        "JUPYTER_DATA_DIR": str(server.data_dir),
    }
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.e2e
def test_an_unreadable_outbox_file_is_set_aside_logged_and_reported(
    server: JupyterServer,
) -> None:
    status = server.wait_archived()

    assert status["archive"]["ready"] is True
    assert status["archive"]["last_error"] is None
    [garbage] = [item for item in set_aside(server)["latest"] if item["path"] is None]
    assert "cannot be read" in garbage["reason"]
    [kept] = failed_entries(server.outbox_dir)
    assert kept.read_bytes() == GARBAGE  # set aside, never deleted
    assert "set aside" in server.log()
    server.save("after.ipynb", notebook("after"))
    server.wait_archived()


@pytest.mark.e2e
def test_saves_that_can_never_be_archived_are_set_aside_and_the_rest_keep_archiving(
    server: JupyterServer,
) -> None:
    for depth in range(1, 5):
        server.mkdir("/".join([LONG_FOLDER] * depth))
    saved: dict[str, bytes] = {}
    for name in [*PERCENT_NAMES, f"{TOO_DEEP}/a.ipynb", f"{TOO_DEEP}/b.ipynb"]:
        server.save(name, notebook(name[:20]))
    answer = server.api(
        "PUT", "/api/contents/./dot.ipynb", json={"type": "notebook", "content": notebook("dot")}
    )
    assert answer.status_code == 201, answer.text
    for n in range(5):
        server.save(f"plain {n}.ipynb", notebook(f"plain {n}"))
    for name in [*PERCENT_NAMES, "dot.ipynb", *(f"plain {n}.ipynb" for n in range(5))]:
        saved[name] = (server.root / name).read_bytes()

    status = server.wait_archived(timeout=30)

    assert status["archive"]["last_error"] is None
    for name, content in saved.items():
        answer = server.api("GET", f"/api/bookstore/content/1/{quote(name)}")
        assert answer.status_code == 200, (name, answer.text)
        assert answer.content == content
    long_ones = [item for item in set_aside(server)["latest"] if item["path"] is not None]
    assert sorted(item["path"] for item in long_ones) == [
        f"{TOO_DEEP}/a.ipynb",
        f"{TOO_DEEP}/b.ipynb",
    ]
    assert all("1,024 bytes" in item["reason"] for item in long_ones)
    assert set_aside(server)["count"] == 3  # with the unreadable file of the test above

    listed = script(server, "outbox", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["set_aside"]) == 3

    before = max(item["set_aside_at"] for item in set_aside(server)["latest"])
    retried = script(server, "retry")
    assert retried.returncode == 0, retried.stderr
    assert "re-queued 3 saves" in retried.stdout

    def set_aside_again() -> bool:
        latest = set_aside(server)["latest"]
        return len(latest) == 3 and all(item["set_aside_at"] > before for item in latest)

    # The running server picks them up without a restart, and sets them aside again.
    wait_for(set_aside_again, timeout=30, what="the re-queued saves to be tried again")
    assert len(failed_entries(server.outbox_dir)) == 3
    assert waiting_entries(server.outbox_dir) == []


# -- the real archiver, in the test process ----------------------------------------------

segment = st.one_of(
    st.sampled_from([".", "..", "", "%+", "@", "%40", "a%+", "x" * 255, "é" * 128]),
    st.text(
        alphabet=st.sampled_from(["%", "@", "é", "€", "😀", "\\", " ", "\n", ".", "a", "Z"]),
        min_size=1,
        max_size=300,
    ),
    st.text(min_size=1, max_size=12),  # anything, a NUL or a lone surrogate included
)
hostile_paths = st.lists(st.lists(segment, min_size=1, max_size=5).map("/".join), max_size=8)


def canonical(path: str) -> str:
    """The path as the archive names it, if it is valid at all."""
    try:
        return keys.normalize_path(path)
    except InvalidPath:
        return path


def archivable(path: str) -> bool:
    """Whether any store and index can hold ``path``: valid, and a key of at most 1,024 bytes."""
    try:
        keys.version_key("w", path, FIRST_SAVE)
    except Exception:  # InvalidPath, and the UnicodeError of a lone surrogate
        return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_paths)
def test_hostile_names_are_archived_restorably_or_set_aside_and_others_keep_archiving(
    paths: list[str],
) -> None:
    asyncio.run(_archive_hostile_names(sorted({canonical(path) for path in paths})))


def archiver_in(directory: Path, store: Store, index: IndexDatabase, **tuning: Any) -> Archiver:
    """An archiver of the workspace ``w``, with an outbox in ``directory``, that retries
    quickly (``tuning`` overrides it)."""
    settings: dict[str, Any] = {"retry": RetryPolicy(0.01, 0.05), "scan_interval": 0.05}
    return Archiver(
        store=store,
        index=index,
        outbox=Outbox(directory / "outbox", workspace="w"),
        workspace="w",
        **(settings | tuning),
    )


async def _archive_hostile_names(paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        store = LocalStore(base / "store")  # real file names: real limits
        index = IndexDatabase(f"sqlite+aiosqlite:///{base / 'index.sqlite'}")
        archiver = archiver_in(base, store, index, concurrency=2)
        outbox = archiver.outbox
        saves = {path: f"save of {path!r}".encode("utf-8", "surrogatepass") for path in paths}
        saves |= {f"plain {n}.txt": f"plain {n}".encode() for n in range(3)}
        try:
            for n, (path, content) in enumerate(saves.items()):
                archiver.submit(outbox.add_bytes(path, at(n), content))
            await archiver.start(index.migrate)
            await asyncio.wait_for(archiver.wait_idle(), DEADLINE)
            assert archiver.last_error is None

            history = History(store, index, "w")
            set_aside = {item.path: item.reason for item in outbox.set_aside_saves()}
            for path, content in saves.items():
                if not archivable(path):
                    assert set_aside.get(path), path
                    continue
                assert path not in set_aside, set_aside[path]
                row = await history.find(path, 1)
                assert await history.read(row) == content
                assert keys.parse_version_key("w", row.store_key) == (
                    path,
                    at(list(saves).index(path)),
                )
                assert all(len(part.encode()) <= 255 for part in row.store_key.split("/"))

            # The store alone gives every path back.
            rebuilt = IndexDatabase(f"sqlite+aiosqlite:///{base / 'rebuilt.sqlite'}")
            try:
                await rebuilt.migrate()
                await reindex(store, rebuilt, "w")
                async with rebuilt.reading() as session:
                    found = {row.path for row in await queries.workspace_versions(session, "w")}
            finally:
                await rebuilt.close()
            assert found == {path for path in saves if archivable(path)}
        finally:
            await archiver.stop(0)
            await store.close()
            await index.close()


class KeyRefusingStore(DelegatingStore):
    """A ``MemoryStore`` whose puts of chosen paths fail: for a while (``StoreUnavailable``),
    or as a file system refuses a name it can never hold, until ``mended``."""

    def __init__(self, *, unreachable: tuple[str, ...] = (), unholdable: tuple[str, ...] = ()):
        super().__init__()
        self.unreachable, self.unholdable = unreachable, unholdable
        self.mended = False
        self.refused = 0

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        parsed = keys.parse_version_key("w", key)
        assert parsed is not None
        if parsed.path in self.unreachable:
            self.refused += 1
            raise StoreUnavailable(f"{parsed.path} cannot be reached today")
        if parsed.path in self.unholdable and not self.mended:
            too_long = OSError(errno.ENAMETOOLONG, "File name too long")
            raise StoreUnavailable(f"cannot store {key!r}: File name too long") from too_long
        await super().put(key, data, metadata, overwrite=overwrite)


@pytest.fixture
def index(tmp_path: Path) -> IndexDatabase:
    """A SQLite index file; each test closes it on its own loop."""
    return IndexDatabase(f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}")


async def test_saves_retrying_for_a_while_hold_no_upload_slot(
    tmp_path: Path, index: IndexDatabase
) -> None:
    stuck = tuple(f"stuck {n}.txt" for n in range(4))
    store = KeyRefusingStore(unreachable=stuck)
    archiver = archiver_in(tmp_path, store, index, concurrency=2, retry=RetryPolicy(0.05, 0.2))
    outbox = archiver.outbox
    try:
        await archiver.start(index.migrate)
        for n, path in enumerate(stuck):
            archiver.submit(outbox.add_bytes(path, at(n), b"stuck"))
        await until(_true_when(lambda: store.refused >= 8), DEADLINE, "the stuck saves retrying")
        archiver.submit(outbox.add_bytes("free.txt", at(9), b"free"))

        async def free_archived() -> bool:
            return await History(store, index, "w").latest("free.txt") is not None

        await until(free_archived, DEADLINE, "a save of another path archived meanwhile")
        await until(_true_when(lambda: archiver.backlog == 4), DEADLINE, "its entry removed")
        assert archiver.set_aside == []  # unreachable is not unholdable: they wait
    finally:
        await archiver.stop(0)
        await index.close()


async def test_a_save_set_aside_and_retried_is_archived_by_the_running_server(
    tmp_path: Path, index: IndexDatabase
) -> None:
    store = KeyRefusingStore(unholdable=("long.txt",))
    archiver = archiver_in(tmp_path, store, index)
    outbox = archiver.outbox
    env = {
        "BOOKSTORE_OUTBOX_DIR": str(outbox.directory),
        "BOOKSTORE_WORKSPACE_PREFIX": "w",
        "JUPYTER_CONFIG_DIR": str(tmp_path),
    }
    history = History(store, index, "w")
    try:
        await archiver.start(index.migrate)
        archiver.submit(outbox.add_bytes("long.txt", at(0), b"first"))
        archiver.submit(outbox.add_bytes("long.txt", at(1), b"second"))
        await asyncio.wait_for(archiver.wait_idle(), DEADLINE)
        assert [item.path for item in archiver.set_aside] == ["long.txt", "long.txt"]
        assert "File name too long" in archiver.set_aside[0].reason
        assert archiver.last_error is None

        listed = CliRunner().invoke(main, ["outbox", "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        assert [item["path"] for item in json.loads(listed.output)["set_aside"]] == [
            "long.txt",
            "long.txt",
        ]
        store.mended = True  # say, a newer bookstore
        retried = CliRunner().invoke(main, ["retry", "long.txt"], env=env)
        assert retried.exit_code == 0, retried.output
        assert "re-queued 2 saves" in retried.output

        async def archived() -> list[bytes]:
            rows = await history.versions("long.txt")
            return [(await history.read(row)) for row in rows] if len(rows) == 2 else []

        assert await until(archived, DEADLINE, "the retried saves") == [b"first", b"second"]
        await until(_true_when(lambda: not archiver.set_aside), DEADLINE, "the status to clear")
        assert failed_entries(outbox.directory) == []
        nothing = CliRunner().invoke(main, ["retry", "other.txt"], env=env)
        assert nothing.exit_code == 3
        assert "no save of 'other.txt' is set aside" in nothing.output
    finally:
        await archiver.stop(0)
        await index.close()


def _true_when(condition: Any) -> Any:
    async def check() -> bool:
        return bool(condition())

    return check
