"""A real jupyter server with bookstore, driven over HTTP, archiving to the local store."""

from __future__ import annotations

import base64
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import bookstore
from tests.support.archives import index_rows, stored_objects
from tests.support.jupyter_process import JupyterServer, notebook


def test_with_no_configuration_saves_land_in_the_local_store_and_index(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("Untitled.ipynb", notebook("hello"))
        status = server.wait_archived()
        saved = (server.root / "Untitled.ipynb").read_bytes()

    assert status["features"]["storage"] == "local"
    [(path, version, key, size, _)] = index_rows(server)
    assert (path, version, size) == ("Untitled.ipynb", 1, len(saved))
    assert key.startswith("workspace/Untitled.ipynb/@")
    assert stored_objects(server) == {key: saved}
    metadata = json.loads((server.store_dir / "meta" / f"{key}.json").read_text())
    assert metadata["bookstore-path"] == "Untitled.ipynb"


def test_200_saves_over_20_notebooks_from_8_clients_lose_nothing(tmp_path: Path) -> None:
    paths = [f"project {n // 5}/notebook-{n}.ipynb" for n in range(20)]
    with JupyterServer(tmp_path) as server:
        for directory in {p.rsplit("/", 1)[0] for p in paths}:
            server.mkdir(directory)

        def save_ten_versions(path: str) -> None:
            for version in range(10):
                server.save(path, notebook(f"{path} v{version}"))

        with ThreadPoolExecutor(8) as clients:
            list(clients.map(save_ten_versions, paths))
        server.wait_archived()

    rows = index_rows(server)
    assert len(rows) == 200
    assert Counter(path for path, *_ in rows) == dict.fromkeys(paths, 10)
    for path in paths:
        assert [v for p, v, *_ in rows if p == path] == list(range(1, 11))
    objects = stored_objects(server)
    assert sorted(objects) == sorted(key for _, _, key, _, _ in rows)
    for path, version, key, _, _ in rows:
        source = "".join(json.loads(objects[key])["cells"][0]["source"])
        assert source == f"print('{path} v{version - 1}', 0)"


def test_saving_unchanged_content_makes_no_new_version(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("same.ipynb", notebook("one"))
        server.save("same.ipynb", notebook("one"))
        server.save("same.ipynb", notebook("two"))
        server.save("same.ipynb", notebook("two"))
        server.wait_archived()
    assert [version for _, version, *_ in index_rows(server)] == [1, 2]
    assert len(stored_objects(server)) == 2


def test_outbox_is_empty_once_archived_and_restart_keeps_history(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("first"))
        server.wait_archived()
    assert list(server.outbox_dir.glob("*.save")) == []
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("second"))
        server.wait_archived()
    assert [version for _, version, *_ in index_rows(server)] == [1, 2]


def test_files_are_not_archived_unless_configured(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("notes.txt", "plain text", kind="file")
        server.save("a.ipynb", notebook("x"))
        server.wait_archived()
    assert [path for path, *_ in index_rows(server)] == ["a.ipynb"]

    with JupyterServer(tmp_path, env={"BOOKSTORE_ARCHIVE_TYPES": "notebook,file"}) as server:
        server.save("notes.txt", "plain text, archived", kind="file")
        server.wait_archived()
    assert "notes.txt" in [path for path, *_ in index_rows(server)]
    assert b"plain text, archived" in stored_objects(server).values()


def test_a_bad_setting_stops_the_server_with_a_sentence_naming_it(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path, env={"BOOKSTORE_STORAGE": "s3"})
    with pytest.raises(AssertionError, match="exited early") as failure:
        server.start()
    assert "BookstoreSettings.s3_bucket (BOOKSTORE_S3_BUCKET) must name a bucket" in str(
        failure.value
    )


def test_an_invalid_notebook_is_saved_and_archived_as_written(tmp_path: Path) -> None:
    invalid = notebook("broken")
    invalid["cells"][0]["cell_type"] = "no such cell type"
    with JupyterServer(tmp_path) as server:
        saved = server.save("broken.ipynb", invalid)
        server.wait_archived()
        on_disk = (server.root / "broken.ipynb").read_bytes()
    assert "Notebook validation failed" in saved["message"]
    assert stored_objects(server) == {index_rows(server)[0][2]: on_disk}


def test_the_status_endpoint_needs_authentication(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        anonymous = requests.get(f"{server.url}/api/bookstore", timeout=10)
        assert anonymous.status_code == 403
        status = server.wait_archived()
    assert status["release"] == bookstore.__version__
    assert status["archive"] == {
        "workspace": "workspace",
        "ready": True,
        "backlog": 0,
        "archived": 0,
        "last_error": None,
    }


def test_the_original_contents_manager_class_name_still_works(tmp_path: Path) -> None:
    manager = "--ServerApp.contents_manager_class=bookstore.BookstoreContentsArchiver"
    with JupyterServer(tmp_path, args=[manager]) as server:
        server.save("a.ipynb", notebook("original"))
        status = server.wait_archived()
    assert status["features"]["contents_manager"] == "BookstoreContentsArchiver"
    assert [path for path, *_ in index_rows(server)] == ["a.ipynb"]


def test_a_setting_of_the_wrong_type_stops_the_server_too(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path, env={"BOOKSTORE_ARCHIVE_CONCURRENCY": "many"})
    with pytest.raises(AssertionError, match="exited early") as failure:
        server.start()
    assert "BOOKSTORE_ARCHIVE_CONCURRENCY='many' is not a valid archive_concurrency" in str(
        failure.value
    )


def test_uploads_are_archived_whole_and_notebooks_uploaded_as_files_count(
    tmp_path: Path,
) -> None:
    payload = json.dumps(notebook("uploaded", cells=400)).encode()
    chunks = [payload[i : i + 20_000] for i in range(0, len(payload), 20_000)]
    with JupyterServer(tmp_path) as server:
        for number, chunk in enumerate(chunks, start=1):
            body = {
                "type": "file",
                "format": "base64",
                "content": base64.b64encode(chunk).decode(),
                "chunk": -1 if number == len(chunks) else number,
            }
            response = server.api("PUT", "/api/contents/uploaded.ipynb", json=body)
            assert response.status_code in (200, 201), response.text
        server.wait_archived()
    assert len(chunks) > 2
    assert list(stored_objects(server).values()) == [payload]
