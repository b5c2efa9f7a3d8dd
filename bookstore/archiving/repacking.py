"""Rewriting the versions earlier releases kept whole in the form this release writes.

One version at a time, in place, under the key it always had: safe to interrupt
(a version is either as it was or rewritten; see ``read_version`` for the local
store's one in-between state) and to run again, which skips what is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bookstore.archiving.version_objects import PACK_AT_MOST, bounded, repack_version
from bookstore.core import keys
from bookstore.core.errors import ObjectNotFound
from bookstore.core.record import sha256_of
from bookstore.index import IndexDatabase, Version, queries
from bookstore.store.base import Store

__all__ = ["RepackReport", "repack"]


_PARALLEL = 4
"""Versions rewritten at once: each is held in memory, up to ``PACK_AT_MOST`` bytes."""


@dataclass
class RepackReport:
    """What a repack rewrote, what it left, and the bytes before and after."""

    repacked: int = 0
    kept: int = 0
    """Versions already in this release's form, or too large to rewrite in memory
    (over ``PACK_AT_MOST``, as a server keeps them)."""
    damaged: list[str] = field(default_factory=list)
    """Versions whose bytes do not match their sha256: left as they are for ``verify``."""
    bytes_before: int = 0
    bytes_after: int = 0


async def repack(
    store: Store,
    index: IndexDatabase,
    workspace: str,
    *,
    dry_run: bool = False,
    on_total: Callable[[int], None] = lambda _: None,
    tick: Callable[[], None] = lambda: None,
) -> RepackReport:
    """Rewrite every indexed version of ``workspace`` that is kept as saved.

    A version pruned while it is rewritten is deleted again afterwards: prune
    removes its row before its object, so a row gone after the rewrite means the
    object must go too.
    """
    report = RepackReport()
    async with index.reading() as session:
        rows = await queries.workspace_versions(session, workspace)
    on_total(len(rows))

    async def one(row: Version) -> None:
        try:
            if row.size > PACK_AT_MOST:
                report.kept += 1  # kept as saved by design: never read into memory
                return
            head = await store.head(row.store_key)
            if keys.parse_version_metadata(head.metadata).format is not None:
                report.kept += 1
                return
            if dry_run:  # counted from the index: nothing is read
                report.repacked += 1
                report.bytes_before += row.size
                return
            stored = await store.get(row.store_key)
            if await asyncio.to_thread(sha256_of, stored.data) != row.sha256:
                report.damaged.append(row.store_key)
                return
            cost = await repack_version(store, workspace, stored)
            if cost is None:
                report.kept += 1
                return
            report.repacked += 1
            report.bytes_before += len(stored.data)
            report.bytes_after += cost
            async with index.writing() as session:
                indexed = await queries.set_stored_size(session, row.store_key, cost)
            if not indexed:
                await store.delete(row.store_key)
        except ObjectNotFound:
            return  # pruned meanwhile
        finally:
            tick()

    await bounded(rows, one, _PARALLEL)
    report.damaged.sort()
    return report
