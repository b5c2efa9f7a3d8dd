"""Many users, one bucket and one index: `{username}` workspaces keep each history apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookstore.config import BookstoreSettings
from bookstore.core import keys
from bookstore.core.errors import ConfigurationError, InvalidPath
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer, s3_env

CLI = str(Path(sys.executable).parent / "bookstore-history")
TEMPLATE = "bookstore/{username}"
USERS = ("alice", "bob@example.org")


@given(st.text(min_size=1, max_size=30))
def test_a_user_name_fills_one_key_segment_and_never_escapes_it(username: str) -> None:
    try:
        workspace = keys.resolve_prefix(TEMPLATE, username)
    except InvalidPath:
        assert username in (".", "..")
        return
    segment = workspace.removeprefix("bookstore/")
    assert segment
    assert "/" not in segment
    assert "\0" not in segment
    assert segment not in (".", "..")


def test_user_names_read_as_themselves_where_they_can() -> None:
    assert keys.resolve_prefix(TEMPLATE, "bob@example.org") == "bookstore/bob@example.org"
    assert keys.resolve_prefix(TEMPLATE, "a/../b") == "bookstore/a%2F..%2Fb"
    assert keys.resolve_prefix("/plain/", "ignored") == "plain"


def test_the_user_comes_from_jupyterhub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "carol")
    settings = BookstoreSettings(workspace_prefix=TEMPLATE)
    settings.validate()
    assert settings.workspace == "bookstore/carol"


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [("users/{user}", "no placeholder but {username}"), ("{username}x{", "no placeholder")],
)
def test_other_placeholders_are_refused(prefix: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        BookstoreSettings(workspace_prefix=prefix).validate()


@pytest.mark.parametrize(
    ("workspace_prefix", "published_prefix"),
    [("{username}", "published"), ("bookstore/{username}", "bookstore"), ("", "published")],
)
def test_a_published_prefix_that_could_name_a_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, workspace_prefix: str, published_prefix: str
) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "published")
    settings = BookstoreSettings(
        workspace_prefix=workspace_prefix, published_prefix=published_prefix
    )
    with pytest.raises(ConfigurationError, match="must not contain, or lie within"):
        settings.validate()
    BookstoreSettings(
        workspace_prefix=workspace_prefix, published_prefix=published_prefix, enable_publish=False
    ).validate()


def test_each_user_can_publish_to_a_prefix_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "carol")
    settings = BookstoreSettings(
        workspace_prefix="bookstore/{username}", published_prefix="published/{username}"
    )
    settings.validate()
    assert settings.published == "published/carol"


# -- two users' servers sharing one bucket and one index ---------------------------------


class Hub:
    """One single-user server per user, as JupyterHub spawns them, on shared S3 and index."""

    def __init__(self, servers: dict[str, JupyterServer], shared_env: dict[str, str]) -> None:
        self.servers = servers
        self.shared_env = shared_env

    def cli(self, user: str, *args: str) -> Any:
        server = self.servers[user]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKSTORE_")}
        env.update(self.shared_env, JUPYTERHUB_USER=user, JUPYTER_DATA_DIR=str(server.data_dir))
        command = [CLI, "--root-dir", str(server.root), *args, "--json"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def hub(tmp_path: Path, moto_server: MotoServer, s3_bucket: str, index_url: str) -> Iterator[Hub]:
    shared = {
        **s3_env(s3_bucket, moto_server.endpoint_url),
        "BOOKSTORE_INDEX_URL": index_url,
        "BOOKSTORE_WORKSPACE_PREFIX": TEMPLATE,
    }
    with ExitStack() as stack:
        servers = {
            user: stack.enter_context(
                JupyterServer(tmp_path / f"user{n}", env={**shared, "JUPYTERHUB_USER": user})
            )
            for n, user in enumerate(USERS)
        }
        yield Hub(servers, shared)


@pytest.mark.e2e
def test_users_sharing_a_bucket_and_an_index_see_only_their_own_history(
    hub: Hub, moto_server: MotoServer, s3_bucket: str
) -> None:
    alice, bob = (hub.servers[user] for user in USERS)
    for n in range(3):
        alice.save("analysis.ipynb", notebook(f"alice {n}"))
    bob.save("analysis.ipynb", notebook("bob 0"))
    bob.save("bob-only.ipynb", notebook("bob only"))
    for server in (alice, bob):
        server.wait_archived()

    assert alice.status()["archive"]["workspace"] == "bookstore/alice"
    assert bob.status()["archive"]["workspace"] == "bookstore/bob@example.org"
    keys_by_user = {
        user: sorted(k for k in moto_server.objects(s3_bucket) if f"/{user}/" in k)
        for user in USERS
    }
    assert [len(found) for found in keys_by_user.values()] == [3, 2]

    # Each number their own versions of the same path from 1, and list only those.
    rest = {
        user: server.api("GET", "/api/bookstore/versions/analysis.ipynb").json()
        for user, server in hub.servers.items()
    }
    assert [v["version"] for v in rest["alice"]["versions"]] == [1, 2, 3]
    assert [v["version"] for v in rest["bob@example.org"]["versions"]] == [1]
    assert all("/alice/" in v["store_key"] for v in rest["alice"]["versions"])
    checkpoints = bob.api("GET", "/api/contents/analysis.ipynb/checkpoints").json()
    assert [c["id"] for c in checkpoints] == ["1"]

    # Another user's version and path are not found, over REST and on the command line.
    assert alice.api("GET", "/api/bookstore/content/1/bob-only.ipynb").status_code == 404
    assert alice.api("GET", "/api/bookstore/content/2/analysis.ipynb").status_code == 200
    assert bob.api("GET", "/api/bookstore/content/2/analysis.ipynb").status_code == 404
    listed = hub.cli("bob@example.org", "list")
    assert sorted(p["path"] for p in listed) == ["analysis.ipynb", "bob-only.ipynb"]
    assert [p["versions"] for p in hub.cli("alice", "list")] == [3]


@pytest.mark.e2e
def test_a_users_rebuild_and_prune_leave_other_users_alone(hub: Hub) -> None:
    alice, bob = (hub.servers[user] for user in USERS)
    for n in range(4):
        alice.save("a.ipynb", notebook(f"alice {n}"))
        bob.save("a.ipynb", notebook(f"bob {n}"))
    for server in (alice, bob):
        server.wait_archived()

    hub.cli("alice", "prune", "--keep-last", "1")
    report = hub.cli("bob@example.org", "reindex")
    assert report["added"] == []
    bob_versions = hub.cli("bob@example.org", "list", "a.ipynb")
    assert [v["version"] for v in bob_versions] == [1, 2, 3, 4]
    assert [v["version"] for v in hub.cli("alice", "list", "a.ipynb")] == [4]
    assert hub.cli("bob@example.org", "verify")["problems"] == []


@pytest.mark.e2e
def test_a_server_whose_workspace_holds_another_starts_and_leaves_its_versions_alone(
    tmp_path: Path,
) -> None:
    """A named server's workspace inside the default server's (``team/alice/lab`` in
    ``team/alice``), on one store and one index: the default server, starting with no
    version of its own, rebuilds from the store without taking the named server's."""
    shared = {
        "BOOKSTORE_LOCAL_STORE_DIR": str(tmp_path / "store"),
        "BOOKSTORE_INDEX_URL": f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}",
    }
    named = {**shared, "BOOKSTORE_WORKSPACE_PREFIX": "team/alice/lab"}
    with JupyterServer(tmp_path / "named", env=named) as server:
        for n in range(2):
            server.save("x.ipynb", notebook(f"named server save {n}"))
        server.wait_archived()

    default = {**shared, "BOOKSTORE_WORKSPACE_PREFIX": "team/alice"}
    with JupyterServer(tmp_path / "default", env=default) as server:
        status = server.wait_archived()
        listed = server.api("GET", "/api/bookstore/versions/lab/x.ipynb").json()
        server.save("x.ipynb", notebook("default server save"))
        server.wait_archived()
    with JupyterServer(tmp_path / "named", env=named) as server:
        theirs = server.api("GET", "/api/bookstore/versions/x.ipynb").json()

    assert status["archive"]["last_error"] is None
    assert listed["total"] == 0
    assert theirs["total"] == 2
    environment = {**os.environ, **default, "JUPYTER_CONFIG_DIR": str(tmp_path / "default")}
    reindexed = subprocess.run(
        [CLI, "reindex", "--json"], env=environment, capture_output=True, text=True, check=False
    )
    assert reindexed.returncode == 0, reindexed.stderr
    assert json.loads(reindexed.stdout)["added"] == []
