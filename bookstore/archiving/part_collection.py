"""Deleting the parts no version refers to, safely while other servers write.

Parts are kept by epoch (``core.epochs``). Only epochs that ended at least one
whole epoch ago are collected: no writer can still be about to name one of
their parts, so a part that no version in the store names is garbage for good.
The store is the truth, as restic's prune reads every index: every version
object is read (its metadata, and a packed version's small manifest), never
the index, which may not list a version yet. ``docs/storage.md`` gives the
whole protocol.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bookstore.archiving import version_objects
from bookstore.archiving.version_objects import bounded, read_epochs, read_manifest_of
from bookstore.core import keys
from bookstore.core.errors import CorruptVersion, ObjectNotFound
from bookstore.store.base import ObjectInfo, Store

__all__ = ["Garbage", "collect_parts", "find_garbage"]


@dataclass
class Garbage:
    """Parts of collectable epochs that no version names, and what stopped the search."""

    parts: list[ObjectInfo] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Versions whose manifest cannot be read: while any is, nothing counts as garbage."""

    def blocked(self) -> str | None:
        """Why no part was freed, in words; ``None`` if nothing stood in the way."""
        if not self.unreadable:
            return None
        return (
            f"no part was freed: {len(self.unreadable)} versions cannot be read, so what "
            f"they need is unknown (the first: {self.unreadable[0]}); "
            "`bookstore-history verify` names them"
        )

    @property
    def bytes(self) -> int:
        return sum(info.size for info in self.parts)


async def find_garbage(store: Store, workspace: str, *, now: float | None = None) -> Garbage:
    """Find the parts ``collect_parts`` would delete; changes nothing."""
    garbage = Garbage()
    epochs = await read_epochs(store, workspace)
    if epochs is None:
        return garbage  # no packed version was ever written here
    now = version_objects.clock() if now is None else now
    candidates: dict[tuple[int, str], ObjectInfo] = {}
    versions: list[str] = []
    listed = 0
    async for info in store.list(keys.workspace_root(workspace)):
        listed += 1
        if listed % 1000 == 0:
            await asyncio.sleep(0)  # a local listing yields no turn of its own
        part = keys.parse_part_key(workspace, info.key)
        if part is not None:
            if epochs.collectable(part[0], now):
                candidates[part] = info
        elif keys.parse_version_key(workspace, info.key) is not None:
            versions.append(info.key)
    if not candidates:
        return garbage

    async def mark(key: str) -> None:
        try:
            manifest = await read_manifest_of(store, key)
        except ObjectNotFound:
            return  # pruned meanwhile: what it named is not needed
        except CorruptVersion:
            garbage.unreadable.append(key)
            return
        if manifest is not None:
            for digest in manifest.parts():
                candidates.pop((manifest.epoch, digest), None)

    await bounded(versions, mark)
    garbage.unreadable.sort()
    if not garbage.unreadable:
        garbage.parts = sorted(candidates.values(), key=lambda info: info.key)
    return garbage


async def collect_parts(store: Store, workspace: str, *, now: float | None = None) -> Garbage:
    """Delete every part of a collectable epoch that no version names; what went.

    Safe to interrupt and to run again, and beside writers and other prunes.
    """
    garbage = await find_garbage(store, workspace, now=now)

    async def delete(info: ObjectInfo) -> None:
        await store.delete(info.key)

    await bounded(garbage.parts, delete)
    return garbage
