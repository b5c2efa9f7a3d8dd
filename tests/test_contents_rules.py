"""The contents API's rules hold on every bookstore endpoint: hidden files stay hidden
(unless ``ContentsManager.allow_hidden``), only the types in ``archive_types`` have
a history, and a refused request writes nothing.

The real-process tests replay the issue's cases against one server whose archive
already holds versions of a hidden file and of a Python file: an earlier
configuration (``allow_hidden`` on, ``archive_types`` with ``file``) archived them.
The in-process tests go through every endpoint and landing page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import LiveServer
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import (
    MotoServer,
    clone_config,
)

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"


# -- the cases, on a real server ---------------------------------------------


@pytest.fixture(scope="module")
def clone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clone-source")
    (directory / "lesson.ipynb").write_text(json.dumps(notebook("lesson")))
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clone_dir: Path) -> Iterator[JupyterServer]:
    """Defaults (hidden files refused, only notebooks archived) over an archive that an
    earlier, laxer configuration filled with ``.ssh/id_rsa`` and ``notes.py``."""
    base = tmp_path_factory.mktemp("contents-rules")
    lax = JupyterServer(
        base,
        env={"BOOKSTORE_ARCHIVE_TYPES": "notebook,file"},
        args=["--ContentsManager.allow_hidden=True"],
    )
    with lax:
        lax.mkdir(".ssh")
        lax.save(".ssh/id_rsa", KEY, kind="file")
        lax.save("notes.py", "print('notes')\n", kind="file")
        lax.save("nb.ipynb", notebook("nb"))
        lax.wait_archived()
    with JupyterServer(base, env={"BOOKSTORE_FS_CLONE_DIR": str(clone_dir)}) as strict:
        strict.wait_archived()
        yield strict


def files_in(server: JupyterServer) -> set[str]:
    return {str(path.relative_to(server.root)) for path in server.root.rglob("*")}


@pytest.mark.e2e
def test_a_hidden_files_history_is_as_hidden_as_the_file(server: JupyterServer) -> None:
    assert server.api("GET", "/api/contents/.ssh/id_rsa").status_code == 404
    before = files_in(server)
    answers = {
        "content": server.api("GET", "/api/bookstore/content/1/.ssh/id_rsa"),
        "versions": server.api("GET", "/api/bookstore/versions/.ssh/id_rsa"),
        "diff": server.api("GET", "/api/bookstore/diff/1/.ssh/id_rsa"),
        "restore": server.api(
            "POST", "/api/bookstore/restore/1/.ssh/id_rsa", json={"target": "stolen.txt"}
        ),
    }
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 404)
    assert not any("PRIVATE KEY" in answer.text for answer in answers.values())
    assert files_in(server) == before


@pytest.mark.e2e
def test_a_type_that_is_not_archived_has_no_history(server: JupyterServer) -> None:
    content = server.api("GET", "/api/bookstore/content/1/notes.py")
    versions = server.api("GET", "/api/bookstore/versions/notes.py")
    assert (content.status_code, versions.status_code) == (404, 404)
    assert "archive_types" in content.json()["message"]
    assert "print('notes')" not in content.text


@pytest.mark.e2e
def test_a_hidden_file_is_not_published(server: JupyterServer) -> None:
    (server.root / ".env").write_text("PASSWORD=hunter2\n")
    response = server.api("PUT", "/api/bookstore/publish/.env")
    assert response.status_code == 404, response.text
    assert "hunter2" not in response.text
    assert not (server.store_dir / "data" / "published").exists()


@pytest.mark.e2e
def test_a_clone_refused_for_a_hidden_target_writes_nothing(server: JupyterServer) -> None:
    before = files_in(server)
    response = server.api(
        "POST",
        "/api/bookstore/fs-clone",
        json={"relpath": "lesson.ipynb", "target_path": ".hidden.ipynb"},
    )
    assert response.status_code == 400, response.text
    assert files_in(server) == before


@pytest.mark.e2e
def test_a_restore_onto_a_type_that_is_not_archived_writes_nothing(
    server: JupyterServer,
) -> None:
    before = files_in(server)
    response = server.api(
        "POST", "/api/bookstore/restore/1/nb.ipynb", json={"target": "nb-as-text.txt"}
    )
    assert response.status_code == 400, response.text
    assert "archive_types" in response.json()["message"]
    assert files_in(server) == before


# -- every endpoint and landing page, in process ---------------------------------------

HIDDEN_OR_NOT_ARCHIVED = [".hidden.ipynb", ".config/nb.ipynb", "notes.py"]
"""Paths with versions in the archive that the default settings do not show."""


@pytest.fixture
def bookstore_config(moto_server: MotoServer, s3_bucket: str, tmp_path: Path) -> dict[str, Any]:
    """Default rules; clones allowed from ``s3_bucket`` and from a directory, each holding
    ``lesson.ipynb`` (and the directory ``.private/lesson.ipynb`` too)."""
    clone_source = tmp_path / "clone-source"
    (clone_source / ".private").mkdir(parents=True)
    for name in ("lesson.ipynb", ".private/lesson.ipynb"):
        (clone_source / name).write_text(json.dumps(notebook(name)))
    with moto_server.client() as s3:
        s3.put_object(Bucket=s3_bucket, Key="lesson.ipynb", Body=json.dumps(notebook("s3")))
    return clone_config(s3_bucket, moto_server.endpoint_url, clone_source)


async def archive_behind_the_rules(live: LiveServer, *paths: str) -> None:
    """Versions of ``paths`` in the archive, as an earlier configuration could leave them."""
    for path in (*paths, "nb.ipynb"):
        content = json.dumps(notebook(path)).encode() if path.endswith(".ipynb") else b"x = 1\n"
        live.services.hooks.capture(path, None, content)
    await live.wait_archived()


def tree(live: LiveServer) -> set[str]:
    """Every file under the root, and every object in the store."""
    files = {str(path.relative_to(live.root)) for path in live.root.rglob("*")}
    return files | {f"store:{key}" for key in live.stored_objects()}


async def answers(live: LiveServer, requests: dict[str, tuple[str, str, Any]]) -> dict[str, int]:
    statuses = {}
    for name, (method, url, body) in requests.items():
        statuses[name] = (await live.api(method, url, body)).status_code
    return statuses


def reads_of(path: str) -> dict[str, tuple[str, str, Any]]:
    """Every request that reads ``path`` or its history."""
    model = {"type": "notebook", "content": notebook("published")}
    return {
        f"versions {path}": ("GET", f"api/bookstore/versions/{path}", None),
        f"content {path}": ("GET", f"api/bookstore/content/1/{path}", None),
        f"diff {path}": ("GET", f"api/bookstore/diff/1/{path}?to=1", None),
        f"diff-now {path}": ("GET", f"api/bookstore/diff/1/{path}", None),
        f"restore {path}": ("POST", f"api/bookstore/restore/1/{path}", {"target": "r.ipynb"}),
        f"publish {path}": ("PUT", f"api/bookstore/publish/{path}", None),
        f"publish-body {path}": ("PUT", f"api/bookstore/publish/{path}", model),
    }


def writes_to(target: str, bucket: str) -> dict[str, tuple[str, str, Any]]:
    """Every request that writes ``target``."""
    return {
        f"restore to {target}": (
            "POST",
            "api/bookstore/restore/1/nb.ipynb",
            {"target": target, "overwrite": True},
        ),
        f"clone to {target}": (
            "POST",
            "api/bookstore/clone",
            {"s3_bucket": bucket, "s3_key": "lesson.ipynb", "target_path": target},
        ),
        f"fs-clone to {target}": (
            "POST",
            "api/bookstore/fs-clone",
            {"relpath": "lesson.ipynb", "target_path": target},
        ),
    }


async def test_every_endpoint_refuses_what_the_contents_api_hides_or_bookstore_does_not_archive(
    live: LiveServer, s3_bucket: str
) -> None:
    await archive_behind_the_rules(live, *HIDDEN_OR_NOT_ARCHIVED)
    (live.root / ".config").mkdir()
    (live.root / ".hidden.ipynb").write_text(json.dumps(notebook("on disk")))
    (live.root / "notes.py").write_text("x = 2\n")
    before = tree(live)
    reads = {name: r for path in HIDDEN_OR_NOT_ARCHIVED for name, r in reads_of(path).items()}
    writes = {
        name: w
        for target in (".hidden.ipynb", ".config/copy.ipynb", "copy.py")
        for name, w in writes_to(target, s3_bucket).items()
    }
    sources = {
        "clone named by its key": (
            "POST",
            "api/bookstore/clone",
            {"s3_bucket": s3_bucket, "s3_key": "course/.lesson.ipynb"},
        ),
        "fs-clone from a hidden folder": (
            "POST",
            "api/bookstore/fs-clone",
            {"relpath": ".private/lesson.ipynb", "target_path": "visible.ipynb"},
        ),
    }
    assert await answers(live, reads) == dict.fromkeys(reads, 404)
    assert await answers(live, writes) == dict.fromkeys(writes, 400)
    assert await answers(live, sources) == {
        "clone named by its key": 400,
        "fs-clone from a hidden folder": 404,
    }
    assert tree(live) == before


async def test_the_list_of_archived_paths_leaves_out_what_the_contents_api_hides(
    live: LiveServer,
) -> None:
    await archive_behind_the_rules(live, *HIDDEN_OR_NOT_ARCHIVED)
    listed = (await live.api("GET", "api/bookstore/paths")).json()["paths"]
    assert [item["path"] for item in listed] == ["nb.ipynb"]

    live.contents_manager.allow_hidden = True
    listed = (await live.api("GET", "api/bookstore/paths")).json()["paths"]
    assert sorted(item["path"] for item in listed) == [
        ".config/nb.ipynb",
        ".hidden.ipynb",
        "nb.ipynb",
    ]


async def test_what_is_refused_says_why_in_words(live: LiveServer) -> None:
    await archive_behind_the_rules(live, ".hidden.ipynb", "notes.py")
    hidden = await live.api("GET", "api/bookstore/content/1/.hidden.ipynb")
    not_archived = await live.api("GET", "api/bookstore/content/1/notes.py")
    hidden_target = await live.api(
        "POST", "api/bookstore/restore/1/nb.ipynb", {"target": ".copy.ipynb"}
    )
    text_target = await live.api("POST", "api/bookstore/restore/1/nb.ipynb", {"target": "copy.txt"})
    contents_api = await live.api("GET", "api/contents/.hidden.ipynb")
    assert contents_api.text == "file or directory '/.hidden.ipynb' does not exist"
    assert hidden.json()["message"] == "file or directory '.hidden.ipynb' does not exist"
    assert not_archived.json()["message"] == (
        "notes.py has no history: c.BookstoreSettings.archive_types is ['notebook'], "
        "so its saves are not archived"
    )
    assert hidden_target.json()["message"] == (
        ".copy.ipynb is hidden; the server does not write hidden files"
    )
    assert text_target.json()["message"] == (
        "bookstore does not write copy.txt: c.BookstoreSettings.archive_types is ['notebook'], "
        "so its saves are not archived"
    )


async def test_landing_pages_refuse_a_clone_the_api_would_refuse(
    live: LiveServer, s3_bucket: str
) -> None:
    pages = {
        "hidden key": f"bookstore/clone?s3_bucket={s3_bucket}&s3_key=course/.x.ipynb",
        "key not archived": f"bookstore/clone?s3_bucket={s3_bucket}&s3_key=x.py",
        "hidden relpath": "bookstore/fs-clone?relpath=.lesson.ipynb",
        "hidden folder": "bookstore/fs-clone?relpath=.private/lesson.ipynb",
        "relpath not archived": "bookstore/fs-clone?relpath=lesson.py",
        "allowed": "bookstore/fs-clone?relpath=lesson.ipynb",
    }
    statuses = {name: (await live.api("GET", url)).status_code for name, url in pages.items()}
    assert statuses == {
        "hidden key": 400,
        "key not archived": 400,
        "hidden relpath": 400,
        "hidden folder": 404,
        "relpath not archived": 400,
        "allowed": 200,
    }


@pytest.mark.parametrize("bookstore_config", [{"archive_types": ["notebook", "file"]}])
async def test_archived_files_have_a_history(live: LiveServer) -> None:
    await archive_behind_the_rules(live, "notes.py")
    content = await live.api("GET", "api/bookstore/content/1/notes.py")
    restored = await live.api(
        "POST", "api/bookstore/restore/1/notes.py", {"target": "notes-copy.py"}
    )
    assert (content.status_code, content.content) == (200, b"x = 1\n")
    assert restored.status_code == 200, restored.text
    assert (live.root / "notes-copy.py").read_bytes() == b"x = 1\n"


async def test_with_allow_hidden_hidden_files_are_served_and_written(live: LiveServer) -> None:
    live.contents_manager.allow_hidden = True
    await archive_behind_the_rules(live, ".hidden.ipynb")
    content = await live.api("GET", "api/bookstore/content/1/.hidden.ipynb")
    cloned = await live.api(
        "POST",
        "api/bookstore/fs-clone",
        {"relpath": ".private/lesson.ipynb", "target_path": ".config.ipynb"},
    )
    page = await live.api("GET", "bookstore/fs-clone?relpath=.private/lesson.ipynb")
    assert content.status_code == 200
    assert (cloned.status_code, cloned.json()["path"]) == (201, ".config.ipynb")
    assert (live.root / ".config.ipynb").is_file()
    assert page.status_code == 200
