"""Two real servers save into one bucket and one index while prune runs beside them.

The workspace's epochs are two seconds long (``docs/storage.md``), so the run
crosses several: parts become collectable while the servers keep reusing
others, and every prune frees what it may. Afterwards every version is whole
and no part is left unnamed past its grace period.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.jupyter_process import JupyterServer, wait_for
from tests.support.moto_server import MotoServer, s3_env

pytestmark = pytest.mark.e2e

EPOCH_SECONDS = 2
EPOCHS_CROSSED = 5
PATHS = ["shared-0.ipynb", "shared-1.ipynb", "shared-2.ipynb"]
KEEP_LAST = 2
VARIANTS = 20
SHARED = "# the same in every save of every notebook\n" * 20


def notebook(path: str, save: int) -> dict[str, Any]:
    """A part every save shares, and one of a few variants that come back every few saves,
    long after the versions that last named them were pruned: a writer then reuses
    a part that only the grace period keeps. The short cell stays in the skeleton."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(SHARED, id="shared"),
        nbformat.v4.new_markdown_cell(f"# variant {save % VARIANTS}\n{SHARED}", id="variant"),
        nbformat.v4.new_code_cell(f"# save {save} of {path}", id="new"),
    ]
    return dict(nb)


def test_saves_from_two_servers_with_prunes_beside_them_lose_no_part(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> None:
    with moto_server.client() as s3:
        epochs = json.dumps({"seconds": EPOCH_SECONDS}).encode()
        s3.put_object(Bucket=s3_bucket, Key="team/@parts/epochs.json", Body=epochs)
    settings = {
        **s3_env(s3_bucket, moto_server.endpoint_url),
        "BOOKSTORE_INDEX_URL": f"sqlite+aiosqlite:///{tmp_path / 'index.sqlite'}",
        "BOOKSTORE_WORKSPACE_PREFIX": "team",
    }
    servers = [
        JupyterServer(
            tmp_path / name, env={**settings, "BOOKSTORE_OUTBOX_DIR": str(tmp_path / name / "o")}
        )
        for name in ("a", "b")
    ]
    cli = shutil.which("bookstore-history", path=str(Path(sys.executable).parent))
    assert cli is not None

    def bookstore_history(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, "--root-dir", str(servers[0].root), *args],
            env={**os.environ, **settings},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    saved: set[str] = set()
    prunes: list[subprocess.CompletedProcess[str]] = []
    saving = threading.Event()
    saving.set()
    until = (time.time() // EPOCH_SECONDS + EPOCHS_CROSSED) * EPOCH_SECONDS

    def save_until_the_epochs_are_crossed(number: int) -> None:
        server, save = servers[number], 0
        while time.time() < until or save < 10:
            path = PATHS[save % len(PATHS)]
            server.save(path, notebook(path, save * 2 + number))
            saved.add(hashlib.sha256((server.root / path).read_bytes()).hexdigest())
            save += 1

    damaged: list[dict[str, str]] = []

    def prune_and_verify_while_saving() -> None:
        """Prune, then read every version kept: one naming a part freed too soon is damaged.
        (Versions stored and not yet indexed are reported too, and are no damage.)"""
        while saving.is_set():
            prunes.append(bookstore_history("prune", "--keep-last", str(KEEP_LAST)))
            report = json.loads(bookstore_history("verify", "--json").stdout)
            damaged.extend(p for p in report["problems"] if p["kind"] in ("corrupt", "missing"))

    with ThreadPoolExecutor(2) as starting:
        list(starting.map(JupyterServer.start, servers))
    try:
        with ThreadPoolExecutor(3) as clients:
            pruning = clients.submit(prune_and_verify_while_saving)
            list(clients.map(save_until_the_epochs_are_crossed, range(2)))
            for server in servers:
                server.wait_archived(timeout=120)
            saving.clear()
            pruning.result()
    finally:
        for server in servers:
            server.stop()

    # Once every part written is two epochs old, one more prune may free all garbage.
    collectable = (time.time() // EPOCH_SECONDS + 2) * EPOCH_SECONDS
    wait_for(lambda: time.time() >= collectable, timeout=3 * EPOCH_SECONDS, what="two epochs")
    last = bookstore_history("prune", "--keep-last", str(KEEP_LAST))
    verified = bookstore_history("verify", "--json")
    listed = {path: bookstore_history("list", path, "--json") for path in PATHS}

    freed = [line for run in [*prunes, last] for line in run.stdout.splitlines() if "freed" in line]
    print(
        f"\n{len(saved)} saves from 2 servers across {EPOCHS_CROSSED} epochs of "
        f"{EPOCH_SECONDS} s; {len(prunes)} prunes beside them; {freed}"
    )
    assert [run.returncode for run in [*prunes, last]] == [0] * (len(prunes) + 1), [
        run.stderr for run in prunes
    ]
    assert len(prunes) >= 2
    assert damaged == []
    assert any("freed" in run.stdout for run in prunes), "no prune ran while parts were reused"
    report = json.loads(verified.stdout)
    assert (verified.returncode, report["problems"]) == (0, []), verified.stdout
    assert report["checked"] == len(PATHS) * KEEP_LAST
    for path, run in listed.items():
        versions = json.loads(run.stdout)
        assert len(versions) == KEEP_LAST, path
        assert {version["sha256"] for version in versions} <= saved, path
