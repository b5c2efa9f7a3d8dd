"""The versions list names the saves not archived yet, while S3 cannot be reached, on a
jupyter server in the test process archiving to moto S3 through a proxy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.support.inprocess import LiveServer, until
from tests.support.jupyter_process import notebook
from tests.support.moto_server import s3_config
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def bookstore_config(s3_bucket: str, s3_proxy: TcpProxy) -> dict[str, Any]:
    """S3 behind a proxy, so that saves can be kept waiting."""
    return s3_config(s3_bucket, s3_proxy.endpoint_url)


async def page(live: LiveServer, query: str = "") -> dict[str, Any]:
    answer = await live.api("GET", f"/api/bookstore/versions/w.ipynb{query}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_saves_waiting_for_s3_are_listed_as_pending_oldest_first_until_archived(
    live: LiveServer, s3_proxy: TcpProxy
) -> None:
    await live.save("w.ipynb", notebook("archived"))
    await live.wait_archived()
    assert (await page(live))["pending"] == []

    s3_proxy.set_mode("refuse")
    await live.save("w.ipynb", notebook("waiting 1"))
    await live.save("w.ipynb", notebook("waiting 2"))
    await live.save("other.ipynb", notebook("another notebook's save"))

    async def two_pending() -> dict[str, Any] | None:
        listed = await page(live, "?order=newest")
        return listed if len(listed["pending"]) == 2 else None

    waiting = await until(two_pending, 30, "both saves of w.ipynb to be listed as pending")
    times = [datetime.fromisoformat(item["queued_at"]) for item in waiting["pending"]]
    assert times == sorted(times)
    assert all(item.keys() == {"queued_at"} for item in waiting["pending"])
    assert [v["version"] for v in waiting["versions"]] == [1]
    assert (await page(live))["pending"] == waiting["pending"]

    s3_proxy.set_mode("forward")
    await live.wait_archived(timeout=60)
    archived = await page(live, "?order=newest")
    assert archived["pending"] == []
    assert [v["version"] for v in archived["versions"]] == [3, 2, 1]
    assert [v["queued_at"] for v in archived["versions"][:2]] == [
        item["queued_at"] for item in reversed(waiting["pending"])
    ]
