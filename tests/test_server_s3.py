"""A real jupyter server archiving to a real moto S3 server, through a proxy that fails on cue."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.archives import index_rows, s3_server
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer
from tests.support.tcp_proxy import TcpProxy

NORMAL_SAVE_BOUND = 5.0
"""Seconds no save may take: ~100x a normal save, and less than any S3 timeout bookstore has."""


def timed_save(server: JupyterServer, path: str, text: str) -> float:
    started = time.perf_counter()
    server.save(path, notebook(text))
    return time.perf_counter() - started


def test_versions_reach_s3_with_self_describing_metadata(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        server.mkdir("dir with space")
        server.save("dir with space/Ünïcode.ipynb", notebook("one"))
        server.save("dir with space/Ünïcode.ipynb", notebook("two"))
        server.wait_archived()
        saved = (server.root / "dir with space/Ünïcode.ipynb").read_bytes()

    [(_, _, first, *_), (path, version, latest, size, sha256)] = index_rows(server)
    assert (path, version) == ("dir with space/Ünïcode.ipynb", 2)
    objects = moto_server.objects(s3_bucket)
    assert sorted(objects) == [first, latest]
    assert objects[latest] == saved
    assert size == len(saved)
    with moto_server.client() as s3:
        metadata = s3.head_object(Bucket=s3_bucket, Key=latest)["Metadata"]
    assert metadata == {
        "bookstore-path": "dir%20with%20space/%C3%9Cn%C3%AFcode.ipynb",
        "bookstore-version": "2",
        "bookstore-queued-time": metadata["bookstore-queued-time"],
        "bookstore-sha256": sha256,
    }


def test_50_rapid_saves_with_slow_uploads_are_all_archived_in_order(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    s3_proxy.delay = 0.02
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        for n in range(50):
            server.save("rapid.ipynb", notebook(f"save {n}"))
        last_save = (server.root / "rapid.ipynb").read_bytes()
        server.wait_archived(timeout=120)

    rows = index_rows(server)
    assert [version for _, version, *_ in rows] == list(range(1, 51))
    keys = [key for _, _, key, *_ in rows]
    assert keys == sorted(keys)
    objects = moto_server.objects(s3_bucket)
    for n, key in enumerate(keys):
        assert f"save {n}" in objects[key].decode()
    assert objects[keys[-1]] == last_save


def test_s3_down_for_20_seconds_delays_archiving_but_no_save(
    tmp_path: Path, s3_bucket: str, moto_server: MotoServer
) -> None:
    # A moto server of its own: this test stops it, and the others share theirs.
    with MotoServer() as own_s3:
        own_s3.make_bucket(s3_bucket)
        proxy = TcpProxy(own_s3.port)
        with s3_server(tmp_path, s3_bucket, proxy) as server:
            before = [timed_save(server, "up.ipynb", f"before {n}") for n in range(10)]
            server.wait_archived()

            own_s3.stop()
            outage_started = time.monotonic()
            during = [timed_save(server, "down.ipynb", f"during {n}") for n in range(10)]
            assert server.status()["archive"]["backlog"] > 0
            # The outage itself is what is tested: it lasts 20 seconds.
            time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))
            assert "could not archive" in (server.status()["archive"]["last_error"] or "")
            own_s3.start()

            server.wait_archived(timeout=60)
        proxy.close()
        archived = own_s3.objects(s3_bucket)

    assert max(during) < NORMAL_SAVE_BOUND, (before, during)
    down_rows = [row for row in index_rows(server) if row[0] == "down.ipynb"]
    assert [version for _, version, *_ in down_rows] == list(range(1, 11))
    for n, (_, _, key, *_) in enumerate(down_rows):
        assert f"during {n}" in archived[key].decode()


def test_a_hung_s3_endpoint_never_slows_a_save(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        server.wait_archived()
        s3_proxy.set_mode("blackhole")
        durations = [timed_save(server, "hung.ipynb", f"hung {n}") for n in range(5)]
        assert server.status()["archive"]["backlog"] > 0
        s3_proxy.set_mode("forward")
        server.wait_archived(timeout=90)
    assert max(durations) < NORMAL_SAVE_BOUND, durations
    assert len(index_rows(server)) == 5


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

    rows = index_rows(server)
    objects = moto_server.objects(s3_bucket)
    assert len(rows) == len(objects) == 12
    for path, versions in saved.items():
        keys = [key for p, _, key, *_ in rows if p == path]
        assert [objects[key] for key in keys] == versions
    assert list(server.outbox_dir.glob("*.save")) == []


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

    assert [version for _, version, *_ in index_rows(server)] == [1, 2, 3, 4, 5]
    assert list(server.outbox_dir.glob("*.save")) == []


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
    assert len(index_rows(server)) == 3


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
    contents = [objects[key].decode() for _, _, key, *_ in index_rows(server)]
    assert ["before the crash" in contents[0], "during start-up" in contents[1]] == [True, True]
