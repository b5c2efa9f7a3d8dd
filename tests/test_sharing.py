"""Publish and clone on a real server, with S3 on a real moto server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer


@pytest.fixture
def sharing_server(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> Iterator[JupyterServer]:
    """Local archive; clones allowed from ``s3_bucket`` and from a directory."""
    clone_dir = tmp_path / "templates"
    (clone_dir / "course").mkdir(parents=True)
    (clone_dir / "course" / "lesson.ipynb").write_text(json.dumps(notebook("lesson")))
    env = {
        "BOOKSTORE_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "BOOKSTORE_S3_REGION_NAME": REGION,
        "BOOKSTORE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "BOOKSTORE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "BOOKSTORE_CLONE_S3_BUCKETS": s3_bucket,
        "BOOKSTORE_FS_CLONE_DIR": str(clone_dir),
    }
    with JupyterServer(tmp_path / "server", env=env) as server:
        yield server


def put_object(moto: MotoServer, bucket: str, key: str, body: bytes) -> None:
    with moto.client() as s3:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_status_reports_the_sharing_features(sharing_server: JupyterServer) -> None:
    features = sharing_server.status()["features"]
    assert features["publish"] is True
    assert features["clone_s3"] is True
    assert features["clone_fs"] is True


def test_publishing_copies_to_the_published_prefix_and_replaces_it(
    sharing_server: JupyterServer,
) -> None:
    server = sharing_server
    first = server.api(
        "PUT",
        "/api/bookstore/publish/shared.ipynb",
        json={"type": "notebook", "content": notebook("one")},
    )
    server.save("shared.ipynb", notebook("two"))
    second = server.api("PUT", "/api/bookstore/publish/shared.ipynb")
    bad = server.api("PUT", "/api/bookstore/publish/x.ipynb", json={"type": "file", "content": "x"})
    assert first.status_code == 200, first.text
    assert second.json()["store_key"] == "published/shared.ipynb"
    published = server.store_dir / "data" / "published" / "shared.ipynb"
    assert published.read_bytes() == (server.root / "shared.ipynb").read_bytes()
    assert bad.status_code == 400


def test_cloning_from_an_allowed_bucket_never_overwrites(
    sharing_server: JupyterServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    server = sharing_server
    put_object(moto_server, s3_bucket, "course/intro.ipynb", json.dumps(notebook("intro")).encode())
    request = {"s3_bucket": s3_bucket, "s3_key": "course/intro.ipynb"}
    first = server.api("POST", "/api/bookstore/clone", json=request)
    second = server.api("POST", "/api/bookstore/clone", json=request)
    assert (first.status_code, first.json()["path"]) == (201, "intro.ipynb")
    assert second.json()["path"] == "intro-1.ipynb"
    cloned = json.loads((server.root / "intro-1.ipynb").read_text())
    assert "".join(cloned["cells"][0]["source"]) == "print('intro', 0)"
    server.wait_archived()
    listed = server.api("GET", "/api/bookstore/versions/intro.ipynb").json()
    assert listed["total"] == 1


def test_cloning_is_refused_outside_the_allowlist_and_for_invalid_notebooks(
    sharing_server: JupyterServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    server = sharing_server
    other = f"{s3_bucket}-other"
    moto_server.make_bucket(other)
    put_object(moto_server, other, "secret.ipynb", json.dumps(notebook("secret")).encode())
    put_object(moto_server, s3_bucket, "broken.ipynb", b"{not json")
    denied = server.api(
        "POST", "/api/bookstore/clone", json={"s3_bucket": other, "s3_key": "secret.ipynb"}
    )
    broken = server.api(
        "POST", "/api/bookstore/clone", json={"s3_bucket": s3_bucket, "s3_key": "broken.ipynb"}
    )
    assert denied.status_code == 403
    assert "clone_s3_buckets" in denied.json()["message"]
    assert broken.status_code == 422
    assert "not a valid notebook" in broken.json()["message"]
    assert sorted(p.name for p in server.root.iterdir()) == []


def test_cloning_from_the_directory_stays_inside_it(sharing_server: JupyterServer) -> None:
    server = sharing_server
    cloned = server.api("POST", "/api/bookstore/fs-clone", json={"relpath": "course/lesson.ipynb"})
    escape = server.api("POST", "/api/bookstore/fs-clone", json={"relpath": "../server/config/x"})
    assert cloned.status_code == 201
    assert (server.root / "lesson.ipynb").is_file()
    assert escape.status_code == 400


def test_the_landing_page_asks_before_cloning_and_escapes_the_link(
    sharing_server: JupyterServer, s3_bucket: str
) -> None:
    key = "<script>alert(1)</script>.ipynb"
    page = sharing_server.api(
        "GET", "/bookstore/clone", params={"s3_bucket": s3_bucket, "s3_key": key}
    )
    missing = sharing_server.api("GET", "/bookstore/clone", params={"s3_bucket": s3_bucket})
    assert page.status_code == 200
    assert "Clone and open" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert list(sharing_server.root.iterdir()) == []
    assert missing.status_code == 400


def test_sharing_features_are_off_unless_configured(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        features = server.status()["features"]
        clone = server.api("POST", "/api/bookstore/clone", json={"s3_bucket": "b", "s3_key": "k"})
        fs_clone = server.api("POST", "/api/bookstore/fs-clone", json={"relpath": "x.ipynb"})
    assert (features["clone_s3"], features["clone_fs"]) == (False, False)
    assert clone.status_code == 404
    assert fs_clone.status_code == 404
