"""bookstore archiving to a real moto S3 server, through a proxy that fails on cue.

The server runs in the test process (the ``live`` fixture); the tests marked ``e2e``
need a real ``jupyter server`` process: SIGKILL, restarts, and how it shuts down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import archives
from tests.support.archives import s3_server
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import notebook
from tests.support.moto_server import MotoServer, s3_config
from tests.support.tcp_proxy import TcpProxy

NORMAL_SAVE_BOUND = 5.0
"""Seconds no save may take: ~100x a normal save, and less than any S3 timeout bookstore has."""

OWN_MOTO_SERVER = "own moto server"


@pytest.fixture
def own_moto_server(s3_bucket: str) -> Iterator[MotoServer]:
    """A moto server of its own, with ``s3_bucket``: a test that stops it leaves the
    session's alone."""
    with MotoServer() as server:
        server.make_bucket(s3_bucket)
        yield server


@pytest.fixture
def own_s3_proxy(own_moto_server: MotoServer) -> Iterator[TcpProxy]:
    proxy = TcpProxy(own_moto_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def bookstore_config(request: pytest.FixtureRequest, s3_bucket: str) -> dict[str, Any]:
    """Archive to ``s3_bucket`` through ``s3_proxy`` on the session's moto server, or
    (indirect parameter ``OWN_MOTO_SERVER``) through ``own_s3_proxy``."""
    own = getattr(request, "param", None) == OWN_MOTO_SERVER
    proxy: TcpProxy = request.getfixturevalue("own_s3_proxy" if own else "s3_proxy")
    return s3_config(s3_bucket, proxy.endpoint_url)


async def timed_save(live: LiveServer, path: str, text: str) -> float:
    started = time.perf_counter()
    await live.save(path, notebook(text))
    return time.perf_counter() - started


async def test_versions_reach_s3_with_self_describing_metadata(
    live: LiveServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    await live.mkdir("dir with space")
    await live.save("dir with space/Ünïcode.ipynb", notebook("one"))
    await live.save("dir with space/Ünïcode.ipynb", notebook("two"))
    await live.wait_archived()
    saved = (live.root / "dir with space/Ünïcode.ipynb").read_bytes()

    [(_, _, first, *_), (path, version, latest, size, sha256)] = live.index_rows()
    assert (path, version) == ("dir with space/Ünïcode.ipynb", 2)
    objects = moto_server.objects(s3_bucket)
    assert sorted(objects) == [first, latest]
    assert objects[latest] == saved
    assert size == len(saved)
    with moto_server.client() as s3:
        metadata = s3.head_object(Bucket=s3_bucket, Key=latest)["Metadata"]
    assert metadata == {
        "bookstore-path": quote(live.stored("dir with space/Ünïcode.ipynb"), safe="/"),
        "bookstore-version": "2",
        "bookstore-queued-time": metadata["bookstore-queued-time"],
        "bookstore-sha256": sha256,
        "bookstore-format": "packed-1",
        "bookstore-size": str(len(saved)),
    }


async def test_50_rapid_saves_with_slow_uploads_are_all_archived_in_order(
    live: LiveServer, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    s3_proxy.delay = 0.02
    for n in range(50):
        await live.save("rapid.ipynb", notebook(f"save {n}"))
    last_save = (live.root / "rapid.ipynb").read_bytes()
    await live.wait_archived(timeout=120)

    rows = live.index_rows()
    assert [version for _, version, *_ in rows] == list(range(1, 51))
    keys = [key for _, _, key, *_ in rows]
    assert keys == sorted(keys)
    objects = moto_server.objects(s3_bucket)
    for n, key in enumerate(keys):
        assert f"save {n}" in objects[key].decode()
    assert objects[keys[-1]] == last_save


@pytest.mark.parametrize("bookstore_config", [OWN_MOTO_SERVER], indirect=True)
async def test_s3_down_for_20_seconds_delays_archiving_but_no_save(
    live: LiveServer, s3_bucket: str, own_moto_server: MotoServer
) -> None:
    before = [await timed_save(live, "up.ipynb", f"before {n}") for n in range(10)]
    await live.wait_archived()

    await asyncio.to_thread(own_moto_server.stop)
    outage_started = time.monotonic()
    during = [await timed_save(live, "down.ipynb", f"during {n}") for n in range(10)]
    assert (await live.status())["archive"]["backlog"] > 0
    # The outage itself is what is tested: it lasts 20 seconds, the server running meanwhile.
    await asyncio.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))
    assert "could not archive" in ((await live.status())["archive"]["last_error"] or "")
    await asyncio.to_thread(own_moto_server.start)

    await live.wait_archived(timeout=60)
    archived = own_moto_server.objects(s3_bucket)

    assert max(during) < NORMAL_SAVE_BOUND, (before, during)
    down_rows = [row for row in live.index_rows() if row[0] == "down.ipynb"]
    assert [version for _, version, *_ in down_rows] == list(range(1, 11))
    for n, (_, _, key, *_) in enumerate(down_rows):
        assert f"during {n}" in archived[key].decode()


async def test_a_hung_s3_endpoint_never_slows_a_save(live: LiveServer, s3_proxy: TcpProxy) -> None:
    await live.wait_archived()
    s3_proxy.set_mode("blackhole")
    durations = [await timed_save(live, "hung.ipynb", f"hung {n}") for n in range(5)]
    assert (await live.status())["archive"]["backlog"] > 0
    s3_proxy.set_mode("forward")
    await live.wait_archived(timeout=90)
    assert max(durations) < NORMAL_SAVE_BOUND, durations
    assert len(live.index_rows()) == 5


# -- a real jupyter server process ---------------------------------------------------


@pytest.mark.e2e
def test_saves_acknowledged_before_a_sigkill_are_archived_after_restart(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    server = s3_server(tmp_path, s3_bucket, s3_proxy).start()
    server.wait_archived()
    s3_proxy.set_mode("refuse")
    saved = {}
    for n in range(12):
        path = f"killed-{n % 3}.ipynb"
        server.save(path, notebook(f"acknowledged {n}"))
        saved.setdefault(path, []).append((server.root / path).read_bytes())
    assert server.status()["archive"]["backlog"] == 12
    server.kill()

    s3_proxy.set_mode("forward")
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        server.wait_archived(timeout=90)

    rows = archives.index_rows(server)
    objects = moto_server.objects(s3_bucket)
    assert len(rows) == len(objects) == 12
    for path, versions in saved.items():
        keys = [key for p, _, key, *_ in rows if p == path]
        assert [objects[key] for key in keys] == versions
    assert list(server.outbox_dir.glob("*.save")) == []


@pytest.mark.e2e
def test_shutdown_waits_for_queued_saves(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    server = s3_server(tmp_path, s3_bucket, s3_proxy).start()
    server.wait_archived()
    s3_proxy.set_mode("blackhole")
    for n in range(5):
        server.save("late.ipynb", notebook(f"late {n}"))
    assert server.status()["archive"]["backlog"] == 5

    assert server.process is not None
    server.process.terminate()
    s3_proxy.set_mode("forward")
    assert server.stop() == 0

    assert [version for _, version, *_ in archives.index_rows(server)] == [1, 2, 3, 4, 5]
    assert list(server.outbox_dir.glob("*.save")) == []


@pytest.mark.e2e
def test_shutdown_is_bounded_and_leaves_the_rest_for_the_next_start(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    server = s3_server(tmp_path, s3_bucket, s3_proxy)
    server.extra_env["BOOKSTORE_SHUTDOWN_TIMEOUT"] = "1"
    server.start()
    server.wait_archived()
    s3_proxy.set_mode("refuse")
    for n in range(3):
        server.save("pending.ipynb", notebook(f"pending {n}"))
    assert server.stop() == 0
    assert "3 saves are not archived yet" in server.log()
    assert len(list(server.outbox_dir.glob("*.save"))) == 3

    s3_proxy.set_mode("forward")
    with server:
        server.wait_archived()
    assert len(archives.index_rows(server)) == 3


@pytest.mark.e2e
def test_saves_from_before_a_restart_are_archived_before_saves_made_during_start_up(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    s3_proxy.set_mode("refuse")
    first = s3_server(tmp_path, s3_bucket, s3_proxy).start()
    first.save("order.ipynb", notebook("saved before the crash"))
    first.kill()

    # An empty index is rebuilt from the store before anything is archived, and
    # the store is down: saves made meanwhile wait behind the older one.
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        server.save("order.ipynb", notebook("saved during start-up"))
        assert server.status()["archive"]["ready"] is False
        s3_proxy.set_mode("forward")
        server.wait_archived(timeout=60)
    objects = moto_server.objects(s3_bucket)
    contents = [objects[key].decode() for _, _, key, *_ in archives.index_rows(server)]
    assert ["before the crash" in contents[0], "during start-up" in contents[1]] == [True, True]
