"""A jupyter server with bookstore, driven over HTTP, archiving to the local store.

The server runs in the test process (the ``live`` fixture); the tests marked ``e2e``
start a real ``jupyter server`` process: a restart, settings that stop it at start,
an option on its command line, and one full round trip with no configuration.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import bookstore
from tests.support import archives
from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook


async def test_with_no_configuration_saves_land_in_the_local_store_and_index(
    live: LiveServer,
) -> None:
    await live.save("Untitled.ipynb", notebook("hello"))
    status = await live.wait_archived()
    saved = (live.root / "Untitled.ipynb").read_bytes()

    assert status["features"]["storage"] == "local"
    [(path, version, key, size, _)] = live.index_rows()
    assert (path, version, size) == ("Untitled.ipynb", 1, len(saved))
    # Kept by the file's absolute path: no other folder's Untitled.ipynb shares it.
    absolute = (live.root / "Untitled.ipynb").resolve().as_posix()
    assert key.startswith(f"files{absolute}/@")
    assert live.stored_objects() == {key: saved}
    metadata = json.loads((live.store_dir / "meta" / f"{key}.json").read_text())
    assert metadata["bookstore-path"] == absolute.lstrip("/")


async def test_200_saves_over_20_notebooks_from_8_clients_lose_nothing(live: LiveServer) -> None:
    paths = [f"project {n // 5}/notebook-{n}.ipynb" for n in range(20)]
    for directory in {p.rsplit("/", 1)[0] for p in paths}:
        await live.mkdir(directory)

    clients = asyncio.Semaphore(8)

    async def save_ten_versions(path: str) -> None:
        async with clients:
            for version in range(10):
                await live.save(path, notebook(f"{path} v{version}"))

    await asyncio.gather(*(save_ten_versions(path) for path in paths))
    await live.wait_archived()

    rows = live.index_rows()
    assert len(rows) == 200
    assert Counter(path for path, *_ in rows) == dict.fromkeys(paths, 10)
    for path in paths:
        assert [v for p, v, *_ in rows if p == path] == list(range(1, 11))
    objects = live.stored_objects()
    assert sorted(objects) == sorted(key for _, _, key, _, _ in rows)
    for path, version, key, _, _ in rows:
        source = "".join(json.loads(objects[key])["cells"][0]["source"])
        assert source == f"print('{path} v{version - 1}', 0)"


async def test_saving_unchanged_content_makes_no_new_version(live: LiveServer) -> None:
    await live.save("same.ipynb", notebook("one"))
    await live.save("same.ipynb", notebook("one"))
    await live.save("same.ipynb", notebook("two"))
    await live.save("same.ipynb", notebook("two"))
    await live.wait_archived()
    assert [version for _, version, *_ in live.index_rows()] == [1, 2]
    assert len(live.stored_objects()) == 2


@pytest.mark.parametrize(
    ("bookstore_config", "archived"),
    [
        pytest.param({}, ["a.ipynb"], id="default"),
        pytest.param(
            {"archive_types": ["notebook", "file"]}, ["a.ipynb", "notes.txt"], id="configured"
        ),
    ],
)
async def test_files_are_not_archived_unless_configured(
    live: LiveServer, bookstore_config: dict[str, Any], archived: list[str]
) -> None:
    await live.save("notes.txt", "plain text, archived if configured", kind="file")
    await live.save("a.ipynb", notebook("x"))
    await live.wait_archived()
    assert [path for path, *_ in live.index_rows()] == archived
    stored = b"plain text, archived if configured" in live.stored_objects().values()
    assert stored is ("notes.txt" in archived)


async def test_an_invalid_notebook_is_saved_and_archived_as_written(live: LiveServer) -> None:
    invalid = notebook("broken")
    invalid["cells"][0]["cell_type"] = "no such cell type"
    saved = await live.save("broken.ipynb", invalid)
    await live.wait_archived()
    on_disk = (live.root / "broken.ipynb").read_bytes()
    assert "Notebook validation failed" in saved["message"]
    assert live.stored_objects() == {live.index_rows()[0][2]: on_disk}


async def test_the_status_endpoint_needs_authentication(live: LiveServer) -> None:
    anonymous = await live.api("GET", "/api/bookstore", anonymous=True)
    assert anonymous.status_code == 403
    status = await live.wait_archived()
    assert status["release"] == bookstore.__version__
    assert status["archive"] == {
        "workspace": "files",
        "ready": True,
        "backlog": 0,
        "archived": 0,
        "last_error": None,
        "outbox": {"bytes": 0, "max_bytes": 1 << 30, "not_kept": 0, "warning": None},
        "set_aside": {"count": 0, "latest": []},
        "thinning": None,  # off unless retention is set
    }


async def test_uploads_are_archived_whole_and_notebooks_uploaded_as_files_count(
    live: LiveServer,
) -> None:
    payload = json.dumps(notebook("uploaded", cells=400)).encode()
    chunks = [payload[i : i + 20_000] for i in range(0, len(payload), 20_000)]
    for number, chunk in enumerate(chunks, start=1):
        body = {
            "type": "file",
            "format": "base64",
            "content": base64.b64encode(chunk).decode(),
            "chunk": -1 if number == len(chunks) else number,
        }
        response = await live.api("PUT", "/api/contents/uploaded.ipynb", json=body)
        assert response.status_code in (200, 201), response.text
    await live.wait_archived()
    assert len(chunks) > 2
    assert list(live.stored_objects().values()) == [payload]


# -- a real jupyter server process ---------------------------------------------------


@pytest.mark.e2e
def test_a_real_server_with_no_configuration_archives_to_the_local_store_and_index(
    tmp_path: Path,
) -> None:
    """The round trip the in-process tests above stand in for, in a real process."""
    with JupyterServer(tmp_path) as server:
        server.save("Untitled.ipynb", notebook("hello"))
        status = server.wait_archived()
        saved = (server.root / "Untitled.ipynb").read_bytes()

    assert status["features"]["storage"] == "local"
    [(path, version, key, size, _)] = archives.index_rows(server)
    assert (path, version, size) == ("Untitled.ipynb", 1, len(saved))
    absolute = (server.root / "Untitled.ipynb").resolve().as_posix()
    assert key.startswith(f"files{absolute}/@")
    assert archives.stored_objects(server) == {key: saved}
    metadata = json.loads((server.store_dir / "meta" / f"{key}.json").read_text())
    assert metadata["bookstore-path"] == absolute.lstrip("/")


@pytest.mark.e2e
def test_outbox_is_empty_once_archived_and_restart_keeps_history(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("first"))
        server.wait_archived()
    assert list(server.outbox_dir.glob("*.save")) == []
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("second"))
        server.wait_archived()
    assert [version for _, version, *_ in archives.index_rows(server)] == [1, 2]


@pytest.mark.e2e
def test_a_bad_setting_stops_the_server_with_a_sentence_naming_it(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path, env={"BOOKSTORE_STORAGE": "s3"})
    with pytest.raises(AssertionError, match="exited early") as failure:
        server.start()
    assert "BookstoreSettings.s3_bucket (BOOKSTORE_S3_BUCKET) must name a bucket" in str(
        failure.value
    )


@pytest.mark.e2e
def test_the_original_contents_manager_class_name_still_works(tmp_path: Path) -> None:
    manager = "--ServerApp.contents_manager_class=bookstore.BookstoreContentsArchiver"
    with JupyterServer(tmp_path, args=[manager]) as server:
        server.save("a.ipynb", notebook("original"))
        status = server.wait_archived()
    assert status["features"]["contents_manager"] == "BookstoreContentsArchiver"
    assert [path for path, *_ in archives.index_rows(server)] == ["a.ipynb"]


@pytest.mark.e2e
def test_a_setting_of_the_wrong_type_stops_the_server_too(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path, env={"BOOKSTORE_ARCHIVE_CONCURRENCY": "many"})
    with pytest.raises(AssertionError, match="exited early") as failure:
        server.start()
    assert "BOOKSTORE_ARCHIVE_CONCURRENCY='many' is not a valid archive_concurrency" in str(
        failure.value
    )
