"""The outbox is bounded: a byte quota, a warning well before it, saves that still succeed
when bookstore stops keeping them, and identical content kept once.

The end-to-end test runs a real server whose store is unreachable, so every save stays
in the outbox; the others run in the test process.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.outbox import Outbox, OutboxLimits
from bookstore.core import keys
from bookstore.core.errors import OutboxFull
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.outbox_files import BlockedDirectory, waiting_entries

QUOTA = 200_000
FIRST_SAVE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def outbox_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


@pytest.mark.e2e
def test_with_the_store_down_the_outbox_stops_at_its_quota_and_saves_still_succeed(
    tmp_path: Path,
) -> None:
    unmounted = BlockedDirectory(tmp_path)
    env = {
        "BOOKSTORE_LOCAL_STORE_DIR": str(unmounted.path),
        "BOOKSTORE_OUTBOX_MAX_BYTES": str(QUOTA),
        "BOOKSTORE_RETRY_INITIAL_DELAY": "0.05",
        "BOOKSTORE_RETRY_MAX_DELAY": "0.5",
    }
    with JupyterServer(tmp_path / "server", env=env) as server:
        # Identical content queued twice for one path is kept once.
        server.save("same.ipynb", notebook("same", cells=150))
        answer = server.api("POST", "/api/contents/same.ipynb/checkpoints")
        assert answer.status_code == 201, answer.text
        server.save("same.ipynb", notebook("same", cells=150))
        assert len(waiting_entries(server.outbox_dir)) == 1

        warned_at = None
        for n in range(60):
            server.save(f"n{n}.ipynb", notebook(f"n{n}", cells=60))  # ~8 KB each
            outbox = server.status()["archive"]["outbox"]
            assert outbox["max_bytes"] == QUOTA
            if outbox["warning"] and warned_at is None:
                warned_at = outbox["bytes"]
                assert outbox["not_kept"] == 0  # a warning well before the quota is reached
            if outbox["not_kept"]:
                break
        assert warned_at is not None
        assert warned_at <= 0.8 * QUOTA
        status = server.status()["archive"]
        assert status["outbox"]["not_kept"] >= 1
        assert "not kept" in status["outbox"]["warning"]
        assert outbox_bytes(server.outbox_dir) <= QUOTA
        assert "could not keep this save for archiving" in server.log()

        unmounted.unblock()
        status = server.wait_archived()
        assert waiting_entries(server.outbox_dir) == []
        assert "not kept" in status["archive"]["outbox"]["warning"]
        assert json.loads((server.root / "same.ipynb").read_text())["cells"]


# -- in the test process ------------------------------------------------------------


@pytest.fixture
def bookstore_config(tmp_path: Path) -> dict[str, Any]:
    return {"outbox_min_free_bytes": 1 << 62}  # more than any disk has free


async def test_bookstore_stops_keeping_saves_before_the_disk_is_full(live: LiveServer) -> None:
    await live.save("kept.ipynb", notebook("never kept"))

    status = await live.status()
    outbox = status["archive"]["outbox"]
    assert outbox["not_kept"] == 1
    assert "free" in outbox["warning"]
    assert (live.root / "kept.ipynb").is_file()  # the save itself succeeded


def test_identical_content_queued_twice_for_one_path_is_kept_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", workspace="w")
    first = outbox.add_bytes("a.ipynb", FIRST_SAVE, b"same")
    again = outbox.add_bytes("a.ipynb", FIRST_SAVE + timedelta(seconds=1), b"same")
    other_path = outbox.add_bytes("b.ipynb", FIRST_SAVE + timedelta(seconds=2), b"same")
    changed = outbox.add_bytes("a.ipynb", FIRST_SAVE + timedelta(seconds=3), b"changed")
    back = outbox.add_bytes("a.ipynb", FIRST_SAVE + timedelta(seconds=4), b"same")

    assert again == first
    assert len({first, other_path, changed, back}) == 4
    assert len(waiting_entries(outbox.directory)) == 4


def test_over_the_quota_a_save_is_refused_in_words_unless_it_is_already_kept(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox", workspace="w", limits=OutboxLimits(max_bytes=1000))
    kept = outbox.add_bytes("a.ipynb", FIRST_SAVE, b"x" * 800)

    with pytest.raises(OutboxFull, match="outbox_max_bytes") as refused:
        outbox.add_bytes("b.ipynb", FIRST_SAVE + timedelta(seconds=1), b"y" * 300)
    assert isinstance(refused.value, OSError)  # callers that handle a full disk handle this
    assert outbox.add_bytes("a.ipynb", FIRST_SAVE + timedelta(seconds=2), b"x" * 800) == kept
    assert outbox.warning() is not None


def test_an_entry_is_named_by_the_utc_time_its_header_holds(tmp_path: Path) -> None:
    """A save stamped in another zone: the file name and the header name one instant."""
    outbox = Outbox(tmp_path / "outbox", workspace="w")
    local = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

    entry = outbox.add_bytes("zone.ipynb", local, b"zoned")

    assert entry.outbox_file.name.startswith("20240501T120000.123456Z-")
    header = json.loads(entry.outbox_file.read_bytes().split(b"\n", 1)[0])
    assert datetime.fromisoformat(header["queued_time"]) == local
    assert entry.outbox_file.name.startswith(keys.format_timestamp(local))
    [listed] = outbox.pending()
    assert listed.queued_time == local
