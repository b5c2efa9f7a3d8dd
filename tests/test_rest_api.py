"""The REST history API on a real server: list, fetch, restore and diff versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.archives import index_rows
from tests.support.jupyter_process import JupyterServer, notebook


def history(server: JupyterServer, path: str, versions: int) -> list[bytes]:
    saved = []
    for n in range(versions):
        server.save(path, notebook(f"{path} v{n + 1}", cells=n + 1))
        saved.append((server.root / path).read_bytes())
    server.wait_archived()
    return saved


def test_versions_are_listed_in_pages_oldest_first(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        history(server, "paged.ipynb", 5)
        first = server.api("GET", "/api/bookstore/versions/paged.ipynb?limit=2").json()
        second = server.api("GET", "/api/bookstore/versions/paged.ipynb?limit=2&offset=4").json()
        bad = server.api("GET", "/api/bookstore/versions/paged.ipynb?limit=-1")
    assert [v["version"] for v in first["versions"]] == [1, 2]
    assert (first["total"], first["next_offset"]) == (5, 2)
    assert [v["version"] for v in second["versions"]] == [5]
    assert second["next_offset"] is None
    assert bad.status_code == 400


def test_a_versions_content_is_the_saved_bytes(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        saved = history(server, "2.ipynb", 2)
        response = server.api("GET", "/api/bookstore/content/1/2.ipynb")
        missing = server.api("GET", "/api/bookstore/content/9/2.ipynb")
    assert response.status_code == 200
    assert response.content == saved[0]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Bookstore-Sha256"] == hashlib.sha256(saved[0]).hexdigest()
    assert missing.status_code == 404
    assert "no version 9" in missing.json()["message"]


def test_restoring_archives_the_restored_state_and_refuses_to_clobber(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        saved = history(server, "r.ipynb", 3)
        server.save("other.ipynb", notebook("someone else's work"))
        restored = server.api("POST", "/api/bookstore/restore/1/r.ipynb")
        refused = server.api(
            "POST", "/api/bookstore/restore/2/r.ipynb", json={"target": "other.ipynb"}
        )
        copied = server.api(
            "POST", "/api/bookstore/restore/2/r.ipynb", json={"target": "copy.ipynb"}
        )
        forced = server.api(
            "POST",
            "/api/bookstore/restore/2/r.ipynb",
            json={"target": "other.ipynb", "overwrite": True},
        )
        server.wait_archived()
        assert (server.root / "r.ipynb").read_bytes() == saved[0]
        assert (server.root / "copy.ipynb").read_bytes() == saved[1]
        assert (server.root / "other.ipynb").read_bytes() == saved[1]
    assert restored.status_code == 200, restored.text
    assert refused.status_code == 409
    assert copied.status_code == 200
    assert forced.json()["replaced"] is True
    rows = index_rows(server)
    assert [v for p, v, *_ in rows if p == "r.ipynb"] == [1, 2, 3, 4]
    assert [v for p, v, *_ in rows if p == "other.ipynb"] == [1, 2]


def test_restoring_over_unarchived_edits_archives_them_first(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        history(server, "e.ipynb", 2)
        edited = notebook("edited outside jupyter")
        (server.root / "e.ipynb").write_text(json.dumps(edited))
        assert server.api("POST", "/api/bookstore/restore/1/e.ipynb").status_code == 200
        server.wait_archived()
        listed = server.api("GET", "/api/bookstore/versions/e.ipynb").json()["versions"]
        kept = server.api("GET", f"/api/bookstore/content/{listed[2]['version']}/e.ipynb")
    assert len(listed) == 4
    assert json.loads(kept.content)["cells"][0]["source"] == edited["cells"][0]["source"]


def test_diff_between_versions_and_against_the_file(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        history(server, "d.ipynb", 3)
        between = server.api("GET", "/api/bookstore/diff/1/d.ipynb?to=3").json()
        current = server.api("GET", "/api/bookstore/diff/3/d.ipynb").json()
    assert between["summary"] == "2 cells added, 1 changed"
    assert between["cells"][0]["source_diff"][1:] == [
        "-print('d.ipynb v1', 0)",
        "+print('d.ipynb v3', 0)",
    ]
    assert current["summary"] == "no changes"


def test_paths_that_escape_are_refused(tmp_path: Path) -> None:
    with JupyterServer(tmp_path) as server:
        history(server, "a.ipynb", 1)
        for path in ("%2e%2e/a.ipynb", "a%00b.ipynb", "x/%2E%2E/%2E%2E/a.ipynb"):
            response = server.api("GET", f"/api/bookstore/versions/{path}")
            assert response.status_code in (400, 404), (path, response.status_code)
        escape = server.api(
            "POST", "/api/bookstore/restore/1/a.ipynb", json={"target": "../x.ipynb"}
        )
    assert escape.status_code == 400
    assert not (tmp_path / "x.ipynb").exists()
