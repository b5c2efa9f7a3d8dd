"""Prune 1,000,000 versions: peak memory and time of ``bookstore-history prune``.

Builds a SQLite index of ``--versions`` versions over ``--paths`` paths (no
objects: deleting a missing object costs the store's usual call and is no
error), then runs ``prune --keep-last 10 --json`` in a process of its own and
reads its peak resident memory from the kernel. Baseline in the same run: the
same command line's peak for ``list`` of one path on the same index.

Target: the prune's peak at most 200 MB, whatever the number of versions.

Run: ``python -m benchmarks.prune_large`` (``--versions 100000`` for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import code_fingerprint, machine_line
from tests.support.bulk_index import WORKSPACE, fill_index, path_name

TARGET_PEAK_MB = 200
CLI = str(Path(sys.executable).parent / "bookstore-history")


def measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``command``, its output discarded."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--paths", type=int, default=1_000)
    options = parser.parse_args()
    print(f"prune {options.versions:,} versions over {options.paths:,} paths, {code_fingerprint()}")
    print(machine_line())

    with tempfile.TemporaryDirectory() as tmp:
        index_url = f"sqlite+aiosqlite:///{tmp}/index.sqlite"
        started = time.perf_counter()
        asyncio.run(fill_index(index_url, options.versions, options.paths))
        print(f"built the index in {time.perf_counter() - started:.1f} s")
        os.environ["JUPYTER_CONFIG_DIR"] = tmp
        base = [CLI, "--index-url", index_url, "--local-store-dir", f"{tmp}/store"]
        base += ["--workspace-prefix", WORKSPACE]

        list_s, list_mb = measured([*base, "list", path_name(0)])
        prune_s, prune_mb = measured([*base, "prune", "--keep-last", "10", "--json"])

    removed = options.versions - 10 * options.paths
    print(f"\nlist one path:  {list_s:8.2f} s, peak {list_mb:6.1f} MB (baseline)")
    print(
        f"prune:          {prune_s:8.2f} s, peak {prune_mb:6.1f} MB ({removed:,} versions removed)"
    )
    print(f"per version removed: {prune_s / max(removed, 1) * 1e6:.1f} us")
    print(f"peak above the baseline: {prune_mb - list_mb:.1f} MB")
    verdict = "PASS" if prune_mb <= TARGET_PEAK_MB else "FAIL"
    print(f"{verdict}: target peak <= {TARGET_PEAK_MB} MB (peak {prune_mb:.1f} MB)")
    if verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
