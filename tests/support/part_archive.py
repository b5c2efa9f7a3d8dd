"""A local store and SQLite index whose epoch clock a test moves: for following parts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bookstore.archiving import version_objects
from bookstore.archiving.archiver import archive_record
from bookstore.archiving.maintenance import finish_interrupted_prunes, plan_prune, prune, verify
from bookstore.archiving.part_collection import collect_parts
from bookstore.core import keys
from bookstore.core.epochs import Epochs
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.core.retention import RetentionPolicy
from bookstore.core.version_format import decompress
from bookstore.history import History
from bookstore.index import IndexDatabase, queries
from bookstore.store.base import Store
from bookstore.store.local import LocalStore

WS = "w"
EPOCH = 3600
LONG = "# long enough to be a part of its own\n" * 10
SAVED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def notebook(*cells: str) -> bytes:
    """A notebook whose cells each become a part: ``cells`` name them."""
    return json.dumps(
        {
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": f"{name}\n{LONG}"}
                for name in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    ).encode()


class Archive:
    """A local store and a SQLite index under one directory, with the epoch clock."""

    def __init__(
        self, base: Path, monkeypatch: pytest.MonkeyPatch, *, inline_at_most: int = 0
    ) -> None:
        self.base = base
        self.store: Store = LocalStore(base / "store")
        self.index = IndexDatabase(f"sqlite+aiosqlite:///{base / 'index.sqlite'}")
        self.now = 10 * EPOCH + 1.0
        self.saves = 0
        monkeypatch.setattr(version_objects, "clock", lambda: self.now)
        # By default every part is written the first time it is seen, as a large one
        # always is: tests that follow parts need them in the store from the start.
        monkeypatch.setattr(version_objects, "INLINE_AT_MOST", inline_at_most)

    async def open(self) -> Archive:
        await self.index.migrate()
        await self.store.put(keys.epochs_key(WS), Epochs(EPOCH).to_json(), {})
        return self

    def at_epoch(self, epoch: int) -> None:
        self.now = epoch * EPOCH + 1.0

    async def save(self, path: str, content: bytes, store: Store | None = None) -> None:
        self.saves += 1
        record = ArchiveRecord(path, content, SAVED_AT + timedelta(seconds=self.saves))
        await archive_record(store or self.store, self.index, WS, HashedRecord.of(record))

    async def prune(self, store: Store | None = None, keep_last: int = 1) -> int:
        store = store or self.store
        await finish_interrupted_prunes(store, self.index, WS)
        plans = plan_prune(self.index, WS, RetentionPolicy(keep_last=keep_last))
        removed = await prune(store, self.index, WS, plans)
        await collect_parts(store, WS)
        return removed

    async def contents(self) -> dict[str, list[bytes]]:
        """Every indexed version's bytes, read back and checked, by path."""
        history = History(self.store, self.index, WS)
        found: dict[str, list[bytes]] = {}
        async with self.index.reading() as session:
            rows = await queries.workspace_versions(session, WS)
        for row in sorted(rows, key=lambda row: (row.path, row.number)):
            found.setdefault(row.path, []).append(await history.read(row))
        return found

    def parts(self) -> set[str]:
        """The cell names (first lines) of every part the store keeps, with its epoch."""
        found = set()
        for file in (self.base / "store" / "data" / WS / "@parts").rglob("*.zst"):
            text = decompress(file.read_bytes(), 1 << 20).decode()
            found.add(f"{json.loads(text).splitlines()[0]}@{file.parent.name}")
        return found

    async def assert_whole_and_clean(self) -> None:
        """``verify`` finds every version whole and no part past its grace period unnamed."""
        report = await verify(self.store, self.index, WS)
        assert report.ok, report.problems

    async def close(self) -> None:
        await self.index.close()
        await self.store.close()

    async def __aenter__(self) -> Archive:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()
