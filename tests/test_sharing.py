"""Publish and clone on a jupyter server in the test process, with S3 on a real moto server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import notebook
from tests.support.moto_server import (
    MotoServer,
    clone_config,
)


@pytest.fixture
def clone_dir(tmp_path: Path) -> Path:
    """The directory notebooks may be cloned from, beside the server's root."""
    directory = tmp_path / "clone-source"
    (directory / "course").mkdir(parents=True)
    (directory / "course" / "lesson.ipynb").write_text(json.dumps(notebook("lesson")))
    return directory


@pytest.fixture
def bookstore_config(moto_server: MotoServer, s3_bucket: str, clone_dir: Path) -> dict[str, Any]:
    """Local archive; clones allowed from ``s3_bucket`` and from ``clone_dir``."""
    return clone_config(s3_bucket, moto_server.endpoint_url, clone_dir)


def put_object(moto: MotoServer, bucket: str, key: str, body: bytes) -> None:
    with moto.client() as s3:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


async def test_status_reports_the_sharing_features(live: LiveServer) -> None:
    features = (await live.status())["features"]
    assert features["publish"] is True
    assert features["clone_s3"] is True
    assert features["clone_fs"] is True


async def test_publishing_copies_to_the_published_prefix_and_replaces_it(
    live: LiveServer,
) -> None:
    first = await live.api(
        "PUT",
        "/api/bookstore/publish/shared.ipynb",
        json={"type": "notebook", "content": notebook("one")},
    )
    await live.save("shared.ipynb", notebook("two"))
    second = await live.api("PUT", "/api/bookstore/publish/shared.ipynb")
    bad = await live.api(
        "PUT", "/api/bookstore/publish/x.ipynb", json={"type": "file", "content": "x"}
    )
    assert first.status_code == 200, first.text
    assert second.json()["store_key"] == "published/shared.ipynb"
    published = live.store_dir / "data" / "published" / "shared.ipynb"
    assert published.read_bytes() == (live.root / "shared.ipynb").read_bytes()
    assert bad.status_code == 400


async def test_cloning_from_an_allowed_bucket_never_overwrites(
    live: LiveServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    put_object(moto_server, s3_bucket, "course/intro.ipynb", json.dumps(notebook("intro")).encode())
    clone = {"s3_bucket": s3_bucket, "s3_key": "course/intro.ipynb"}
    first = await live.api("POST", "/api/bookstore/clone", json=clone)
    second = await live.api("POST", "/api/bookstore/clone", json=clone)
    assert (first.status_code, first.json()["path"]) == (201, "intro.ipynb")
    assert second.json()["path"] == "intro-1.ipynb"
    cloned = json.loads((live.root / "intro-1.ipynb").read_text())
    assert "".join(cloned["cells"][0]["source"]) == "print('intro', 0)"
    await live.wait_archived()
    listed = (await live.api("GET", "/api/bookstore/versions/intro.ipynb")).json()
    assert listed["total"] == 1


async def test_cloning_is_refused_outside_the_allowlist_and_for_invalid_notebooks(
    live: LiveServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    other = f"{s3_bucket}-other"
    moto_server.make_bucket(other)
    put_object(moto_server, other, "secret.ipynb", json.dumps(notebook("secret")).encode())
    put_object(moto_server, s3_bucket, "broken.ipynb", b"{not json")
    denied = await live.api(
        "POST", "/api/bookstore/clone", json={"s3_bucket": other, "s3_key": "secret.ipynb"}
    )
    broken = await live.api(
        "POST",
        "/api/bookstore/clone",
        json={"s3_bucket": s3_bucket, "s3_key": "broken.ipynb"},
    )
    assert denied.status_code == 403
    assert "clone_s3_buckets" in denied.json()["message"]
    assert broken.status_code == 422
    assert "not a valid notebook" in broken.json()["message"]
    assert sorted(p.name for p in live.root.iterdir()) == []


async def test_cloning_from_the_directory_stays_inside_it(live: LiveServer) -> None:
    cloned = await live.api(
        "POST", "/api/bookstore/fs-clone", json={"relpath": "course/lesson.ipynb"}
    )
    escape = await live.api("POST", "/api/bookstore/fs-clone", json={"relpath": "../config/x"})
    assert cloned.status_code == 201
    assert (live.root / "lesson.ipynb").is_file()
    assert escape.status_code == 400


async def test_the_landing_page_asks_before_cloning_and_escapes_the_link(
    live: LiveServer, s3_bucket: str
) -> None:
    key = "<script>alert(1)</script>.ipynb"
    query = urlencode({"s3_bucket": s3_bucket, "s3_key": key})
    page = await live.api("GET", f"bookstore/clone?{query}")
    missing = await live.api("GET", f"bookstore/clone?s3_bucket={s3_bucket}")
    assert page.status_code == 200
    assert "Clone and open" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert list(live.root.iterdir()) == []
    assert missing.status_code == 400


@pytest.mark.parametrize("bookstore_config", [{}])
async def test_sharing_features_are_off_unless_configured(live: LiveServer) -> None:
    features = (await live.status())["features"]
    clone = await live.api("POST", "/api/bookstore/clone", json={"s3_bucket": "b", "s3_key": "k"})
    fs_clone = await live.api("POST", "/api/bookstore/fs-clone", json={"relpath": "x.ipynb"})
    assert (features["clone_s3"], features["clone_fs"]) == (False, False)
    assert clone.status_code == 404
    assert fs_clone.status_code == 404
