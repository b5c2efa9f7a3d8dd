"""Bytes stored against bytes saved over an editing session, and what reading one back costs.

What is measured:

* The session: a real ``jupyter server`` with bookstore, configured as the
  README's first command runs it (a local store and a SQLite index), receives
  ``--saves`` saves of every notebook of a corpus through the contents API.
  Each save appends a line to one code cell's source; 40% of saves re-run that
  cell (its execution count and text output change), and half of those draw a
  new image. The corpus is 25 generated notebooks with images by default, or
  every ``.ipynb`` under ``--corpus DIR``.
* saved: the bytes of every save, as its file holds them; stored: the bytes of
  every object the store holds for them (object bodies: what S3 would bill),
  after the session. The index's own figure (``storage_by_path``) is printed
  beside it.
* byte-exact: ``--sample`` versions, chosen at random, are read back through
  ``GET /api/bookstore/content`` and compared by sha256 with what was saved.
* restoring a 10 MB version: a notebook of about 10 MB (mostly images) is
  archived, and the same bytes are kept whole beside it as version 1 of
  another path, as earlier releases kept every version. Each is read back
  through ``GET /api/bookstore/content`` (the packed one: its manifest and
  parts fetched concurrently, joined, checked against its sha256; the whole
  one: read and checked); the median of ``--repeats`` restores of each.

Targets: stored / saved <= 0.05, every sampled version byte-equal, and the
10 MB restore <= 1.5x the restore of the version kept whole.

Quick run::

    python -m benchmarks.storage --notebooks 5 --saves 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from benchmarks._common import code_fingerprint, machine_line
from bookstore.archiving.maintenance import reindex
from bookstore.core import keys
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase
from bookstore.store.local import LocalStore
from tests.support.jupyter_process import JupyterServer

WORKSPACE_PATHS = "session"


def image(rng: random.Random, low: int = 20_000, high: int = 120_000) -> str:
    """A PNG's worth of incompressible bytes, base64-encoded as notebooks hold them."""
    return base64.b64encode(rng.randbytes(rng.randint(low, high))).decode()


def plot_output(rng: random.Random, size: tuple[int, int] = (20_000, 120_000)) -> Any:
    return nbformat.v4.new_output(
        "display_data",
        data={"image/png": image(rng, *size), "text/plain": "<Figure size 640x480 with 1 Axes>"},
    )


def generated_notebook(rng: random.Random, number: int) -> Any:
    """A notebook like a published analysis: prose, code, printed results and plots."""
    nb = nbformat.v4.new_notebook()
    for cell in range(rng.randint(15, 40)):
        if cell % 4 == 0:
            words = " ".join(f"word{rng.randrange(500)}" for _ in range(rng.randint(20, 120)))
            nb.cells.append(nbformat.v4.new_markdown_cell(f"## Step {cell}\n\n{words}"))
            continue
        lines = [
            f"result_{cell}_{n} = analyse(data['column_{n}'], window={rng.randint(1, 30)})"
            for n in range(rng.randint(2, 25))
        ]
        code = nbformat.v4.new_code_cell(
            f"# notebook {number}, cell {cell}\n" + "\n".join(lines), execution_count=cell
        )
        text = "".join(f"{rng.random():.6f}\n" for _ in range(rng.randint(1, 30)))
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        if rng.random() < 0.3:
            code.outputs.append(plot_output(rng))
        nb.cells.append(code)
    return nb


def corpus(directory: Path | None, count: int, rng: random.Random) -> Iterator[tuple[str, Any]]:
    """(name, notebook) of every notebook to edit."""
    if directory is None:
        for number in range(count):
            yield f"{WORKSPACE_PATHS}/generated-{number:02}.ipynb", generated_notebook(rng, number)
        return
    for file in sorted(directory.rglob("*.ipynb")):
        try:
            nb = nbformat.read(file, as_version=4)
        except Exception as exc:  # a corpus file that cannot be read is skipped
            print(f"skipped {file}: {exc}", file=sys.stderr)
            continue
        flat = file.relative_to(directory).as_posix().replace("/", "--")
        yield f"{WORKSPACE_PATHS}/{flat}", nb


def edit(nb: Any, save: int, rng: random.Random) -> None:
    """One save's worth of editing: a line appended to a code cell, which may be re-run."""
    cells = [cell for cell in nb.cells if cell.cell_type == "code"] or nb.cells
    cell = rng.choice(cells)
    cell.source += f"\n# edit {save}"
    if cell.cell_type != "code" or rng.random() >= 0.4:
        return
    cell.execution_count = (cell.execution_count or 0) + 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"run {save}\n")]
    if rng.random() < 0.5:
        cell.outputs.append(plot_output(rng))


def store_bytes(store_dir: Path) -> int:
    """The bytes of every object body in a local store (its metadata files aside)."""
    return sum(file.stat().st_size for file in (store_dir / "data").rglob("*") if file.is_file())


def run_session(args: argparse.Namespace, workdir: Path) -> bool:
    rng = random.Random(args.seed)
    saved: dict[tuple[str, int], str] = {}  # (path, version) -> sha256 of the save
    saved_bytes = saves = 0
    with JupyterServer(workdir / "session") as server:
        server.mkdir(WORKSPACE_PATHS)
        started = time.monotonic()
        for path, nb in corpus(args.corpus, args.notebooks, rng):
            for save in range(args.saves):
                if save:
                    edit(nb, save, rng)
                server.save(path, json.loads(nbformat.writes(nb)))
                data = (server.root / path).read_bytes()
                saved[path, save + 1] = hashlib.sha256(data).hexdigest()
                saved_bytes += len(data)
                saves += 1
        server.wait_archived(timeout=600)
        elapsed = time.monotonic() - started

        stored = store_bytes(server.store_dir)
        with sqlite3.connect(server.index_file) as db:
            indexed = db.execute("SELECT sum(stored_bytes) FROM storage_by_path").fetchone()[0]
            versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
        sample = rng.sample(sorted(saved), min(args.sample, len(saved)))
        differ = 0
        for path, version in sample:
            answer = server.api("GET", f"/api/bookstore/content/{version}/{path}")
            if hashlib.sha256(answer.content).hexdigest() != saved[path, version]:
                differ += 1

    ratio = stored / saved_bytes
    print(
        f"session: {len(saved) // args.saves} notebooks x {args.saves} saves = {saves} saves "
        f"({versions} versions) in {elapsed:.1f} s"
    )
    print(f"  saved  {saved_bytes:>13,} bytes")
    print(f"  stored {stored:>13,} bytes  ({ratio:.3f}x; the index says {indexed:,})")
    print(f"  byte-exact: {len(sample) - differ} of {len(sample)} sampled versions (sha256)")
    ok = ratio <= 0.05 and differ == 0 and versions == saves
    print(f"target stored/saved <= 0.05x, all sampled equal: {'met' if ok else 'NOT met'}")
    return ok


def large_notebook(rng: random.Random) -> Any:
    """About 10 MB of notebook, most of it plots."""
    nb = nbformat.v4.new_notebook()
    while len(nbformat.writes(nb)) < 10 * 1024 * 1024:
        cell = nbformat.v4.new_code_cell(f"plot({len(nb.cells)})", execution_count=len(nb.cells))
        cell.outputs = [plot_output(rng, (150_000, 400_000))]
        nb.cells.append(cell)
    return nb


async def plant_whole(server: JupyterServer, workspace: str, path: str, data: bytes) -> None:
    """Store ``data`` as version 1 of ``path`` the way earlier releases did (one whole
    object, with its metadata), and index it from the store, as reindex finds it."""
    store = LocalStore(server.store_dir)
    index = IndexDatabase(f"sqlite+aiosqlite:///{server.index_file}")
    try:
        hashed = HashedRecord.of(ArchiveRecord(path, data, datetime.now(timezone.utc)))
        key = keys.version_key(workspace, path, hashed.queued_time)
        await store.put(key, data, keys.version_metadata(hashed, 1))
        await reindex(store, index, workspace)
    finally:
        await index.close()
        await store.close()


def restore_large(args: argparse.Namespace, workdir: Path) -> bool:
    """Median time to restore a ~10 MB version through the REST API, packed against the
    same bytes kept whole (as earlier releases kept every version)."""
    nb = large_notebook(random.Random(args.seed))
    server = JupyterServer(workdir / "large")
    with server:
        server.save("large.ipynb", json.loads(nbformat.writes(nb)))
        server.wait_archived()
        workspace = server.status()["archive"]["workspace"]
    data = (server.root / "large.ipynb").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with sqlite3.connect(server.index_file) as db:  # the path as the workspace names it
        [(stored,)] = db.execute("SELECT path FROM versions").fetchall()
    whole = stored.removesuffix("large.ipynb") + "whole.ipynb"
    asyncio.run(plant_whole(server, workspace, whole, data))
    timings: dict[str, list[float]] = {"large.ipynb": [], "whole.ipynb": []}
    with server:
        for _ in range(args.repeats):
            for path, times in timings.items():
                started = time.perf_counter()
                answer = server.api("GET", f"/api/bookstore/content/1/{path}")
                times.append(time.perf_counter() - started)
                assert hashlib.sha256(answer.content).hexdigest() == digest, path
    packed_ms = statistics.median(timings["large.ipynb"]) * 1000
    whole_ms = statistics.median(timings["whole.ipynb"]) * 1000
    ratio = packed_ms / whole_ms
    print(
        f"restoring a {len(data) / 1e6:.1f} MB version ({len(nb.cells)} cells, "
        f"GET /api/bookstore/content): {packed_ms:.1f} ms packed, {whole_ms:.1f} ms kept "
        f"whole (median of {args.repeats}): {ratio:.2f}x"
    )
    ok = ratio <= 1.5
    print(f"target <= 1.5x: {'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a folder of real notebooks to edit")
    parser.add_argument("--notebooks", type=int, default=25, help="generated notebooks")
    parser.add_argument("--saves", type=int, default=40, help="saves per notebook")
    parser.add_argument("--sample", type=int, default=50, help="versions read back")
    parser.add_argument("--repeats", type=int, default=9, help="reads of the 10 MB version")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(code_fingerprint())
    print(machine_line())
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        session_ok = run_session(args, workdir)
        read_ok = restore_large(args, workdir)
    sys.exit(0 if session_ok and read_ok else 1)


if __name__ == "__main__":
    main()
