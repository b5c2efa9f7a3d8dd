"""Real servers, a real moto S3 server, and faults injected between them.

Each test runs ``jupyter server`` subprocesses that archive to moto through a
``FaultProxy`` (throttling, connections reset mid-upload, a SIGKILL between
the store write and the index row, S3 down), two servers sharing one SQLite
index and bucket prefix, or SIGKILLs a ``bookstore-history restore`` at
increasing moments, and then checks the end state byte for byte: every save
archived once, every stored object exactly the bytes its save wrote, a
restored notebook always whole. Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import pytest

from tests.support.archives import index_rows
from tests.support.fault_proxy import THROTTLING, FaultProxy, Faults
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.moto_server import MotoServer, s3_env
from tests.support.stored import as_read, is_part_object

pytestmark = pytest.mark.e2e

FAST_RETRY = {"BOOKSTORE_RETRY_INITIAL_DELAY": "0.05", "BOOKSTORE_RETRY_MAX_DELAY": "0.5"}

Row = tuple[str, int, str, int, str]


class Stored(NamedTuple):
    data: bytes
    metadata: dict[str, str]


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def fault_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's moto server, passing through."""
    with FaultProxy(moto_server.port) as proxy:
        yield proxy
    assert proxy.hook_errors == []


def s3_server(
    base: Path, bucket: str, proxy: FaultProxy, env: Mapping[str, str] | None = None
) -> JupyterServer:
    return JupyterServer(
        base, env={**s3_env(bucket, proxy.endpoint_url), **FAST_RETRY, **(env or {})}
    )


def read_bucket(moto: MotoServer, bucket: str) -> dict[str, Stored]:
    """Every version in ``bucket`` as a reader gets it back (``stored.as_read``), read
    directly from moto (not through the proxy), with the metadata it was written with."""
    with moto.client() as s3:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]

        def fetch(key: str) -> tuple[str, tuple[bytes, dict[str, str]]]:
            answer = s3.get_object(Bucket=bucket, Key=key)
            return key, (answer["Body"].read(), dict(answer["Metadata"]))

        with ThreadPoolExecutor(8) as pool:
            found = dict(pool.map(fetch, keys))
    return {key: Stored(data, found[key][1]) for key, data in as_read(found).items()}


def rows_in(index_file: Path) -> list[Row]:
    """(path, version, store_key, size, sha256) of every row of a SQLite index, in order."""
    db = sqlite3.connect(f"file:{index_file}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT path, version, store_key, size, sha256 FROM versions ORDER BY path, version"
        ).fetchall()
    finally:
        db.close()


def delete_index(index_file: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index_file}{suffix}").unlink(missing_ok=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def big_notebook(tag: str, size: int, cells: int = 4) -> dict[str, Any]:
    """A valid notebook of about ``size`` bytes, different all through for each call."""
    nb = nbformat.v4.new_notebook()
    per_cell = max(1, size // cells // 2)
    nb.cells = [
        nbformat.v4.new_code_cell(f"# {tag} {i}\n{os.urandom(per_cell).hex()}", id=f"cell-{i}")
        for i in range(cells)
    ]
    return dict(nb)


def assert_archived_exactly(
    rows: list[Row], objects: Mapping[str, Stored], saved: Mapping[str, list[bytes]]
) -> None:
    """Each save is one row and one object holding exactly the bytes the save wrote."""
    assert len(rows) == sum(map(len, saved.values()))
    assert sorted(objects) == sorted(key for _, _, key, _, _ in rows)
    for path, saves in saved.items():
        assert [v for p, v, *_ in rows if p == path] == list(range(1, len(saves) + 1))
    different = [
        key
        for path, version, key, size, digest in rows
        if objects[key].data != saved[path][version - 1]
        or (size, digest) != (len(objects[key].data), sha256(objects[key].data))
    ]
    assert different == [], f"{len(different)} stored objects differ from their save"


def distribution(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} PUTs: {k} objects" for n, k in sorted(Counter(counts.values()).items()))


# -- S3 throttling ---------------------------------------------------------------


def test_puts_throttled_three_times_per_key_are_all_archived_intact(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    fault_proxy.faults = Faults(error_first_puts=3)
    paths = [f"throttled-{n}.ipynb" for n in range(7)]
    saved: dict[str, list[bytes]] = {path: [] for path in paths}
    with s3_server(tmp_path, s3_bucket, fault_proxy) as server:
        for n in range(21):
            path = paths[n % len(paths)]
            server.save(path, notebook(f"{path} save {n}", cells=3))
            saved[path].append((server.root / path).read_bytes())
        server.wait_archived(timeout=120)

    rows = index_rows(server)
    objects = read_bucket(moto_server, s3_bucket)
    assert_archived_exactly(rows, objects, saved)
    attempts = fault_proxy.attempts()
    per_object = {key: attempts.get(key, 0) for key in objects}
    print(
        f"\nthrottling: {len(objects)} objects compared byte for byte; attempts per object: "
        f"{distribution(per_object)}; injected errors by status: {fault_proxy.injected()}"
    )
    assert min(per_object.values()) >= 4
    assert set(fault_proxy.injected()) == {429, 503}


# -- connections reset mid-upload ---------------------------------------------------


def test_100_uploads_reset_mid_body_leave_no_damaged_object(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    fault_proxy.faults = Faults(reset_first_puts=1, reset_limit=100)
    paths = [f"reset-{n}.ipynb" for n in range(10)]
    saved: dict[str, list[bytes]] = {path: [] for path in paths}
    with s3_server(tmp_path, s3_bucket, fault_proxy) as server:

        def save_ten(path: str) -> None:
            for n in range(10):
                server.save(path, big_notebook(f"{path} save {n}", 64 * 1024))
                saved[path].append((server.root / path).read_bytes())

        with ThreadPoolExecutor(5) as clients:
            list(clients.map(save_ten, paths))
        server.wait_archived(timeout=120)

    rows = index_rows(server)
    objects = read_bucket(moto_server, s3_bucket)
    assert min(len(stored.data) for stored in objects.values()) > 64 * 1024
    assert_archived_exactly(rows, objects, saved)
    attempts = fault_proxy.attempts()
    print(
        f"\nresets: {fault_proxy.resets} uploads reset mid-body; {len(objects)} versions "
        f"compared byte for byte, 0 differ; attempts per object (versions and the parts "
        f"they share): {distribution(attempts)}"
    )
    assert fault_proxy.resets == 100
    assert sum(count >= 2 for count in attempts.values()) == 100


# -- a crash between the store write and the index row ------------------------------


class KillOnStore:
    """A proxy hook: SIGKILL ``process`` once moto has stored its first version object (the
    parts a version shares are written before it), before the process hears so."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.killed = threading.Event()
        self.key = ""
        self._once = threading.Lock()

    def __call__(self, key: str, _attempt: int) -> None:
        with self._once:
            if self.killed.is_set() or is_part_object(key):
                return
            self.key = key
            self.process.kill()
            self.process.wait()
            self.killed.set()


def test_a_sigkill_between_store_and_index_leaves_no_duplicate(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    path = "crash.ipynb"
    saved: dict[str, list[bytes]] = {path: []}
    stored_before_crash: list[str] = []
    server = s3_server(tmp_path, s3_bucket, fault_proxy)

    def save(text: str) -> None:
        server.save(path, notebook(text, cells=2))
        saved[path].append((server.root / path).read_bytes())

    for crash in range(3):
        server.start()
        server.wait_archived()
        save(f"archived before crash {crash}")
        server.wait_archived()
        process = server.process
        assert process is not None
        crash_hook = KillOnStore(process)
        fault_proxy.faults = Faults(on_put_stored=crash_hook)
        save(f"stored but not indexed {crash}")
        wait_for(crash_hook.killed.is_set, timeout=30, what="the kill after the store write")
        server.kill()
        stored_before_crash.append(crash_hook.key)
        fault_proxy.faults = Faults()

        # The crash state: in the store, not in the index, still in the outbox.
        assert stored_before_crash[-1] in read_bucket(moto_server, s3_bucket)
        assert stored_before_crash[-1] not in [key for _, _, key, *_ in index_rows(server)]
        assert len(list(server.outbox_dir.glob("*.save"))) == 1

    with server:
        server.wait_archived()
        save("after the last restart")
        server.wait_archived()

    rows = index_rows(server)
    objects = read_bucket(moto_server, s3_bucket)
    assert len(objects) == len({sha256(data) for data in saved[path]}) == 7
    assert_archived_exactly(rows, objects, saved)
    assert len({key for _, _, key, *_ in rows}) == len({digest for *_, digest in rows}) == 7
    for key in stored_before_crash:
        assert [version for _, version, k, *_ in rows if k == key] != []
        assert [k for _, _, k, *_ in rows].count(key) == 1
        assert objects[key].metadata["bookstore-version"] == str(
            next(version for _, version, k, *_ in rows if k == key)
        )
    assert list(server.outbox_dir.glob("*.save")) == []
    attempts = fault_proxy.attempts()
    print(
        f"\ncrash: 3 SIGKILLs between store and index; {len(objects)} objects, {len(rows)} rows; "
        f"PUTs of the crashed versions: {[attempts[key] for key in stored_before_crash]}"
    )


# -- two servers, one index, one bucket prefix ----------------------------------------


def sharing_servers(
    tmp_path: Path, bucket: str, proxy: FaultProxy, index_file: Path
) -> list[JupyterServer]:
    """Two servers with their own root, data dir and outbox, one SQLite index and prefix."""
    return [
        s3_server(
            tmp_path / name,
            bucket,
            proxy,
            {
                "BOOKSTORE_INDEX_URL": f"sqlite+aiosqlite:///{index_file}",
                "BOOKSTORE_OUTBOX_DIR": str(tmp_path / name / "outbox"),
                "BOOKSTORE_WORKSPACE_PREFIX": "team",
            },
        )
        for name in ("a", "b")
    ]


def start_all(servers: list[JupyterServer]) -> None:
    with ThreadPoolExecutor(len(servers)) as starting:
        list(starting.map(JupyterServer.start, servers))


def test_two_servers_sharing_one_sqlite_index_and_bucket_prefix(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    index_file = tmp_path / "shared" / "index.sqlite"
    servers = sharing_servers(tmp_path, s3_bucket, fault_proxy, index_file)
    paths = [f"shared-{n}.ipynb" for n in range(10)]
    threads_per_server, saves_per_thread = 5, 100
    saved: list[str] = []  # the sha256 of every save, read back right after it
    started = time.monotonic()
    start_all(servers)
    try:

        def save_many(job: tuple[int, int]) -> None:
            number, thread = job
            server = servers[number]
            mine = paths[thread * 2 : thread * 2 + 2]  # one writer per path per server
            for n in range(saves_per_thread):
                path = mine[n % 2]
                server.save(path, notebook(f"server {number} thread {thread} save {n}"))
                saved.append(sha256((server.root / path).read_bytes()))

        jobs = [(s, t) for s in range(len(servers)) for t in range(threads_per_server)]
        with ThreadPoolExecutor(len(jobs)) as clients:
            list(clients.map(save_many, jobs))
        saving = time.monotonic() - started
        for server in servers:
            server.wait_archived(timeout=120)
    finally:
        for server in servers:
            server.stop()
    elapsed = time.monotonic() - started

    rows = rows_in(index_file)
    objects = read_bucket(moto_server, s3_bucket)
    for server in servers:
        assert "database is locked" not in server.log().lower()
    assert len(rows) == len(servers) * threads_per_server * saves_per_thread == 1000
    for path in paths:
        assert [v for p, v, *_ in rows if p == path] == list(range(1, 101)), path
    assert len({(p, v) for p, v, *_ in rows}) == len({key for _, _, key, *_ in rows}) == 1000
    assert sorted(objects) == sorted(key for _, _, key, *_ in rows)
    assert sorted(digest for *_, digest in rows) == sorted(saved)
    assert all(key.startswith("team/") for key in objects)
    damaged = [
        k
        for _, _, k, size, d in rows
        if (len(objects[k].data), sha256(objects[k].data)) != (size, d)
    ]
    assert damaged == []
    renumbered = [k for _, v, k, *_ in rows if objects[k].metadata["bookstore-version"] != str(v)]
    print(
        f"\ntwo servers: {len(rows)} versions of {len(paths)} shared paths, started and "
        f"saved in {saving:.1f}s, all archived after {elapsed:.1f}s; {len(objects)} objects "
        f"match their sha256; objects whose bookstore-version metadata differs from their "
        f"row: {len(renumbered)}"
    )


# -- a restore killed midway --------------------------------------------------------


def test_a_restore_killed_at_any_moment_leaves_the_old_file_or_the_new(
    tmp_path: Path,
) -> None:
    path = "big.ipynb"
    with JupyterServer(tmp_path, env=FAST_RETRY) as server:
        server.save(path, big_notebook("version 1", 6 * 1024 * 1024, cells=16))
        new = (server.root / path).read_bytes()
        server.save(path, big_notebook("version 2", 6 * 1024 * 1024, cells=16))
        old = (server.root / path).read_bytes()
        server.wait_archived(timeout=120)
    assert min(len(new), len(old)) > 6_000_000
    assert new != old

    cli = shutil.which("bookstore-history", path=str(Path(sys.executable).parent))
    assert cli is not None
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(server.config_dir),
        "JUPYTER_DATA_DIR": str(server.data_dir),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    command = [cli, "--root-dir", str(server.root), "restore", path, "1"]
    target = server.root / path
    spare = tmp_path / "old.ipynb"

    def temporaries() -> list[Path]:
        return list(server.root.glob(f".{path}.*.tmp"))

    # Four kills counted in polls from the launch, then fifteen counted from the
    # moment the temporary file appears (densest while it is written and renamed),
    # and the last once the restore has exited.
    schedule: list[tuple[str, int | None]] = [("launch", n) for n in (0, 30, 300, 3000)]
    after_temporary = (0, 1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 1024, None)
    schedule += [("temporary", n) for n in after_temporary]
    outcomes: Counter[str] = Counter()
    mid_replace = partial = 0
    for start, polls in schedule:
        if target.read_bytes() != old:
            spare.write_bytes(old)
            os.replace(spare, target)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        if start == "temporary":
            while not temporaries() and process.poll() is None:
                assert time.monotonic() < deadline, "the restore never wrote its temporary"
        done = 0
        while (polls is None or done < polls) and process.poll() is None:
            temporaries()
            done += 1
            assert time.monotonic() < deadline, "the restore did not finish"
        process.kill()
        code = process.wait()
        if polls is None:
            assert code == 0, "the restore left to finish failed"

        data = target.read_bytes()
        json.loads(data)
        assert data in (old, new), f"killed {polls} polls after {start}: a partial notebook"
        outcomes["old" if data == old else "new"] += 1
        # A temporary left behind proves the kill landed between its creation and the rename.
        for leftover in temporaries():
            mid_replace += 1
            partial += leftover.stat().st_size < len(new)
            leftover.unlink()
    print(
        f"\nrestore: {len(schedule)} runs killed at increasing moments, file afterwards: "
        f"{dict(outcomes)}; {mid_replace} killed mid-replace (each left a hidden temporary "
        f"in the notebook directory, {partial} of them partial), the notebook always whole"
    )
    assert outcomes["old"] >= 1, "no kill landed before the replace"
    assert outcomes["new"] >= 1, "no restore completed"
    assert mid_replace >= 1, "no kill landed while the new file was being written"


# -- S3 down while a lost index is rebuilt ----------------------------------------------


def test_an_index_lost_while_s3_is_down_is_rebuilt_once_s3_is_back(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    server = s3_server(tmp_path, s3_bucket, fault_proxy)
    with server:
        for n in range(3):
            server.save("kept.ipynb", notebook(f"kept {n}"))
        server.wait_archived()
    before = index_rows(server)
    delete_index(server.index_file)

    fault_proxy.faults = Faults(outage=THROTTLING[2])
    with server:
        wait_for(
            lambda: "could not prepare the index" in server.log(),
            timeout=60,
            what="the server to fail to rebuild the index while S3 is down",
        )
        fault_proxy.faults = Faults()
        server.wait_archived()
        server.save("kept.ipynb", notebook("after the outage"))
        server.wait_archived()

    after = index_rows(server)
    assert [version for _, version, *_ in after] == [1, 2, 3, 4]
    assert set(before) <= set(after)


# -- two servers on one index, rebuilt from the store ------------------------------


def test_a_shared_index_rebuilt_from_the_store_keeps_every_version_number(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    index_file = tmp_path / "shared" / "index.sqlite"
    servers = sharing_servers(tmp_path, s3_bucket, fault_proxy, index_file)
    fault_proxy.faults = Faults(latency=0.02)  # each upload overlaps the other server's
    start_all(servers)
    try:

        def save_15(number: int) -> None:
            for n in range(15):
                servers[number].save("shared.ipynb", notebook(f"server {number} save {n}"))

        with ThreadPoolExecutor(len(servers)) as clients:
            list(clients.map(save_15, range(len(servers))))
        for server in servers:
            server.wait_archived(timeout=60)
    finally:
        for server in servers:
            server.stop()
    before = {key: version for _, version, key, *_ in rows_in(index_file)}
    assert sorted(before.values()) == list(range(1, 31))

    fault_proxy.faults = Faults()
    delete_index(index_file)
    with servers[0]:
        servers[0].wait_archived()
    assert "rebuilt the index from the store: 30 versions indexed" in servers[0].log()
    after = {key: version for _, version, key, *_ in rows_in(index_file)}
    renumbered = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert renumbered == {}, f"{len(renumbered)} of 30 versions changed number in the rebuild"
