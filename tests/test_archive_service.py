"""The archive service behind a real JupyterHub: who may push and read, and what they reach.

One stack for the module: a moto S3 server, a SQLite index, a ``bookstore-service``
replica and a JupyterHub with configurable-http-proxy, each a real process.
Requests go through the Hub's proxy, as users' servers send them.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from bookstore.archiving.outbox import IN_MEMORY_BYTES, Outbox
from bookstore.core.keys import format_timestamp
from tests.support.hub import ACCESS_SCOPE, ArchiveService, Hub, ServiceApi, imported_modules
from tests.support.jupyter_process import JupyterServer, wait_for
from tests.support.jupyter_process import notebook as jupyter_notebook
from tests.support.moto_server import MotoServer, free_port, s3_env
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

BUCKET = "hub-history"
MAX_VERSION_BYTES = IN_MEMORY_BYTES + (1 << 20)
"""Above what the service holds in memory: a save between the two goes through a file."""
SAVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


class Stack(ServiceApi):
    """The running processes, and a client of the service's API for each user."""

    def __init__(
        self, hub: Hub, service: ArchiveService, moto: MotoServer, env: dict[str, str]
    ) -> None:
        super().__init__(hub)
        self.service = service
        self.moto = moto
        self.service_env = env

    def push(
        self, token: str, path: str, content: bytes, *, at: int = 0, sha256: str | None = None
    ) -> requests.Response:
        return requests.post(
            f"{self.api}/versions",
            params={"path": path, "saved_at": format_timestamp(SAVED_AT + timedelta(seconds=at))},
            data=content,
            headers={
                "Authorization": f"token {token}",
                "X-Bookstore-Sha256": sha256 or hashlib.sha256(content).hexdigest(),
            },
            timeout=30,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("hub-stack")
    port = free_port()
    with MotoServer(keep_state=False) as moto:
        moto.make_bucket(BUCKET)
        env = {
            **s3_env(BUCKET, moto.endpoint_url),
            "BOOKSTORE_INDEX_URL": f"sqlite+aiosqlite:///{base / 'index.sqlite'}",
        }
        hub = Hub(base / "hub", f"http://127.0.0.1:{port}")
        args = [f"--BookstoreService.max_version_bytes={MAX_VERSION_BYTES}"]
        # The service first: the Hub routes to it once it finds it answering.
        with ArchiveService(base / "service", hub, port, env, args) as service, hub:
            wait_for(lambda: hub.routes_to("/services/bookstore/api/health"), timeout=30)
            yield Stack(hub, service, moto, env)


def notebook(text: str) -> bytes:
    cell = {"cell_type": "markdown", "id": "a", "metadata": {}, "source": text}
    return json.dumps(
        {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    ).encode()


def test_a_user_pushes_versions_and_reads_them_back_through_the_hubs_proxy(stack: Stack) -> None:
    alice = stack.token("alice")
    first, second = notebook("first draft"), notebook("second draft")

    made = stack.push(alice, "work/report.ipynb", first, at=1)
    again = stack.push(alice, "work/report.ipynb", second, at=2)

    assert made.status_code == 201, made.text
    assert again.status_code == 201, again.text
    assert made.json()["version"]["store_key"].startswith("bookstore/alice/work/report.ipynb/@")
    listed = stack.get(alice, "versions", path="work/report.ipynb").json()["versions"]
    assert [(row["version"], row["size"]) for row in listed] == [(1, len(first)), (2, len(second))]
    content = stack.get(alice, "content", path="work/report.ipynb", version=1)
    assert content.content == first
    assert content.headers["X-Bookstore-Sha256"] == hashlib.sha256(first).hexdigest()
    paths = stack.get(alice, "paths").json()["paths"]
    assert [(row["path"], row["versions"]) for row in paths] == [("work/report.ipynb", 2)]
    stored = stack.moto.objects(BUCKET)
    assert any(key.startswith("bookstore/alice/work/report.ipynb/@") for key in stored)


def test_a_push_repeated_after_a_lost_answer_is_archived_once(stack: Stack) -> None:
    carol = stack.token("carol")
    first, second = notebook("one"), notebook("two")
    assert stack.push(carol, "n.ipynb", first, at=1).status_code == 201
    assert stack.push(carol, "n.ipynb", second, at=2).status_code == 201

    latest_again = stack.push(carol, "n.ipynb", second, at=2)
    older_again = stack.push(carol, "n.ipynb", first, at=1)

    assert (latest_again.status_code, latest_again.json()["archived"]) == (200, False)
    assert older_again.status_code == 201
    assert older_again.json()["version"]["version"] == 1
    listed = stack.get(carol, "versions", path="n.ipynb").json()["versions"]
    assert [row["version"] for row in listed] == [1, 2]


def test_another_users_history_answers_as_if_it_did_not_exist(stack: Stack) -> None:
    alice, bob = stack.token("alice"), stack.token("bob")
    assert stack.push(alice, "secret.ipynb", notebook("alice's"), at=5).status_code == 201

    # Whatever the request says about whose history it wants, the Hub names its owner.
    tries = [
        stack.get(bob, "content", path="secret.ipynb", version=1),
        stack.get(bob, "content", path="secret.ipynb", version=1, user="alice"),
        stack.get(bob, "content", path="../alice/secret.ipynb", version=1),
    ]
    listed = stack.get(bob, "versions", path="secret.ipynb", workspace="bookstore/alice")
    paths = stack.get(bob, "paths", user="alice")

    assert [response.status_code for response in tries] == [404, 404, 400]
    assert listed.json()["versions"] == []
    assert "secret.ipynb" not in [row["path"] for row in paths.json()["paths"]]
    bobs = stack.push(bob, "secret.ipynb", notebook("bob's"), at=6)
    assert bobs.json()["version"]["store_key"].startswith("bookstore/bob/")
    alices = stack.get(alice, "content", path="secret.ipynb", version=1)
    assert alices.content == notebook("alice's")


def test_tokens_that_may_not_use_the_service_are_refused(stack: Stack) -> None:
    stack.token("dave")
    unscoped, _ = stack.hub.token("dave", scopes=["read:users:name!user"])
    scoped, scoped_id = stack.hub.token("dave", scopes=[ACCESS_SCOPE])
    stack.hub.revoke("dave", scoped_id)

    answers = {
        "no token": requests.get(f"{stack.api}/paths", timeout=30).status_code,
        "a token without the scope": stack.get(unscoped, "paths").status_code,
        "a service's token": stack.get(stack.hub.admin_token, "paths").status_code,
        "a revoked token": stack.get(scoped, "paths").status_code,
        "an unknown token": stack.get("0" * 32, "paths").status_code,
    }

    assert answers == {
        "no token": 401,
        "a token without the scope": 403,
        "a service's token": 403,
        "a revoked token": 401,
        "an unknown token": 401,
    }
    assert stack.push(unscoped, "x.ipynb", notebook("x")).status_code == 403


def test_a_save_too_large_to_hold_in_memory_is_archived_through_a_file(stack: Stack) -> None:
    olga = stack.token("olga")
    content = bytes(range(256)) * (IN_MEMORY_BYTES // 256 + 17)

    pushed = stack.push(olga, "data.bin", content, at=1)

    assert pushed.status_code == 201, pushed.text
    assert stack.get(olga, "content", path="data.bin", version=1).content == content


def test_a_push_that_can_never_be_archived_says_why(stack: Stack) -> None:
    erin = stack.token("erin")
    content = notebook("erin")

    answers = [
        stack.push(erin, "x.ipynb", content, sha256="0" * 64),
        stack.push(erin, "../escape.ipynb", content),
        stack.push(erin, "x.ipynb", b"x" * (MAX_VERSION_BYTES + 1)),
    ]
    bad_time = requests.post(
        f"{stack.api}/versions",
        params={"path": "x.ipynb", "saved_at": "yesterday"},
        data=content,
        headers={"Authorization": f"token {erin}"},
        timeout=30,
    )

    assert [(r.status_code, r.json()["message"]) for r in answers] == [
        (400, "the bytes received do not match X-Bookstore-Sha256"),
        (400, "'../escape.ipynb' is not a notebook path relative to the server root"),
        (413, f"a save of {MAX_VERSION_BYTES + 1} bytes is over {MAX_VERSION_BYTES}"),
    ]
    too_early = requests.post(
        f"{stack.api}/versions",
        params={"path": "x.ipynb", "saved_at": "19000101T000000.000000Z"},
        data=content,
        headers={
            "Authorization": f"token {erin}",
            "X-Bookstore-Sha256": hashlib.sha256(content).hexdigest(),
        },
        timeout=30,
    )
    assert bad_time.status_code == 400
    assert too_early.status_code == 400
    assert stack.get(erin, "paths").json()["paths"] == []
    # A name is kept exactly as sent: a leading blank makes another file.
    assert stack.push(erin, " x.ipynb", content).status_code == 201
    assert [row["path"] for row in stack.get(erin, "paths").json()["paths"]] == [" x.ipynb"]


def test_with_the_hub_down_a_request_is_a_temporary_failure_not_unauthorized(
    stack: Stack,
) -> None:
    stack.token("frank")
    fresh, _ = stack.hub.token("frank")  # never shown to the service: not in its cache
    service = stack.service
    stack.hub.stop()
    try:
        response = requests.get(
            f"{service.url}/api/paths", headers={"Authorization": f"token {fresh}"}, timeout=30
        )
    finally:
        stack.hub.start()
        wait_for(lambda: stack.hub.routes_to("/services/bookstore/api/health"), timeout=30)

    assert response.status_code == 503, response.text
    assert "the Hub cannot be asked who you are now" in response.json()["message"]
    assert stack.get(fresh, "paths").status_code == 200


# -- a user's server in service mode -------------------------------------------------


def test_a_server_in_service_mode_archives_through_the_service_and_holds_no_credentials(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.service_mode_server(tmp_path, "grace") as server:
        saved = []
        for n in range(3):
            server.save("analysis.ipynb", jupyter_notebook(f"draft {n}"))
            saved.append((server.root / "analysis.ipynb").read_bytes())
        status = server.wait_archived()

    assert status["archive"]["archived"] == 3
    assert status["features"]["service_url"] == f"{stack.hub.url}/services/bookstore/"
    grace = stack.token("grace")
    listed = stack.get(grace, "versions", path="analysis.ipynb").json()["versions"]
    assert [row["version"] for row in listed] == [1, 2, 3]
    read_back = [
        stack.get(grace, "content", path="analysis.ipynb", version=n).content for n in (1, 2, 3)
    ]
    assert read_back == saved
    assert listed[0]["store_key"].startswith("bookstore/grace/analysis.ipynb/@")
    modules = imported_modules(server)
    assert "jupyter_server" in modules, "the import log was read"
    assert {"sqlalchemy", "aiobotocore", "botocore", "aiosqlite", "asyncpg"} & modules == set()


def save_while_refused(server: JupyterServer) -> tuple[dict[str, list[bytes]], dict[str, Any]]:
    """Three saves of each of two notebooks, made while the archive cannot take them;
    their bytes, and the server's archive status once it says why they wait."""
    saved: dict[str, list[bytes]] = {"a.ipynb": [], "b.ipynb": []}
    for n in range(3):
        for path in saved:
            server.save(path, jupyter_notebook(f"{path} {n}"))
            saved[path].append((server.root / path).read_bytes())
    waiting = wait_for(
        lambda: (archive := server.status()["archive"])["last_error"] and archive,
        what="the server to say why its saves wait",
    )
    return saved, waiting


def test_saves_made_while_the_service_is_down_are_archived_in_order_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.service_mode_server(tmp_path, "heidi") as server:
        server.wait_archived()
        stack.service.stop()
        try:
            saved, waiting = save_while_refused(server)
        finally:
            stack.service.start()
        server.wait_archived()

    assert waiting["backlog"] == 6
    assert "archive service" in waiting["last_error"]
    heidi = stack.token("heidi")
    for path, contents in saved.items():
        listed = stack.get(heidi, "versions", path=path).json()["versions"]
        assert [row["version"] for row in listed] == [1, 2, 3]
        assert [
            stack.get(heidi, "content", path=path, version=row["version"]).content for row in listed
        ] == contents


def test_with_s3_unreachable_from_the_service_saves_wait_and_are_archived_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    """A replica whose S3 is cut off answers 503; the user's saves wait in the outbox."""
    proxy = TcpProxy(stack.moto.port)
    env = {**stack.service_env, "BOOKSTORE_S3_ENDPOINT_URL": proxy.endpoint_url}
    try:
        with ArchiveService(tmp_path / "replica", stack.hub, free_port(), env) as replica:
            url = f"{replica.url}/"
            with stack.service_mode_server(tmp_path / "server", "quinn", url) as server:
                server.wait_archived()
                proxy.set_mode("refuse")
                saved, waiting = save_while_refused(server)
                proxy.set_mode("forward")
                server.wait_archived()
    finally:
        proxy.close()

    assert waiting["backlog"] == 6
    assert "503" in waiting["last_error"]
    for path, contents in saved.items():
        assert [content for _, content in stack.versions("quinn", path)] == contents


def test_a_save_the_service_refuses_for_good_is_set_aside_and_the_next_goes_on(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.service_mode_server(tmp_path, "ivan") as server:
        server.save("big.ipynb", jupyter_notebook("x" * MAX_VERSION_BYTES))
        server.save("small.ipynb", jupyter_notebook("fine"))
        status = server.wait_archived()

    set_aside = status["archive"]["set_aside"]
    assert set_aside["count"] == 1
    assert set_aside["latest"][0]["path"] == "big.ipynb"
    assert f"is over {MAX_VERSION_BYTES}" in set_aside["latest"][0]["reason"]
    paths = stack.get(stack.token("ivan"), "paths").json()["paths"]
    assert [row["path"] for row in paths] == ["small.ipynb"]


def test_saves_a_server_archiving_directly_left_in_its_outbox_are_pushed_in_service_mode(
    stack: Stack, tmp_path: Path
) -> None:
    """Moving a user from shared credentials to the service loses no queued save."""
    server = stack.service_mode_server(tmp_path, "judy")
    left = Outbox(server.outbox_dir, workspace="bookstore/judy")
    content = notebook("queued before the move")
    left.add_bytes("before.ipynb", SAVED_AT, content)
    left.close()  # the server that kept it is gone

    with server:
        status = server.wait_archived()

    assert status["archive"]["archived"] == 1
    judy = stack.token("judy")
    assert stack.get(judy, "content", path="before.ipynb", version=1).content == content


def test_a_replica_with_retention_thins_every_users_history(stack: Stack, tmp_path: Path) -> None:
    """Retention runs where the credentials are: a replica with ``retention`` set thins
    each user's workspace in the index it shares with the others."""
    tokens = {user: stack.token(user) for user in ("mia", "noah")}
    for user, token in tokens.items():
        for n in range(4):
            assert stack.push(token, "long.ipynb", notebook(f"{user} {n}"), at=n).ok

    env = {
        **stack.service_env,
        "BOOKSTORE_RETENTION": '{"keep_last": 2}',
        "BOOKSTORE_RETENTION_INTERVAL": "0.5",
    }
    with ArchiveService(tmp_path / "thinning", stack.hub, free_port(), env):

        def thinned() -> bool:
            return all(
                len(stack.get(token, "versions", path="long.ipynb").json()["versions"]) == 2
                for token in tokens.values()
            )

        wait_for(thinned, what="the replica to thin both users' histories")

    for user in tokens:
        kept = stack.versions(user, "long.ipynb")
        assert kept == [(3, notebook(f"{user} 2")), (4, notebook(f"{user} 3"))]


def test_a_replica_busy_with_its_pushes_answers_429_and_a_push_cut_short_leaves_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    """A replica takes ``max_pushes`` at once; a client gone mid-push frees its slot and
    the temporary file its bytes had filled."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    port = free_port()
    env = {**stack.service_env, "TMPDIR": str(spool)}
    args = ["--BookstoreService.max_pushes=1"]
    paula = stack.token("paula")
    with ArchiveService(tmp_path / "busy", stack.hub, port, env, args) as replica:
        direct = Stack(stack.hub, replica, stack.moto, stack.service_env)
        direct.api = f"{replica.url}/api"
        declared = IN_MEMORY_BYTES + (1 << 20)
        query = f"path=cut.ipynb&saved_at={format_timestamp(SAVED_AT)}"
        cut = socket.create_connection(("127.0.0.1", port))
        try:
            cut.sendall(
                f"POST /services/bookstore/api/versions?{query} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: token {paula}\r\n"
                f"Content-Length: {declared}\r\n\r\n".encode()
            )
            cut.sendall(b"x" * (IN_MEMORY_BYTES + 1000))  # past memory: into a file
            wait_for(lambda: direct.push(paula, "other.ipynb", b"{}").status_code == 429)
            wait_for(lambda: list(spool.iterdir()), what="the push's bytes to reach a file")
        finally:
            cut.close()
        wait_for(lambda: direct.push(paula, "other.ipynb", b"{}").status_code == 201)
        wait_for(lambda: list(spool.iterdir()) == [], what="the cut push's file to go")


# -- reading history in service mode -----------------------------------------------------


def test_a_server_in_service_mode_reads_its_history_through_the_service(
    stack: Stack, tmp_path: Path
) -> None:
    """The checkpoint picker, the REST API and the History panel's calls, restores and
    labels included, work in service mode as they do archiving directly."""
    with stack.service_mode_server(tmp_path, "nina") as server:
        saved = []
        for n in range(3):
            server.save("analysis.ipynb", jupyter_notebook(f"draft {n}"))
            saved.append((server.root / "analysis.ipynb").read_bytes())
        server.wait_archived()
        checkpoints = server.api("GET", "/api/contents/analysis.ipynb/checkpoints").json()
        page = server.api(
            "GET", "/api/bookstore/versions/analysis.ipynb", params={"order": "newest", "limit": 2}
        ).json()
        first = server.api("GET", "/api/bookstore/content/1/analysis.ipynb")
        summary = server.api(
            "GET", "/api/bookstore/diff/1/analysis.ipynb", params={"to": "3", "format": "summary"}
        ).json()
        labelled = server.api(
            "PUT", "/api/bookstore/label/2/analysis.ipynb", json={"label": "sent"}
        )
        restored = server.api("POST", "/api/contents/analysis.ipynb/checkpoints/1")
        status = server.wait_archived()
        now = (server.root / "analysis.ipynb").read_bytes()

    assert [checkpoint["id"] for checkpoint in checkpoints] == ["1", "2", "3"]
    assert (page["total"], [row["version"] for row in page["versions"]]) == (3, [3, 2])
    assert (page["pending"], page["unavailable"]) == ([], None)
    assert first.content == saved[0]
    assert (summary["from"], summary["to"]) == (1, 3)
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["label"] == "sent"
    assert restored.status_code == 204, restored.text
    assert now == saved[0]
    assert status["features"]["history_api"] is True
    nina = stack.get(stack.token("nina"), "versions", path="analysis.ipynb").json()["versions"]
    assert [(row["version"], row["label"]) for row in nina] == [
        (1, None),
        (2, "sent"),
        (3, None),
        (4, None),
    ]
    assert stack.versions("nina", "analysis.ipynb")[-1][1] == saved[0]
    modules = imported_modules(server)
    assert {"sqlalchemy", "aiobotocore", "botocore", "aiosqlite", "asyncpg"} & modules == set()


def test_with_the_service_down_a_server_still_shows_the_saves_waiting_in_its_outbox(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.service_mode_server(tmp_path, "omar") as server:
        server.save("a.ipynb", jupyter_notebook("archived"))
        server.wait_archived()
        stack.service.stop()
        try:
            for n in range(2):
                server.save("a.ipynb", jupyter_notebook(f"waiting {n}"))
            waiting = (server.root / "a.ipynb").read_bytes()
            during = server.api("GET", "/api/contents/a.ipynb/checkpoints").json()
            page = server.api("GET", "/api/bookstore/versions/a.ipynb").json()
            # What the file holds cannot be looked up: it is kept in the outbox again.
            restored = server.api("POST", f"/api/contents/a.ipynb/checkpoints/{during[0]['id']}")
            now = (server.root / "a.ipynb").read_bytes()
        finally:
            stack.service.start()
        server.wait_archived()
        after = server.api("GET", "/api/contents/a.ipynb/checkpoints").json()

    assert [checkpoint["id"][:8] for checkpoint in during] == ["pending-", "pending-"]
    assert len(page["pending"]) == 2
    assert page["versions"] == []
    assert "archive service" in page["unavailable"]
    assert restored.status_code == 204, restored.text
    assert [checkpoint["id"] for checkpoint in after] == ["1", "2", "3", "4"]
    versions = [content for _, content in stack.versions("omar", "a.ipynb")]
    assert versions[2] == waiting
    assert versions[1] == versions[3] == now


def test_the_command_line_reads_and_restores_with_a_token_from_the_hubs_token_page(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = notebook("the plan"), notebook("the plan, revised")
    pia = stack.token("pia")
    assert stack.push(pia, "notes/plan.ipynb", first, at=1).status_code == 201
    assert stack.push(pia, "notes/plan.ipynb", second, at=2).status_code == 201
    # What the token page makes when the user ticks the service's access.
    token, _ = stack.hub.token("pia", scopes=[ACCESS_SCOPE])
    unscoped, _ = stack.hub.token("pia", scopes=["read:users:name!user"])
    listed = stack.run_cli(tmp_path, token, "list", "notes/plan.ipynb", "--json")
    shown = stack.run_cli(tmp_path, token, "show", "notes/plan.ipynb", "1")
    compared = stack.run_cli(tmp_path, token, "diff", "notes/plan.ipynb", "1", "2")
    restored = stack.run_cli(tmp_path, token, "restore", "notes/plan.ipynb", "1")
    labelled = stack.run_cli(tmp_path, token, "label", "notes/plan.ipynb", "2", "final")
    paths = stack.run_cli(tmp_path, token, "list", "--json")

    assert listed.returncode == 0, listed.stderr
    assert [row["version"] for row in json.loads(listed.stdout)] == [1, 2]
    assert shown.stdout.encode() == first
    assert compared.returncode == 0, compared.stderr
    assert "the plan, revised" in compared.stdout
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "notes" / "plan.ipynb").read_bytes() == first
    assert labelled.returncode == 0, labelled.stderr
    rows = stack.get(pia, "versions", path="notes/plan.ipynb").json()["versions"]
    assert [row["label"] for row in rows] == [None, "final"]
    assert [row["path"] for row in json.loads(paths.stdout)] == ["notes/plan.ipynb"]

    refused = stack.run_cli(tmp_path, unscoped, "list", "notes/plan.ipynb")
    no_token = stack.run_cli(tmp_path, None, "list", "notes/plan.ipynb")
    maintenance = stack.run_cli(tmp_path, token, "verify")
    assert (refused.returncode, no_token.returncode, maintenance.returncode) == (4, 8, 8)
    assert "refused the token (403)" in refused.stderr
    assert "JUPYTERHUB_API_TOKEN" in no_token.stderr
    assert "only the archive service" in maintenance.stderr


def test_a_renamed_notebooks_history_follows_it_through_the_service_even_while_it_is_down(
    stack: Stack, tmp_path: Path
) -> None:
    """Renamed and duplicated in JupyterLab (the contents API), with the service down in
    between: once it is back, the history is under the new name, in save order, and the
    copy says what it was copied from."""
    with stack.service_mode_server(tmp_path, "rosa") as server:
        saved = []
        server.save("draft.ipynb", jupyter_notebook("before"))
        saved.append((server.root / "draft.ipynb").read_bytes())
        server.wait_archived()
        stack.service.stop()
        try:
            server.save("draft.ipynb", jupyter_notebook("waiting"))
            saved.append((server.root / "draft.ipynb").read_bytes())
            moved = server.api("PATCH", "/api/contents/draft.ipynb", json={"path": "final.ipynb"})
            server.save("final.ipynb", jupyter_notebook("after"))
            saved.append((server.root / "final.ipynb").read_bytes())
        finally:
            stack.service.start()
        server.wait_archived()
        copied = server.api("POST", "/api/contents", json={"copy_from": "final.ipynb"})
        copy_name = copied.json()["path"]
        server.wait_archived()
        page = wait_for(
            lambda: (
                (answer := server.api("GET", f"/api/bookstore/versions/{copy_name}").json())
                and answer["copied_from"]
                and answer
            ),
            what="the copy to say where it came from",
        )
        checkpoints = server.api("GET", "/api/contents/final.ipynb/checkpoints").json()

    assert moved.status_code == 200, moved.text
    assert copied.status_code == 201, copied.text
    final = stack.get(stack.token("rosa"), "versions", path="final.ipynb").json()["versions"]
    assert [(row["version"], row["saved_as"]) for row in final] == [
        (1, "draft.ipynb"),
        (2, "draft.ipynb"),
        (3, "final.ipynb"),
    ]
    assert [content for _, content in stack.versions("rosa", "final.ipynb")] == saved
    assert stack.get(stack.token("rosa"), "versions", path="draft.ipynb").json()["versions"] == []
    assert page["copied_from"]["path"] == "final.ipynb"
    assert page["copied_from"]["version"] == 3
    assert [checkpoint["id"] for checkpoint in checkpoints] == ["1", "2", "3"]


def test_the_original_bookstores_contents_manager_works_in_service_mode(
    stack: Stack, tmp_path: Path
) -> None:
    """A configuration written for the original (its contents manager) needs no change."""
    server = stack.service_mode_server(tmp_path, "sven")
    server.args.append(
        "--ServerApp.contents_manager_class=bookstore.archive.BookstoreContentsArchiver"
    )
    with server:
        server.save("kept.ipynb", jupyter_notebook("through the original's manager"))
        saved = (server.root / "kept.ipynb").read_bytes()
        server.wait_archived()
        checkpoints = server.api("GET", "/api/contents/kept.ipynb/checkpoints").json()
        status = server.status()

    assert status["features"]["contents_manager"] == "BookstoreContentsArchiver"
    assert [checkpoint["id"] for checkpoint in checkpoints] == ["1"]
    assert stack.versions("sven", "kept.ipynb") == [(1, saved)]
    assert {"sqlalchemy", "aiobotocore", "botocore", "aiosqlite"} & imported_modules(
        server
    ) == set()
