"""Group commit: the index's two writes per version, each in its own transaction
against shared ones, with 8 versions in flight as the archiver has them.

Each version is what the archiver writes: its number reserved, then its row
indexed (durably). The same process runs both ways, alternately, on fresh
SQLite files, and prints versions/s and the ratio.

Run: ``python -m benchmarks.index_writes`` (``--versions 400 --rounds 3``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from benchmarks._common import machine_line
from bookstore.index import IndexDatabase, queries

IN_FLIGHT = 8
PATHS = 20


async def one_version(index: IndexDatabase, n: int, together: bool) -> None:
    now = datetime.now(timezone.utc)
    path = f"notebook-{n % PATHS}.ipynb"
    key = f"workspace/{path}/@{n:08d}"
    reserve = partial(
        queries.reserve_version,
        workspace="workspace",
        path=path,
        store_key=key,
        sha256=f"{n:064x}",
        saved_at=now,
    )
    add = partial(
        queries.add_version,
        workspace="workspace",
        store_key=key,
        size=1000,
        sha256=f"{n:064x}",
        queued_at=now,
        archived_at=now,
    )
    if together:
        await index.write_together(reserve)
        await index.write_together(add, durable=True)
        return
    async with index.writing() as session:
        await reserve(session)
    async with index.writing(durable=True) as session:
        await add(session)


async def rate(versions: int, together: bool) -> float:
    """Versions per second, on a fresh index."""
    with tempfile.TemporaryDirectory() as directory:
        index = IndexDatabase(f"sqlite+aiosqlite:///{Path(directory) / 'index.sqlite'}")
        await index.migrate()
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def archived(n: int) -> None:
            async with slots:
                await one_version(index, n, together)

        started = time.perf_counter()
        await asyncio.gather(*(archived(n) for n in range(versions)))
        elapsed = time.perf_counter() - started
        await index.close()
    return versions / elapsed


def _listed(rates: list[float]) -> str:
    return ", ".join(f"{r:.0f}" for r in rates)


async def main(versions: int, rounds: int) -> None:
    alone, shared = [], []
    for _ in range(rounds):
        alone.append(await rate(versions, together=False))
        shared.append(await rate(versions, together=True))
    a, s = statistics.median(alone), statistics.median(shared)
    print(machine_line())
    print(f"a transaction per write:   {a:7.1f} versions/s  (rounds: {_listed(alone)})")
    print(f"writes share transactions: {s:7.1f} versions/s  (rounds: {_listed(shared)})")
    print(f"ratio shared / alone:      {s / a:7.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.versions, arguments.rounds))
