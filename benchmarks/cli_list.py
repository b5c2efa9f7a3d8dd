"""``bookstore-history list PATH`` on a large index, and how fast the CLI starts.

Measures, in one invocation:

1. ``list PATH`` on an index of 1,000,000 versions over 10,000 paths against
   the same command on an index of 1,000 versions (10 paths): the whole
   command in a subprocess, as a person runs it, and the query alone,
   in-process. Target: at most 2x (the query uses the (path, version) index).
2. ``bookstore-history --help`` against ``python -c "import sqlalchemy"``.
   Target: under 2x (the CLI imports its heavy dependencies lazily).

Run: ``python -m benchmarks.cli_list`` (``--versions 100000`` for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bookstore.index import IndexDatabase, queries
from tests.support.bulk_index import WORKSPACE, fill_index

CLI = str(Path(sys.executable).parent / "bookstore-history")


def build_index(file: Path, versions: int, paths: int) -> None:
    """A migrated index with ``versions`` rows spread evenly over ``paths`` paths."""
    asyncio.run(fill_index(f"sqlite+aiosqlite:///{file}", versions, paths))


def best_of(runs: int, action: Callable[[], object]) -> float:
    """Median wall time of ``runs`` runs of ``action``, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def cli_list(file: Path, path: str) -> Callable[[], object]:
    command = [CLI, "--index-url", f"sqlite+aiosqlite:///{file}", "--workspace-prefix", WORKSPACE]
    command += ["list", path, "--limit", "50"]
    return lambda: subprocess.run(command, check=True, capture_output=True)


def query_list(file: Path, path: str, runs: int) -> float:
    async def measure() -> float:
        database = IndexDatabase(f"sqlite+aiosqlite:///{file}")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            async with database.reading() as session:
                await queries.list_versions(session, WORKSPACE, path, limit=50, newest=True)
            times.append((time.perf_counter() - started) * 1000)
        await database.close()
        return statistics.median(times)

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small.sqlite", Path(tmp) / "large.sqlite"
        started = time.perf_counter()
        build_index(small, 1_000, 10)
        build_index(large, options.versions, options.paths)
        print(f"built indexes in {time.perf_counter() - started:.1f} s")
        os.environ.setdefault("JUPYTER_CONFIG_DIR", tmp)
        probe_small, probe_large = "nb-00005.ipynb", f"nb-{options.paths // 2:05d}.ipynb"

        cli_small = best_of(options.runs, cli_list(small, probe_small))
        cli_large = best_of(options.runs, cli_list(large, probe_large))
        query_small = query_list(small, probe_small, options.runs * 10)
        query_large = query_list(large, probe_large, options.runs * 10)

    help_ms = best_of(
        options.runs, lambda: subprocess.run([CLI, "--help"], check=True, capture_output=True)
    )
    import_ms = best_of(
        options.runs,
        lambda: subprocess.run([sys.executable, "-c", "import sqlalchemy"], check=True),
    )

    rows = [
        ("list PATH (command)", cli_small, cli_large, 2.0),
        ("list PATH (query only)", query_small, query_large, 2.0),
    ]
    print(
        f"\n{'measure':<26}{'1,000 rows':>12}{f'{options.versions:,} rows':>16}{'ratio':>8}  target"
    )
    verdicts = []
    for name, base, big, target in rows:
        ratio = big / base
        verdicts.append(ratio <= target)
        print(f"{name:<26}{base:>10.2f}ms{big:>14.2f}ms{ratio:>8.2f}  <= {target}")
    help_ratio = help_ms / import_ms
    verdicts.append(help_ratio < 2.0)
    print(
        f"\n--help {help_ms:.1f} ms vs import sqlalchemy {import_ms:.1f} ms: "
        f"ratio {help_ratio:.2f} (target < 2.0)"
    )
    print("PASS" if all(verdicts) else "FAIL")


if __name__ == "__main__":
    main()
