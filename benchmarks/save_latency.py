"""Save latency with bookstore against the same Jupyter server without it.

What is measured: the wall time of a contents-API save (``PUT /api/contents/<path>``
with the notebook as JSON, as JupyterLab sends it), p50 and p95, for notebooks of
about 50 KB, 1 MB and 10 MB made of many cells (~1 KB of source and a one-line
output each, deterministic cell ids).

How: two real ``jupyter server`` processes run at the same time on this machine,
one with bookstore (default settings: local store and SQLite index, or S3 on a
moto server with ``--storage s3``) and one with the extension disabled (the
baseline). Every round saves the same request body to both servers, alternating
which goes first, so drift on the machine hits both alike. Every round changes
one cell, so bookstore archives every save. Rounds are back to back: nothing
waits for the archiver, which works in the background as it does in normal use.
A few warm-up rounds per size are not counted. At the end the script waits for
the archive backlog to drain and checks that every save became a version (the
``archived`` counter and the rows of the SQLite index), so the figures are not
flattered by archiving left undone.

Target: p50 ratio (bookstore / baseline) <= 1.10 at every size.

Quick run::

    python -m benchmarks.save_latency --sizes 50K,1M --rounds 20 --warmup 2
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import nbformat
import requests

from benchmarks._common import bytes_per_cell, code_fingerprint, machine_line, make_notebook
from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import MotoServer, s3_env

TARGET_P50_RATIO = 1.10
_UNITS = {"K": 1024, "M": 1024 * 1024}


def parse_size(text: str) -> int:
    """``"50K"`` -> 51200, ``"10M"`` -> 10485760, ``"4096"`` -> 4096."""
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def notebook_of_size(target_bytes: int) -> dict[str, Any]:
    """A notebook of many ~1 KB cells whose file is about ``target_bytes`` long."""
    empty = len(nbformat.writes(make_notebook(0)))
    cells = max(1, round((target_bytes - empty) / bytes_per_cell()))
    return json.loads(json.dumps(make_notebook(cells)))  # plain dicts, as a client sends


def save_body(nb: dict[str, Any], round_number: int) -> bytes:
    """The request body of a save in which one cell (a different one each round) changed."""
    cells = nb["cells"]
    cell = cells[round_number % len(cells)]
    original = cell["source"]
    cell["source"] = f"{original}\n# edited in round {round_number}"
    try:
        return json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
    finally:
        cell["source"] = original


def timed_save(server: JupyterServer, path: str, body: bytes) -> float:
    """Seconds one save takes, from sending the request to the end of the response."""
    url = f"{server.url}/api/contents/{path}"
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    response = server.session.put(url, data=body, headers=headers, timeout=300)
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 201):
        raise RuntimeError(f"save of {path} failed: {response.status_code} {response.text}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def index_row_count(server: JupyterServer) -> int:
    """Versions in the bookstore server's SQLite index."""
    with sqlite3.connect(f"file:{server.index_file}?mode=ro", uri=True) as db:
        count: int = db.execute("SELECT count(*) FROM versions").fetchone()[0]
    return count


@contextmanager
def servers(workdir: Path, storage: str) -> Iterator[tuple[JupyterServer, JupyterServer]]:
    """A bookstore server and a baseline server, started at the same time."""
    with ExitStack() as stack:
        env: dict[str, str] = {}
        if storage == "s3":
            moto = stack.enter_context(MotoServer(keep_state=False))
            moto.make_bucket("bench-save-latency")
            env = s3_env("bench-save-latency", moto.endpoint_url)
        with_bookstore = JupyterServer(workdir / "bookstore", env=env)
        baseline = JupyterServer(workdir / "baseline", bookstore=False)
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(s.start) for s in (with_bookstore, baseline)]
        for future in starting:
            if future.exception() is None:
                stack.callback(future.result().stop)
        for future in starting:
            future.result()  # raises if a server did not start; the other one is stopped
        with_bookstore.wait_archived(timeout=60)
        yield with_bookstore, baseline


def run(args: argparse.Namespace) -> bool:
    """Run the benchmark, print its table, and return whether the target is met."""
    sizes = [(label.strip(), parse_size(label)) for label in args.sizes.split(",")]
    rounds = [int(r) for r in str(args.rounds).split(",")]
    if len(rounds) == 1:
        rounds *= len(sizes)
    if len(rounds) != len(sizes):
        raise SystemExit("--rounds takes one number, or one per size")

    print(
        f"save latency: {code_fingerprint()} ({args.storage} store) vs no bookstore; "
        f"warm-up {args.warmup} rounds per size, back-to-back saves\n{machine_line()}",
        flush=True,
    )
    rows: list[tuple[str, int, int, list[float], list[float]]] = []
    saves_to_bookstore = 0
    with ExitStack() as stack:
        workdir = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="bookstore-bench-", dir=args.workdir)
            )
        )
        with_bookstore, baseline = stack.enter_context(servers(workdir, args.storage))
        pair = (baseline, with_bookstore)
        round_number = 0
        for (label, size), count in zip(sizes, rounds, strict=True):
            nb = notebook_of_size(size)
            path = f"latency-{label}.ipynb"
            times: dict[str, list[float]] = {"baseline": [], "bookstore": []}
            for n in range(args.warmup + count):
                round_number += 1
                body = save_body(nb, round_number)
                first, second = pair if round_number % 2 else pair[::-1]
                for server in (first, second):
                    elapsed = timed_save(server, path, body)
                    if n >= args.warmup:
                        times["bookstore" if server.bookstore else "baseline"].append(elapsed)
                saves_to_bookstore += 1
            file_size = (baseline.root / path).stat().st_size
            rows.append((label, file_size, len(nb["cells"]), times["baseline"], times["bookstore"]))
            print(f"  {label}: {count} rounds done", flush=True)

        backlog_after_saves = with_bookstore.status()["archive"]["backlog"]
        drain_started = time.perf_counter()
        status = with_bookstore.wait_archived(timeout=args.drain_timeout)
        drain_seconds = time.perf_counter() - drain_started
        archived = status["archive"]["archived"]
        indexed = index_row_count(with_bookstore)

    print()
    header = (
        f"{'size':>6} {'file':>10} {'cells':>6} {'rounds':>6} | {'base p50':>9} {'base p95':>9}"
        f" | {'bks p50':>9} {'bks p95':>9} | {'p50 ratio':>9} {'p95 ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for label, file_size, cells, base, book in rows:
        b50, b95 = percentile(base, 0.5) * 1e3, percentile(base, 0.95) * 1e3
        k50, k95 = percentile(book, 0.5) * 1e3, percentile(book, 0.95) * 1e3
        ratios.append(k50 / b50)
        print(
            f"{label:>6} {file_size:>10,} {cells:>6} {len(base):>6} | {b50:>7.1f}ms {b95:>7.1f}ms"
            f" | {k50:>7.1f}ms {k95:>7.1f}ms | {k50 / b50:>9.3f} {k95 / b95:>9.3f}"
        )
    print(f"after the run: {machine_line()}")
    print()
    print(
        f"archive: {saves_to_bookstore} saves to bookstore (warm-up included), "
        f"{archived} versions archived, {indexed} rows in the index; "
        f"backlog {backlog_after_saves} after the last save, drained in {drain_seconds:.1f}s"
    )
    all_archived = archived == indexed == saves_to_bookstore
    ratio_met = all(ratio <= TARGET_P50_RATIO for ratio in ratios)
    verdict = "PASS" if ratio_met and all_archived else "FAIL"
    reasons = []
    if not ratio_met:
        reasons.append(f"worst p50 ratio {max(ratios):.3f}")
    if not all_archived:
        reasons.append("not every save was archived")
    print(
        f"{verdict}: target p50 ratio <= {TARGET_P50_RATIO:.2f} at every size"
        + (f" ({'; '.join(reasons)})" if reasons else f" (worst {max(ratios):.3f})")
    )
    return verdict == "PASS"


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="50K,1M,10M", help="notebook sizes, comma-separated (K, M suffixes)"
    )
    parser.add_argument(
        "--rounds",
        default="300,150,50",
        help="measured rounds: one number for every size, or one per size (default %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="uncounted rounds per size")
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument("--workdir", default=None, help="parent of the servers' directories")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    args = parser.parse_args()
    try:
        ok = run(args)
    except requests.RequestException as exc:
        raise SystemExit(f"benchmark failed: {exc}") from exc
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
