"""Archived versions as checkpoints, through the stock contents API a real server serves."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.archives import index_rows, s3_server
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer
from tests.support.tcp_proxy import TcpProxy

ID = re.compile(r"\A[\w-]+\Z")


def checkpoints(server: JupyterServer, path: str) -> list[dict[str, str]]:
    response = server.api("GET", f"/api/contents/{path}/checkpoints")
    assert response.status_code == 200, response.text
    return list(response.json())


def test_versions_are_listed_oldest_first_and_restoring_one_archives_it_again(
    tmp_path: Path,
) -> None:
    with JupyterServer(tmp_path) as server:
        saved = []
        for text in ("first", "second", "third"):
            server.save("history.ipynb", notebook(text))
            saved.append((server.root / "history.ipynb").read_bytes())
        server.wait_archived()

        listed = checkpoints(server, "history.ipynb")
        assert [item["id"] for item in listed] == ["1", "2", "3"]
        assert all(ID.match(item["id"]) for item in listed)
        assert [item["last_modified"] for item in listed] == sorted(
            item["last_modified"] for item in listed
        )

        restored = server.api("POST", "/api/contents/history.ipynb/checkpoints/1")
        assert restored.status_code == 204, restored.text
        assert (server.root / "history.ipynb").read_bytes() == saved[0]
        server.wait_archived()
        assert [item["id"] for item in checkpoints(server, "history.ipynb")] == ["1", "2", "3", "4"]
    rows = index_rows(server)
    assert rows[3][4] == rows[0][4]  # version 4 holds version 1's bytes


def test_creating_a_checkpoint_of_archived_content_adds_no_version(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("only"))
        server.wait_archived()
        created = server.api("POST", "/api/contents/a.ipynb/checkpoints")
        assert created.status_code == 201, created.text
        assert created.json()["id"] == "1"
        server.wait_archived()
    assert len(index_rows(server)) == 1


def test_deleting_a_notebook_keeps_its_history_and_checkpoints_cannot_be_deleted(
    tmp_path: Path,
) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("gone.ipynb", notebook("v1"))
        server.save("gone.ipynb", notebook("v2"))
        server.wait_archived()
        refused = server.api("DELETE", "/api/contents/gone.ipynb/checkpoints/1")
        assert refused.status_code == 403
        assert "bookstore-history prune" in refused.json()["message"]
        assert server.api("DELETE", "/api/contents/gone.ipynb").status_code == 204
        assert [item["id"] for item in checkpoints(server, "gone.ipynb")] == ["1", "2"]
    assert len(index_rows(server)) == 2


def test_saves_waiting_for_s3_are_listed_and_can_be_restored(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    with s3_server(tmp_path, s3_bucket, s3_proxy) as server:
        server.save("wait.ipynb", notebook("archived"))
        server.wait_archived()
        s3_proxy.set_mode("refuse")
        server.save("wait.ipynb", notebook("waiting"))
        waiting = (server.root / "wait.ipynb").read_bytes()
        server.save("wait.ipynb", notebook("newest"))

        listed = [item["id"] for item in checkpoints(server, "wait.ipynb")]
        assert listed[0] == "1"
        assert len(listed) == 3
        assert all(ID.match(i) and i.startswith("pending-") for i in listed[1:])

        restored = server.api("POST", f"/api/contents/wait.ipynb/checkpoints/{listed[1]}")
        assert restored.status_code == 204, restored.text
        assert (server.root / "wait.ipynb").read_bytes() == waiting

        s3_proxy.set_mode("forward")
        server.wait_archived(timeout=60)
        assert [item["id"] for item in checkpoints(server, "wait.ipynb")] == ["1", "2", "3", "4"]


def test_an_unknown_checkpoint_is_a_404(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        server.save("a.ipynb", notebook("x"))
        server.wait_archived()
        assert server.api("POST", "/api/contents/a.ipynb/checkpoints/99").status_code == 404
        assert server.api("POST", "/api/contents/a.ipynb/checkpoints/pending-x").status_code == 404
