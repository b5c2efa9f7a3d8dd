"""One history per file, on the default configuration: two project folders of one user
keep two histories, a server started in a parent folder finds the same file's history,
earlier archives under the old shared default are still there, and servers started
together share out the saves an earlier run left in the outbox.

Every server here has the default settings; they share one user's data directory
(store, index and outbox), as two Jupyter servers of one person do.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.archiver import archive_record
from bookstore.archiving.outbox import Outbox
from bookstore.config import FILES_WORKSPACE
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase
from bookstore.store import LocalStore
from tests.support.cli_archives import CLI
from tests.support.jupyter_process import JupyterServer, notebook, wait_for

pytestmark = pytest.mark.e2e


class Machine:
    """One user's data directory, and servers started in folders below ``home``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.data_dir = base / "data"
        self.home.mkdir()

    def server(self, folder: str) -> JupyterServer:
        """A server rooted at ``home/folder``, sharing the user's data directory."""
        server = JupyterServer(self.base / f"server-{folder or 'home'}".replace("/", "-"))
        server.root = self.home / folder
        server.root.mkdir(parents=True, exist_ok=True)
        server.data_dir = self.data_dir
        return server

    def cli(self, *args: str, cwd: Path | None = None) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKSTORE_")}
        env["JUPYTER_DATA_DIR"] = str(self.data_dir)
        result = subprocess.run(
            [CLI, *args, "--json"],
            env=env,
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def checkpoint_ids(server: JupyterServer, path: str) -> list[str]:
    return [c["id"] for c in server.api("GET", f"/api/contents/{path}/checkpoints").json()]


def total_versions(server: JupyterServer, path: str) -> int:
    answer = server.api("GET", f"/api/bookstore/versions/{path}")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def test_two_project_folders_keep_two_histories(machine: Machine) -> None:
    with machine.server("a") as a, machine.server("b") as b:
        for n in range(3):
            a.save("analysis.ipynb", notebook(f"project a, save {n}"))
        b.save("analysis.ipynb", notebook("project b"))
        a.save("Untitled.ipynb", notebook("a's scratch"))
        b.save("Untitled.ipynb", notebook("b's scratch"))
        a.wait_archived()
        b.wait_archived()
        b_content = (b.root / "analysis.ipynb").read_bytes()

        assert checkpoint_ids(a, "analysis.ipynb") == ["1", "2", "3"]
        assert checkpoint_ids(b, "analysis.ipynb") == ["1"]
        assert (total_versions(a, "Untitled.ipynb"), total_versions(b, "Untitled.ipynb")) == (1, 1)

        # B's File > Revert Notebook to Checkpoint gives back B's notebook, never A's.
        b.save("analysis.ipynb", notebook("project b, edited"))
        reverted = b.api("POST", "/api/contents/analysis.ipynb/checkpoints/1")
        assert reverted.status_code == 204, reverted.text
        assert (b.root / "analysis.ipynb").read_bytes() == b_content

    # The command line, given the folder or run in it, sees that folder's history.
    in_a = machine.cli("--root-dir", str(a.root), "list", "analysis.ipynb")
    in_b = machine.cli("list", "analysis.ipynb", cwd=b.root)
    assert [v["version"] for v in in_a] == [1, 2, 3]
    assert [v["version"] for v in in_b] == [1, 2, 3]  # B's save, its edit, the revert
    assert {v["sha256"] for v in in_a}.isdisjoint(v["sha256"] for v in in_b)
    assert {v["path"] for v in in_a + in_b} == {"analysis.ipynb"}


def test_a_server_started_in_a_parent_folder_finds_the_same_history(machine: Machine) -> None:
    with machine.server("project") as project:
        for n in range(2):
            project.save("analysis.ipynb", notebook(f"save {n}"))
        project.wait_archived()
        first = project.api("GET", "/api/bookstore/content/1/analysis.ipynb").content

    with machine.server("") as parent:
        parent.save("project/analysis.ipynb", notebook("saved from the parent"))
        parent.wait_archived()
        assert checkpoint_ids(parent, "project/analysis.ipynb") == ["1", "2", "3"]
        answer = parent.api("GET", "/api/bookstore/content/1/project/analysis.ipynb")
        assert answer.content == first
        listed = [p["path"] for p in parent.api("GET", "/api/bookstore/paths").json()["paths"]]
        assert listed == ["project/analysis.ipynb"]

    with machine.server("project") as again:
        again.wait_archived()  # ready: the index is open
        assert checkpoint_ids(again, "analysis.ipynb") == ["1", "2", "3"]

    everywhere = machine.cli("list", "--all")
    assert [p["path"] for p in everywhere] == [(machine.home / "project/analysis.ipynb").as_posix()]
    below = machine.cli("list", cwd=machine.home / "project")
    assert [(p["path"], p["versions"]) for p in below] == [("analysis.ipynb", 3)]


def test_versions_archived_under_the_old_shared_default_stay_readable(machine: Machine) -> None:
    old = json.dumps(notebook("saved by an earlier release"), indent=1).encode()

    async def archive_as_before() -> None:
        store = LocalStore(machine.data_dir / "bookstore" / "store")
        index = IndexDatabase(f"sqlite+aiosqlite:///{machine.data_dir / 'bookstore/index.sqlite'}")
        try:
            await index.migrate()
            record = ArchiveRecord("analysis.ipynb", old, datetime.now(timezone.utc))
            assert await archive_record(store, index, "workspace", HashedRecord.of(record))
        finally:
            await index.close()
            await store.close()

    asyncio.run(archive_as_before())
    with machine.server("project") as server:
        server.save("analysis.ipynb", notebook("saved now"))
        server.wait_archived()
        # The new history starts on its own; the old one is not mixed into it.
        assert checkpoint_ids(server, "analysis.ipynb") == ["1"]
        # The log says where the earlier versions are.
        wait_for(lambda: "1 versions archived by an earlier release" in server.log())
        assert "bookstore-history --workspace-prefix workspace list" in server.log()

    legacy = ("--workspace-prefix", "workspace")
    [kept] = machine.cli(*legacy, "list", "analysis.ipynb", cwd=server.root)
    assert kept["version"] == 1
    machine.cli(*legacy, "restore", "analysis.ipynb", "1", "--to", "old.ipynb", cwd=server.root)
    assert (server.root / "old.ipynb").read_bytes() == old


def test_servers_started_together_share_out_what_the_outbox_held(machine: Machine) -> None:
    a, b = machine.server("a"), machine.server("b")
    saves = {(a.root / f"left-{n}.ipynb").resolve().as_posix().lstrip("/"): n for n in range(6)} | {
        (b.root / f"left-{n}.ipynb").resolve().as_posix().lstrip("/"): n for n in range(6)
    }
    # An earlier run, killed before it archived them: its lease is gone with it.
    earlier = Outbox(machine.data_dir / "bookstore" / "outbox", workspace=FILES_WORKSPACE)
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    for number, stored in enumerate(saves):
        for version in range(2):
            content = json.dumps(notebook(f"{stored} {version}")).encode()
            earlier.add_bytes(stored, start + timedelta(seconds=2 * number + version), content)
    earlier.close()

    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda server: server.start(), (a, b)))
    try:
        for server in started:
            server.wait_archived()
        for server in started:
            for n in range(6):
                assert checkpoint_ids(server, f"left-{n}.ipynb") == ["1", "2"]
    finally:
        for server in started:
            server.stop()
    outbox = machine.data_dir / "bookstore" / "outbox"
    assert [f.name for f in outbox.glob("*.save")] == []
    assert [f.name for f in (outbox / "failed").glob("*")] == []
