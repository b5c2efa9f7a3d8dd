"""End-to-end archive throughput to S3 (a moto server), against the raw aiobotocore put rate.

What is measured:

* bookstore: saves acknowledged *and* archived per second. A real ``jupyter
  server`` with bookstore archives to a bucket on a real moto S3 server. 8
  concurrent clients (threads, each with its own ``requests.Session``) save 400
  distinct contents over 20 notebooks of 10-50 KB (20 versions each). A notebook
  is never saved by two clients at once, as a user's notebook has one editor;
  every client stays busy until the last save. The clock runs from the first
  save until the server reports an empty backlog, the SQLite index holds a row
  for every save and the bucket an object for every save.
* raw: objects put per second by one long-lived aiobotocore client making 8
  concurrent ``put_object`` calls to another bucket of the same moto server,
  with the same bodies (the bytes of the notebook files the saves write) and
  the same number of objects. It is measured before and after the bookstore
  run; the ratio uses their mean.
* for reference (``--no-baseline`` skips it): the same saves from the same
  clients on the same server without bookstore, acknowledged per second, which
  bounds what any save hook can reach.

Targets: bookstore rate / raw rate >= 0.8, and no save lost (index rows ==
saves == objects).

Quick run::

    python -m benchmarks.archive_throughput --notebooks 8 --versions 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import requests
from aiobotocore.session import get_session
from botocore.config import Config

from benchmarks._common import bytes_per_cell, code_fingerprint, machine_line, make_notebook
from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoServer, s3_env

TARGET_RATIO = 0.8
ARCHIVE_BUCKET = "bench-archive"
RAW_BUCKET = "bench-raw"


class Save(NamedTuple):
    """One save: which notebook, which version, the request body and the file it writes."""

    path: str
    version: int
    body: bytes
    file_bytes: bytes


def plan_saves(notebooks: int, versions: int, min_kb: float, max_kb: float) -> list[Save]:
    """Every save, in round-robin order over the notebooks (version 0 of each first)."""
    paths = [f"project {n // 5}/notebook-{n}.ipynb" for n in range(notebooks)]
    per_cell = bytes_per_cell()
    saves = []
    for version in range(versions):
        for n, path in enumerate(paths):
            kb = min_kb + (max_kb - min_kb) * n / max(1, notebooks - 1)
            nb = make_notebook(max(1, round(kb * 1024 / per_cell)), f"# {path}, version {version}")
            body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
            # What the contents manager writes: nbformat.write adds the final newline.
            text = nbformat.writes(nb, version=nbformat.NO_CONVERT)
            saves.append(Save(path, version, body, (text + "\n").encode()))
    return saves


class SaveQueue:
    """Hands out saves in order, never two of the same notebook at the same time."""

    def __init__(self, saves: list[Save]) -> None:
        self._pending = deque(saves)
        self._busy: set[str] = set()
        self._changed = threading.Condition()

    def take(self) -> Save | None:
        """The first pending save whose notebook no client is saving; None when all are done."""
        with self._changed:
            while self._pending:
                for position, save in enumerate(self._pending):
                    if save.path not in self._busy:
                        del self._pending[position]
                        self._busy.add(save.path)
                        return save
                self._changed.wait()
            return None

    def done(self, save: Save) -> None:
        """Let other clients save this notebook again."""
        with self._changed:
            self._busy.discard(save.path)
            self._changed.notify_all()


def client_session(server: JupyterServer) -> requests.Session:
    """A session of its own (``requests.Session`` is not thread-safe), with the server's token."""
    session = requests.Session()
    session.headers["Authorization"] = server.session.headers["Authorization"]
    return session


def save_all(server: JupyterServer, saves: list[Save], clients: int) -> None:
    """Make every save from ``clients`` concurrent clients; raise if any save fails."""
    queue = SaveQueue(saves)

    def client() -> None:
        with client_session(server) as session:
            while (save := queue.take()) is not None:
                try:
                    response = session.put(
                        f"{server.url}/api/contents/{save.path}",
                        data=save.body,
                        headers={"Content-Type": "application/json"},
                        timeout=120,
                    )
                finally:
                    queue.done(save)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"save of {save.path} failed: {response.text}")

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()


def index_rows(server: JupyterServer, like: str) -> int:
    """Versions in the server's SQLite index whose path matches ``like``."""
    with sqlite3.connect(f"file:{server.index_file}?mode=ro", uri=True) as db:
        count: int = db.execute(
            "SELECT count(*) FROM versions WHERE path LIKE ?", (like,)
        ).fetchone()[0]
    return count


def bucket_objects(s3: Any, bucket: str, prefix: str) -> int:
    """Objects in ``bucket`` whose key starts with ``prefix``."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class BookstoreResult(NamedTuple):
    """What the bookstore run measured."""

    acknowledged_seconds: float
    archived_seconds: float
    drained: bool
    index_rows: int
    objects: int
    files_match: bool


def run_baseline(workdir: Path, saves: list[Save], clients: int) -> float:
    """Seconds the same saves take on the same server without bookstore (no archiving)."""
    with JupyterServer(workdir / "baseline", bookstore=False) as server:
        for directory in sorted({save.path.rsplit("/", 1)[0] for save in saves}):
            server.mkdir(directory)
        server.save("warmup.ipynb", json.loads(saves[0].body)["content"])
        started = time.perf_counter()
        save_all(server, saves, clients)
        return time.perf_counter() - started


def run_bookstore(
    moto: MotoServer, workdir: Path, saves: list[Save], clients: int, timeout: float
) -> BookstoreResult:
    """Save everything through a bookstore server; time until every save is archived."""
    env = {**s3_env(ARCHIVE_BUCKET, moto.endpoint_url), "BOOKSTORE_WORKSPACE_PREFIX": "workspace"}
    like, prefix = "project %", "workspace/project "
    with JupyterServer(workdir / "bookstore", env=env) as server, moto.client() as s3:
        server.wait_archived(timeout=60)  # the index is migrated and archiving has begun
        for directory in sorted({save.path.rsplit("/", 1)[0] for save in saves}):
            server.mkdir(directory)
        # Warm-up, not counted: the S3 client, the index and the save path are all used once.
        server.save("warmup.ipynb", json.loads(saves[0].body)["content"])
        server.wait_archived(timeout=60)

        def all_archived() -> bool:
            archive = server.status()["archive"]
            return (
                archive["ready"]
                and archive["backlog"] == 0
                and index_rows(server, like) >= len(saves)
                and bucket_objects(s3, ARCHIVE_BUCKET, prefix) >= len(saves)
            )

        started = time.perf_counter()
        save_all(server, saves, clients)
        acknowledged = time.perf_counter() - started
        drained = wait_until(all_archived, timeout)
        archived = time.perf_counter() - started

        latest = {save.path: save.file_bytes for save in saves}
        files_match = all((server.root / p).read_bytes() == data for p, data in latest.items())
        rows = index_rows(server, like)
        objects = bucket_objects(s3, ARCHIVE_BUCKET, prefix)
    return BookstoreResult(acknowledged, archived, drained, rows, objects, files_match)


async def raw_put_seconds(
    endpoint_url: str, bodies: list[bytes], concurrency: int, prefix: str
) -> float:
    """Seconds one long-lived aiobotocore client takes to put ``bodies``, N at once."""
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(max_pool_connections=max(10, concurrency * 2)),
    ) as client:
        # Warm-up, not counted: open the connections.
        await asyncio.gather(
            *(
                client.put_object(Bucket=RAW_BUCKET, Key=f"warmup/{prefix}{i}", Body=bodies[i])
                for i in range(min(concurrency, len(bodies)))
            )
        )
        work = iter(enumerate(bodies))

        async def worker() -> None:
            for number, body in work:
                await client.put_object(Bucket=RAW_BUCKET, Key=f"{prefix}{number:06d}", Body=body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def run(args: argparse.Namespace) -> bool:
    """Run the benchmark, print its figures, and return whether the targets are met."""
    saves = plan_saves(args.notebooks, args.versions, args.min_kb, args.max_kb)
    bodies = [save.file_bytes for save in saves]
    sizes = sorted(len(body) for body in bodies)
    print(
        f"archive throughput to S3 (moto), {code_fingerprint()}: {len(saves)} saves over "
        f"{args.notebooks} notebooks "
        f"({sizes[0] / 1024:.0f}-{sizes[-1] / 1024:.0f} KB, mean "
        f"{sum(sizes) / len(sizes) / 1024:.0f} KB), {args.clients} clients\n{machine_line()}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bookstore-bench-", dir=args.workdir) as tmp,
        MotoServer(keep_state=False) as moto,
    ):
        moto.make_bucket(ARCHIVE_BUCKET)
        moto.make_bucket(RAW_BUCKET)
        raw_before = asyncio.run(raw_put_seconds(moto.endpoint_url, bodies, args.clients, "a/"))
        print(f"  raw put (before): {len(bodies) / raw_before:.1f} objects/s", flush=True)
        baseline = None if args.no_baseline else run_baseline(Path(tmp), saves, args.clients)
        if baseline is not None:
            print(f"  no bookstore: {len(saves) / baseline:.1f} saves/s", flush=True)
        result = run_bookstore(moto, Path(tmp), saves, args.clients, args.timeout)
        print(f"  bookstore: {len(saves) / result.archived_seconds:.1f} saves/s", flush=True)
        raw_after = asyncio.run(raw_put_seconds(moto.endpoint_url, bodies, args.clients, "b/"))
        print(f"  raw put (after): {len(bodies) / raw_after:.1f} objects/s", flush=True)
        with moto.client() as s3:
            raw_objects = bucket_objects(s3, RAW_BUCKET, "a/") + bucket_objects(
                s3, RAW_BUCKET, "b/"
            )

    print(f"after the run: {machine_line()}")
    raw_rate = len(bodies) / ((raw_before + raw_after) / 2)
    rate = len(saves) / result.archived_seconds
    ack_rate = len(saves) / result.acknowledged_seconds
    lost = len(saves) - min(result.index_rows, result.objects)
    ratio = rate / raw_rate
    print()
    print(
        f"raw aiobotocore put:      {raw_rate:8.1f} objects/s  (before "
        f"{len(bodies) / raw_before:.1f}, after {len(bodies) / raw_after:.1f}; "
        f"{raw_objects} objects of {2 * len(bodies)} stored)"
    )
    print(
        f"bookstore end to end:     {rate:8.1f} saves/s    ({len(saves)} saves archived in "
        f"{result.archived_seconds:.2f}s; all acknowledged after "
        f"{result.acknowledged_seconds:.2f}s = {ack_rate:.1f} saves/s)"
    )
    if baseline is not None:
        print(
            f"same saves, no bookstore: {len(saves) / baseline:8.1f} saves/s    (acknowledged; "
            "the ceiling for any extension on this server)"
        )
    print(f"ratio bookstore / raw:    {ratio:8.3f}       (target >= {TARGET_RATIO})")
    print(
        f"saves lost:               {lost:8d}       (saves {len(saves)}, index rows "
        f"{result.index_rows}, objects {result.objects}"
        + ("" if result.drained else f"; NOT drained within {args.timeout:.0f}s")
        + ("" if result.files_match else "; raw bodies differ from the saved files")
        + ")"
    )
    passed = (
        ratio >= TARGET_RATIO and lost == 0 and result.index_rows == result.objects == len(saves)
    )
    reasons = []
    if ratio < TARGET_RATIO:
        reasons.append(f"ratio {ratio:.3f} < {TARGET_RATIO}")
    if lost or not result.index_rows == result.objects == len(saves):
        reasons.append("index rows, saves and objects differ")
    print(
        f"{'PASS' if passed else 'FAIL'}: target ratio >= {TARGET_RATIO} and 0 saves lost"
        + (f" ({'; '.join(reasons)})" if reasons else "")
    )
    return passed


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=int, default=20)
    parser.add_argument("--versions", type=int, default=20, help="saves per notebook")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--min-kb", type=float, default=10.0, help="smallest notebook, KB")
    parser.add_argument("--max-kb", type=float, default=50.0, help="largest notebook, KB")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait to drain")
    parser.add_argument("--workdir", default=None, help="parent of the servers' directories")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the informative run of the same saves on a server without bookstore",
    )
    args = parser.parse_args()
    sys.exit(0 if run(args) else 1)


if __name__ == "__main__":
    main()
