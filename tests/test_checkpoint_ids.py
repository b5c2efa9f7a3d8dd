"""Every checkpoint id that create-checkpoint returns, or the list shows, stays
restorable for as long as its version exists: after its save is archived, after a
restart, and when saves of the same content are kept as one version.

The real-process tests replay the issue's cases; the in-process ones cover the
saves that add no version of their own, and saves set aside.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer, s3_config, s3_env
from tests.support.tcp_proxy import TcpProxy

# -- real servers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with JupyterServer(tmp_path_factory.mktemp("checkpoint-ids")) as jupyter:
        jupyter.wait_archived()
        yield jupyter


def create(server: JupyterServer, path: str) -> str:
    answer = server.api("POST", f"/api/contents/{path}/checkpoints")
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def restore(server: JupyterServer, path: str, checkpoint: str) -> None:
    answer = server.api("POST", f"/api/contents/{path}/checkpoints/{checkpoint}")
    assert answer.status_code == 204, f"{checkpoint}: {answer.text}"


@pytest.mark.e2e
def test_an_id_returned_while_its_save_waits_restores_it_once_archived(
    server: JupyterServer,
) -> None:
    # Classic Notebook's Save and Checkpoint: a save, then a checkpoint right after it.
    server.save("classic.ipynb", notebook("saved and checkpointed"))
    saved = (server.root / "classic.ipynb").read_bytes()
    returned = create(server, "classic.ipynb")
    server.wait_archived()
    listed = [
        item["id"] for item in server.api("GET", "/api/contents/classic.ipynb/checkpoints").json()
    ]
    assert listed == ["1"]

    server.save("classic.ipynb", notebook("edited since"))
    restore(server, "classic.ipynb", returned)
    assert (server.root / "classic.ipynb").read_bytes() == saved


@pytest.mark.e2e
def test_two_checkpoints_in_a_row_return_ids_that_both_restore(server: JupyterServer) -> None:
    # Content no save archived: written behind Jupyter's back, then checkpointed twice.
    (server.root / "twice.ipynb").write_text(
        nbformat.writes(nbformat.from_dict(notebook("x"))) + "\n"
    )
    content = (server.root / "twice.ipynb").read_bytes()
    first, second = create(server, "twice.ipynb"), create(server, "twice.ipynb")
    server.wait_archived()
    versions = server.api("GET", "/api/bookstore/versions/twice.ipynb").json()["versions"]
    assert len(versions) == 1

    for checkpoint in (first, second):
        server.save("twice.ipynb", notebook("edited since"))
        restore(server, "twice.ipynb", checkpoint)
        assert (server.root / "twice.ipynb").read_bytes() == content


@pytest.mark.e2e
def test_an_id_returned_before_a_restart_restores_its_save_after_it(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    env = {**s3_env(s3_bucket, s3_proxy.endpoint_url), "BOOKSTORE_SHUTDOWN_TIMEOUT": "0.5"}
    s3_proxy.set_mode("refuse")  # S3 down: the save waits in the outbox
    with JupyterServer(tmp_path, env=env) as first:
        first.save("restart.ipynb", notebook("kept across a restart"))
        saved = (first.root / "restart.ipynb").read_bytes()
        returned = create(first, "restart.ipynb")
        assert returned.startswith("pending-")
    s3_proxy.set_mode("forward")
    with JupyterServer(tmp_path, env=env) as second:
        restore(second, "restart.ipynb", returned)  # waiting still, or archived meanwhile
        assert (second.root / "restart.ipynb").read_bytes() == saved
        second.wait_archived()
        second.save("restart.ipynb", notebook("edited since"))
        second.wait_archived()
        restore(second, "restart.ipynb", returned)  # archived now
        assert (second.root / "restart.ipynb").read_bytes() == saved
        versions = second.api("GET", "/api/bookstore/versions/restart.ipynb").json()["versions"]
        assert len(versions) >= 2


# -- in process ----------------------------------------------------------------------


@pytest.fixture
def bookstore_config(s3_bucket: str, s3_proxy: TcpProxy) -> dict[str, Any]:
    """S3 behind a proxy, so that saves can be kept waiting."""
    return s3_config(s3_bucket, s3_proxy.endpoint_url)


async def listed_ids(live: LiveServer, path: str) -> list[str]:
    return [item["id"] for item in await live.checkpoints(path)]


async def restores(live: LiveServer, path: str, checkpoint: str) -> bytes:
    """The bytes that restoring ``checkpoint`` writes (the file is changed first)."""
    await live.save(path, notebook(f"changed before restoring {checkpoint}"))
    answer = await live.api("POST", f"api/contents/{path}/checkpoints/{checkpoint}")
    assert answer.status_code == 204, f"{checkpoint}: {answer.text}"
    return (live.root / path).read_bytes()


async def test_a_save_that_adds_no_version_keeps_its_listed_id_restorable(
    live: LiveServer, s3_proxy: TcpProxy
) -> None:
    await live.save("same.ipynb", notebook("one"))
    one = (live.root / "same.ipynb").read_bytes()
    await live.save("same.ipynb", notebook("two"))
    two = (live.root / "same.ipynb").read_bytes()
    await live.wait_archived()
    s3_proxy.set_mode("refuse")
    await live.save("same.ipynb", notebook("two"))  # version 2 holds it: it adds no version
    [waiting] = (await listed_ids(live, "same.ipynb"))[2:]
    assert waiting.startswith("pending-")

    s3_proxy.set_mode("forward")
    await live.wait_archived(timeout=60)
    assert await listed_ids(live, "same.ipynb") == ["1", "2"]
    assert await restores(live, "same.ipynb", waiting) == two
    assert await restores(live, "same.ipynb", "1") == one


async def test_an_id_is_a_time_not_a_file_name(live: LiveServer, s3_proxy: TcpProxy) -> None:
    await live.save("stamp.ipynb", notebook("archived"))
    await live.wait_archived()
    s3_proxy.set_mode("refuse")
    await live.save("stamp.ipynb", notebook("stamped"))
    saved = (live.root / "stamp.ipynb").read_bytes()
    [waiting] = (await listed_ids(live, "stamp.ipynb"))[1:]
    assert waiting.startswith("pending-")
    assert len(waiting) == len("pending-20260101T000000_000000Z")
    # Ids of earlier releases named the outbox file after the time; they are read by it.
    assert await restores(live, "stamp.ipynb", f"{waiting}-1234-00000007") == saved
    s3_proxy.set_mode("forward")
    await live.wait_archived(timeout=60)
    assert await restores(live, "stamp.ipynb", waiting) == saved


async def test_an_id_of_no_save_is_a_404_in_words(live: LiveServer) -> None:
    await live.save("none.ipynb", notebook("x"))
    await live.wait_archived()
    answer = await live.api(
        "POST", "api/contents/none.ipynb/checkpoints/pending-20000101T000000_000000Z"
    )
    assert answer.status_code == 404
    assert "neither waiting to be archived nor archived" in answer.json()["message"]


async def test_an_id_of_a_save_set_aside_restores_the_bytes_kept(
    live: LiveServer, s3_proxy: TcpProxy
) -> None:
    await live.save("aside.ipynb", notebook("archived"))
    await live.wait_archived()
    s3_proxy.set_mode("refuse")
    await live.save("aside.ipynb", notebook("set aside"))
    kept = (live.root / "aside.ipynb").read_bytes()
    [entry] = live.services.archiver.pending(live.stored("aside.ipynb"))
    [waiting] = (await listed_ids(live, "aside.ipynb"))[1:]
    # As the archiver sets aside a save that can never be archived as it is.
    assert live.services.archiver.outbox.set_aside(entry, "a test sets it aside") is not None
    assert await restores(live, "aside.ipynb", waiting) == kept
    s3_proxy.set_mode("forward")
