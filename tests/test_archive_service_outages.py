"""Nothing a user saves is lost while any part of the hub's archive is down.

One stack for the module, every part a real process on this machine:
PostgreSQL (a password required over TCP), moto with authentication enforced
(only the service's IAM keys are accepted), two ``bookstore-service`` replicas
behind nginx, and JupyterHub with configurable-http-proxy routing the service
to nginx. Each test has users of its own, whose servers run in service mode
and save through the contents API; after each outage, every save must be
archived exactly once, with its bytes, in save order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.hub import ArchiveService, Hub, ServiceApi, imported_modules
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.moto_server import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoServer,
    free_port,
    s3_env,
)
from tests.support.nginx import LoadBalancer
from tests.support.postgres_server import PostgresServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

BUCKET = "hub-archive"
PASSWORD = "index-secret-only-the-service-holds"
NOTEBOOKS = ("one.ipynb", "two.ipynb", "three.ipynb")
SAVES = 30


class Stack(ServiceApi):
    """The running processes; what the service holds, to check users' servers hold none."""

    def __init__(
        self,
        hub: Hub,
        replicas: list[ArchiveService],
        postgres: PostgresServer,
        moto: MotoServer,
        service_env: dict[str, str],
    ) -> None:
        super().__init__(hub)
        self.replicas = replicas
        self.postgres = postgres
        self.moto = moto
        self.service_env = service_env

    @property
    def secrets(self) -> list[str]:
        """What no user's server may hold: the S3 key pair and the index URL."""
        env = self.service_env
        return [
            env["BOOKSTORE_S3_ACCESS_KEY_ID"],
            env["BOOKSTORE_S3_SECRET_ACCESS_KEY"],
            PASSWORD,
        ]

    def keys(self) -> tuple[str, str]:
        env = self.service_env
        return env["BOOKSTORE_S3_ACCESS_KEY_ID"], env["BOOKSTORE_S3_SECRET_ACCESS_KEY"]

    def index_rows(self, user: str) -> dict[str, int]:
        """How many index rows each of ``user``'s paths has, read straight from PostgreSQL."""

        async def count() -> dict[str, int]:
            connection = await asyncpg.connect(self.dsn())
            try:
                rows = await connection.fetch(
                    "SELECT path, count(*) FROM versions WHERE workspace = $1 GROUP BY path",
                    f"bookstore/{user}",
                )
            finally:
                await connection.close()
            return {row[0]: row[1] for row in rows}

        return asyncio.run(count())

    def dsn(self, password: str = PASSWORD) -> str:
        """The index's address as asyncpg takes it, with ``password``."""
        url = self.service_env["BOOKSTORE_INDEX_URL"].replace("postgresql+asyncpg", "postgresql")
        return url.replace(f":{PASSWORD}@", f":{password}@" if password else "@")

    def objects(self, user: str) -> dict[str, int]:
        """How many version objects each of ``user``'s paths has in the bucket."""
        found: dict[str, int] = {}
        for key in self.moto.objects(BUCKET, self.keys()):
            if key.startswith(f"bookstore/{user}/") and "/@parts/" not in key:
                path = key[len(f"bookstore/{user}/") :].rsplit("/@", 1)[0]
                found[path] = found.get(path, 0) + 1
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("hub-outages")
    postgres = PostgresServer(password=PASSWORD)
    try:
        with MotoServer(keep_state=False) as moto:
            moto.make_bucket(BUCKET)
            keys = moto.iam_keys("archive-service")
            with moto.enforce_auth():
                env = {
                    **s3_env(
                        BUCKET, moto.endpoint_url, access_key_id=keys[0], secret_access_key=keys[1]
                    ),
                    "BOOKSTORE_INDEX_URL": postgres.create_database(),
                }
                ports = [free_port(), free_port()]
                balancer = LoadBalancer(base / "nginx", [f"127.0.0.1:{port}" for port in ports])
                hub = Hub(base / "hub", balancer.url)
                replicas = [
                    ArchiveService(base / f"replica-{n}", hub, port, env)
                    for n, port in enumerate(ports)
                ]
                with balancer, replicas[0], replicas[1], hub:
                    wait_for(lambda: hub.routes_to("/services/bookstore/api/health"), timeout=30)
                    yield Stack(hub, replicas, postgres, moto, env)
    finally:
        postgres.close()


def save_round_robin(server: JupyterServer, saves: int) -> dict[str, list[bytes]]:
    """``saves`` distinct saves spread over ``NOTEBOOKS``; the bytes each wrote, in order."""
    saved: dict[str, list[bytes]] = {path: [] for path in NOTEBOOKS}
    for n in range(saves):
        path = NOTEBOOKS[n % len(NOTEBOOKS)]
        server.save(path, notebook(f"{path}, save {n}"))
        saved[path].append((server.root / path).read_bytes())
    return saved


def assert_archived_once_in_order(stack: Stack, user: str, saved: dict[str, list[bytes]]) -> None:
    for path, contents in saved.items():
        assert stack.versions(user, path) == list(enumerate(contents, start=1)), path
    counts = {path: len(contents) for path, contents in saved.items()}
    assert stack.index_rows(user) == counts, "one index row per save"
    assert stack.objects(user) == counts, "one object per save"


def saves_during(
    stack: Stack, tmp_path: Path, user: str, outage: Callable[[], None], back: Callable[[], None]
) -> tuple[dict[str, list[bytes]], dict[str, Any]]:
    """``SAVES`` saves by ``user``'s server made during ``outage``, until ``back``, and
    then pushed: what each wrote, and the archive status while it waited, which must
    say why in words."""
    with stack.service_mode_server(tmp_path, user) as server:
        server.wait_archived()
        outage()
        try:
            saved = save_round_robin(server, SAVES)
            waiting = waiting_with_an_error(server)
        finally:
            back()
        server.wait_archived(timeout=120)
    return saved, waiting


def kill_replicas(stack: Stack) -> None:
    for replica in stack.replicas:
        replica.kill()


def start_replicas(stack: Stack) -> None:
    for replica in stack.replicas:
        replica.start()


def waiting_with_an_error(server: JupyterServer) -> dict[str, Any]:
    """The archive status once the server has said why it cannot push."""
    return dict(
        wait_for(
            lambda: (archive := server.status()["archive"])["last_error"] and archive,
            what="the server to report the outage",
        )
    )


def test_a_users_server_holds_no_credentials_and_cannot_reach_the_store_or_index(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.service_mode_server(tmp_path, "cleo") as server:
        server.save("notes.ipynb", notebook("cleo's notes"))
        server.wait_archived()
        assert server.process is not None
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().decode()

    held = environ + "".join(
        file.read_text(errors="replace") for file in tmp_path.rglob("*") if file.is_file()
    )
    assert [secret for secret in stack.secrets if secret in held] == []
    assert {"sqlalchemy", "aiobotocore", "botocore", "asyncpg"} & imported_modules(server) == set()
    # What code in cleo's server could try: S3 with any key it might find or make up...
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.moto.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    with pytest.raises(ClientError, match=r"InvalidAccessKeyId|AccessDenied"):
        s3.list_objects_v2(Bucket=BUCKET)
    # ... and the index without the service's password.
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(asyncpg.connect(stack.dsn(password=""), timeout=10))
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(asyncpg.connect(stack.dsn(password="guessed"), timeout=10))
    [(number, content)] = stack.versions("cleo", "notes.ipynb")
    assert number == 1
    assert "".join(json.loads(content)["cells"][0]["source"]) == 'print("cleo\'s notes", 0)'


def test_alice_and_bob_spawned_by_the_hub_each_reach_only_their_own_history(
    stack: Stack, tmp_path: Path
) -> None:
    """alice and bob log in (the Hub spawns their servers) and save through the Hub's
    proxy, as JupyterLab does. Each history is theirs alone, whichever way bob reads:
    his server's REST API (the History panel's), its checkpoints, or the command line;
    and bob's server holds none of the service's secrets."""
    sessions = {}
    for user in ("alice", "bob"):
        session = requests.Session()
        session.headers["Authorization"] = f"token {stack.token(user)}"
        sessions[user] = session
        stack.hub.spawn(user)
    saved = {}
    try:
        for user, session in sessions.items():
            server = f"{stack.hub.url}/user/{user}"
            names = ["report.ipynb"] + (["alice-only.ipynb"] if user == "alice" else [])
            for name in names:
                for n in range(2):
                    body = {"type": "notebook", "content": notebook(f"{user} {n}")}
                    answer = session.put(f"{server}/api/contents/{name}", json=body, timeout=60)
                    assert answer.status_code in (200, 201), answer.text
            saved[user] = (stack.hub.homes / user / "report.ipynb").read_bytes()
            wait_for(
                lambda session=session, server=server: (
                    session.get(f"{server}/api/bookstore", timeout=10).json()["archive"]["backlog"]
                    == 0
                ),
                what=f"{user}'s saves to be pushed",
            )
        bob, at_bob = sessions["bob"], f"{stack.hub.url}/user/bob/api"
        checkpoints = bob.get(f"{at_bob}/contents/report.ipynb/checkpoints", timeout=30).json()
        page = bob.get(f"{at_bob}/bookstore/versions/report.ipynb", timeout=30).json()
        first = bob.get(f"{at_bob}/bookstore/content/1/report.ipynb", timeout=30)
        alices_page = bob.get(f"{at_bob}/bookstore/versions/alice-only.ipynb", timeout=30).json()
        alices_content = bob.get(f"{at_bob}/bookstore/content/1/alice-only.ipynb", timeout=30)
        alices_diff = bob.get(f"{at_bob}/bookstore/diff/1/alice-only.ipynb?to=2", timeout=30)
        paths = bob.get(f"{at_bob}/bookstore/paths", timeout=30).json()["paths"]
        environ = _environ_of_the_server_of("bob")
    finally:
        for user in sessions:
            stack.hub.admin.delete(f"{stack.hub.api_url}/users/{user}/server", timeout=60)
    from_cli = stack.run_cli(tmp_path, stack.token("bob"), "show", "alice-only.ipynb", "1")

    for user in sessions:
        versions = stack.versions(user, "report.ipynb")
        assert [number for number, _ in versions] == [1, 2]
        assert versions[-1][1] == saved[user]
    assert [checkpoint["id"] for checkpoint in checkpoints] == ["1", "2"]
    assert page["total"] == 2
    assert "bob 0" in first.text
    assert "alice" not in first.text
    assert (alices_page["total"], alices_page["versions"]) == (0, [])
    assert (alices_content.status_code, alices_diff.status_code) == (404, 404)
    assert [row["path"] for row in paths] == ["report.ipynb"]
    assert from_cli.returncode == 3, from_cli.stderr
    assert "there is no version 1 of 'alice-only.ipynb'" in from_cli.stderr
    held = environ + "".join(
        file.read_text(errors="replace")
        for file in (stack.hub.homes / "bob").rglob("*")
        if file.is_file()
    )
    assert "JUPYTERHUB_API_TOKEN" in environ
    assert [secret for secret in stack.secrets if secret in held] == []


def _environ_of_the_server_of(user: str) -> str:
    """The environment of the single-user server the Hub spawned for ``user``."""
    for process in Path("/proc").iterdir():
        try:
            command = (process / "cmdline").read_bytes()
            environ = (process / "environ").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if b"jupyterhub-singleuser" in command and f"JUPYTERHUB_USER={user}\0" in environ:
            return environ
    raise AssertionError(f"no server of {user} is running")


def test_with_both_replicas_down_30_saves_are_archived_once_in_order_once_they_are_back(
    stack: Stack, tmp_path: Path
) -> None:
    saved, waiting = saves_during(
        stack, tmp_path, "carol", partial(kill_replicas, stack), partial(start_replicas, stack)
    )

    assert waiting["backlog"] > 0
    assert "archive service" in waiting["last_error"]
    assert_archived_once_in_order(stack, "carol", saved)


def test_a_replica_killed_mid_drain_leaves_no_duplicate_and_no_gap(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = stack.replicas
    with stack.service_mode_server(tmp_path, "dan") as server:
        server.wait_archived()
        first.kill()
        second.kill()
        try:
            saved = save_round_robin(server, SAVES)
            first.start()
            wait_for(lambda: server.status()["archive"]["archived"] >= 5, what="a few pushes")
            first.kill()  # mid-drain: pushes are in flight
            second.start()
            server.wait_archived()
        finally:
            first.start()

    assert_archived_once_in_order(stack, "dan", saved)


def test_a_users_server_killed_mid_drain_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    server = stack.service_mode_server(tmp_path, "erin").start()
    try:
        server.wait_archived()
        kill_replicas(stack)
        try:
            saved = save_round_robin(server, SAVES)
        finally:
            start_replicas(stack)
        wait_for(lambda: server.status()["archive"]["archived"] >= 5, what="a few pushes")
        server.kill()  # SIGKILL, mid-drain
        server.start()  # the same outbox: it takes over what the killed server left
        server.wait_archived()
    finally:
        server.stop()

    assert_archived_once_in_order(stack, "erin", saved)


def test_with_the_hub_stopped_saves_wait_and_are_archived_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    saved, waiting = saves_during(stack, tmp_path, "frank", stack.hub.stop, stack.hub.start)

    assert "archive service" in waiting["last_error"]
    assert_archived_once_in_order(stack, "frank", saved)


def test_with_postgresql_stopped_saves_wait_and_are_archived_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    saved, waiting = saves_during(
        stack, tmp_path, "grace", stack.postgres.stop, stack.postgres.start
    )

    assert "archive service" in waiting["last_error"]
    assert_archived_once_in_order(stack, "grace", saved)


def test_with_everything_stopped_at_once_saves_wait_and_are_archived_once_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    def everything_down() -> None:
        stack.hub.stop()
        stack.postgres.stop()
        kill_replicas(stack)

    def everything_back() -> None:
        stack.postgres.start()
        start_replicas(stack)
        stack.hub.start()

    saved, waiting = saves_during(stack, tmp_path, "heidi", everything_down, everything_back)

    assert "archive service" in waiting["last_error"]
    assert_archived_once_in_order(stack, "heidi", saved)


def test_a_replica_started_while_postgresql_is_down_answers_503_until_it_is_back(
    stack: Stack, tmp_path: Path
) -> None:
    token = stack.token("ivan")
    replica = ArchiveService(
        tmp_path / "late", stack.hub, free_port(), stack.service_env, wait_for_index=False
    )
    api = ServiceApi(stack.hub)
    api.api, api.tokens = f"{replica.url}/api", {"ivan": token}
    stack.postgres.stop()
    back = False
    try:
        with replica:
            waiting = api.get(token, "paths")
            health = requests.get(f"{replica.url}/api/health", timeout=10).json()
            stack.postgres.start()
            back = True
            wait_for(lambda: api.get(token, "paths").status_code == 200, timeout=60)
            assert requests.get(f"{replica.url}/api/health", timeout=10).json()["ready"]
    finally:
        if not back:
            stack.postgres.start()

    assert (waiting.status_code, health["ready"]) == (503, False)
    assert "preparing its index" in waiting.json()["message"]
