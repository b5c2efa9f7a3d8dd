"""The REST history API on a jupyter server in the test process: list, fetch, restore and
diff versions."""

from __future__ import annotations

import hashlib
import json

from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import notebook


async def history(live: LiveServer, path: str, versions: int) -> list[bytes]:
    saved = []
    for n in range(versions):
        await live.save(path, notebook(f"{path} v{n + 1}", cells=n + 1))
        saved.append((live.root / path).read_bytes())
    await live.wait_archived()
    return saved


async def test_versions_are_listed_in_pages_oldest_first(live: LiveServer) -> None:
    await history(live, "paged.ipynb", 5)
    first = (await live.api("GET", "/api/bookstore/versions/paged.ipynb?limit=2")).json()
    second = (await live.api("GET", "/api/bookstore/versions/paged.ipynb?limit=2&offset=4")).json()
    bad = await live.api("GET", "/api/bookstore/versions/paged.ipynb?limit=-1")
    assert [v["version"] for v in first["versions"]] == [1, 2]
    assert (first["total"], first["next_offset"]) == (5, 2)
    assert [v["version"] for v in second["versions"]] == [5]
    assert second["next_offset"] is None
    assert bad.status_code == 400


async def test_a_versions_content_is_the_saved_bytes(live: LiveServer) -> None:
    saved = await history(live, "2.ipynb", 2)
    response = await live.api("GET", "/api/bookstore/content/1/2.ipynb")
    missing = await live.api("GET", "/api/bookstore/content/9/2.ipynb")
    assert response.status_code == 200
    assert response.content == saved[0]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Bookstore-Sha256"] == hashlib.sha256(saved[0]).hexdigest()
    assert missing.status_code == 404
    assert "no version 9" in missing.json()["message"]


async def test_restoring_archives_the_restored_state_and_refuses_to_clobber(
    live: LiveServer,
) -> None:
    saved = await history(live, "r.ipynb", 3)
    await live.save("other.ipynb", notebook("someone else's work"))
    restored = await live.api("POST", "/api/bookstore/restore/1/r.ipynb")
    refused = await live.api(
        "POST", "/api/bookstore/restore/2/r.ipynb", json={"target": "other.ipynb"}
    )
    copied = await live.api(
        "POST", "/api/bookstore/restore/2/r.ipynb", json={"target": "copy.ipynb"}
    )
    forced = await live.api(
        "POST",
        "/api/bookstore/restore/2/r.ipynb",
        json={"target": "other.ipynb", "overwrite": True},
    )
    await live.wait_archived()
    assert (live.root / "r.ipynb").read_bytes() == saved[0]
    assert (live.root / "copy.ipynb").read_bytes() == saved[1]
    assert (live.root / "other.ipynb").read_bytes() == saved[1]
    assert restored.status_code == 200, restored.text
    assert refused.status_code == 409
    assert copied.status_code == 200
    assert forced.json()["replaced"] is True
    rows = live.index_rows()
    assert [v for p, v, *_ in rows if p == "r.ipynb"] == [1, 2, 3, 4]
    assert [v for p, v, *_ in rows if p == "other.ipynb"] == [1, 2]


async def test_restoring_over_unarchived_edits_archives_them_first(live: LiveServer) -> None:
    await history(live, "e.ipynb", 2)
    edited = notebook("edited outside jupyter")
    (live.root / "e.ipynb").write_text(json.dumps(edited))
    assert (await live.api("POST", "/api/bookstore/restore/1/e.ipynb")).status_code == 200
    await live.wait_archived()
    listed = (await live.api("GET", "/api/bookstore/versions/e.ipynb")).json()["versions"]
    kept = await live.api("GET", f"/api/bookstore/content/{listed[2]['version']}/e.ipynb")
    assert len(listed) == 4
    assert json.loads(kept.content)["cells"][0]["source"] == edited["cells"][0]["source"]


async def test_diff_between_versions_and_against_the_file(live: LiveServer) -> None:
    await history(live, "d.ipynb", 3)
    between = (await live.api("GET", "/api/bookstore/diff/1/d.ipynb?to=3")).json()
    current = (await live.api("GET", "/api/bookstore/diff/3/d.ipynb")).json()
    assert between["summary"] == "2 cells added, 1 changed"
    assert between["cells"][0]["source_diff"][1:] == [
        "-print('d.ipynb v1', 0)",
        "+print('d.ipynb v3', 0)",
    ]
    assert current["summary"] == "no changes"


async def test_paths_that_escape_are_refused(live: LiveServer) -> None:
    await history(live, "a.ipynb", 1)
    for path in ("%2e%2e/a.ipynb", "a%00b.ipynb", "x/%2E%2E/%2E%2E/a.ipynb"):
        response = await live.api("GET", f"/api/bookstore/versions/{path}")
        assert response.status_code in (400, 404), (path, response.status_code)
    escape = await live.api(
        "POST", "/api/bookstore/restore/1/a.ipynb", json={"target": "../x.ipynb"}
    )
    assert escape.status_code == 400
    assert not (live.root.parent / "x.ipynb").exists()
