"""``repack`` rewrites the versions earlier releases kept whole, in place, and loses none:
run once, run again, killed at every write, or beside a prune.

On a real local store and SQLite index, filled as an earlier release filled
them: each version one object of the bytes as saved, with its metadata.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from bookstore.archiving.maintenance import reindex, verify
from bookstore.archiving.part_collection import find_garbage
from bookstore.archiving.repacking import repack
from bookstore.archiving.version_objects import read_version
from bookstore.cli.main import main
from bookstore.core import keys
from bookstore.core.body import Body
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.history import History
from bookstore.index import IndexDatabase, queries
from bookstore.store.base import Store
from bookstore.store.local import LocalStore
from tests.support.delegating_store import DelegatingStore
from tests.support.killing_store import Killed, KilledAt

WS = "w"
LONG = "# long enough to be a part of its own\n" * 10
SAVED_AT = datetime(2025, 6, 1, tzinfo=timezone.utc)


def notebook(*cells: str) -> bytes:
    cell = {"cell_type": "markdown", "metadata": {}, "source": ""}
    document = {
        "cells": [{**cell, "source": f"{name}\n{LONG}"} for name in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1).encode()


SAVES = [
    ("a.ipynb", notebook("A", "B")),
    ("a.ipynb", notebook("A", "C")),
    ("a.ipynb", notebook("A", "C", "D")),
    ("notes.txt", b"plain text, " * 200),
    ("broken.ipynb", b'{"cells": [ not json'),
]


def open_archive(base: Path) -> tuple[LocalStore, IndexDatabase]:
    return LocalStore(base / "store"), IndexDatabase(f"sqlite+aiosqlite:///{base / 'i.sqlite'}")


async def fill_as_an_earlier_release(base: Path) -> dict[str, bytes]:
    """SAVES stored whole with their metadata, and indexed from the store; by key."""
    store, index = open_archive(base)
    saved = {}
    numbers: dict[str, int] = {}
    try:
        await index.migrate()
        for n, (path, data) in enumerate(SAVES):
            hashed = HashedRecord.of(ArchiveRecord(path, data, SAVED_AT + timedelta(minutes=n)))
            numbers[path] = numbers.get(path, 0) + 1
            key = keys.version_key(WS, path, hashed.queued_time)
            await store.put(key, data, keys.version_metadata(hashed, numbers[path]))
            saved[key] = data
        await reindex(store, index, WS)
    finally:
        await index.close()
        await store.close()
    return saved


async def contents(store: Store, index: IndexDatabase) -> dict[str, bytes]:
    """Every indexed version's bytes, checked against its sha256, by key."""
    history = History(store, index, WS)
    async with index.reading() as session:
        rows = await queries.workspace_versions(session, WS)
    return {row.store_key: await history.read(row) for row in rows}


def forms(base: Path) -> dict[str, str | None]:
    """How each version holds its bytes, read from its metadata file; by its path."""
    found = {}
    top = base / "store" / "meta"
    for meta in (top / WS).rglob("*.json"):
        parsed = keys.parse_version_key(WS, meta.relative_to(top).as_posix()[: -len(".json")])
        if parsed is not None:
            metadata = json.loads(meta.read_text())
            found[parsed.path] = keys.parse_version_metadata(metadata).format
    return found


async def test_versions_kept_whole_are_repacked_in_place_and_read_back_byte_for_byte(
    tmp_path: Path,
) -> None:
    saved = await fill_as_an_earlier_release(tmp_path)
    store, index = open_archive(tmp_path)
    try:
        first = await repack(store, index, WS)
        second = await repack(store, index, WS)
        read_back = await contents(store, index)
        report = await verify(store, index, WS)
        async with index.reading() as session:
            totals = await queries.storage_totals(session, WS)
    finally:
        await index.close()
        await store.close()

    assert (first.repacked, first.kept, first.damaged) == (5, 0, [])
    assert (second.repacked, second.kept) == (0, 5)
    assert read_back == saved
    assert report.ok, report.problems
    assert forms(tmp_path) == {
        "a.ipynb": "packed-1",
        "notes.txt": "zstd-1",
        "broken.ipynb": "zstd-1",
    }
    assert first.bytes_before == sum(map(len, saved.values())) == totals.total_bytes
    assert totals.stored_bytes == first.bytes_after < first.bytes_before / 2


async def test_a_damaged_version_is_left_as_it_is(tmp_path: Path) -> None:
    saved = await fill_as_an_earlier_release(tmp_path)
    damaged = next(key for key in saved if "notes.txt" in key)
    (tmp_path / "store" / "data" / damaged).write_bytes(b"not what was saved")
    store, index = open_archive(tmp_path)
    try:
        report = await repack(store, index, WS)
        left = await store.get(damaged)
    finally:
        await index.close()
        await store.close()
    assert (report.repacked, report.damaged) == (4, [damaged])
    assert (left.data, keys.parse_version_metadata(left.metadata).format) == (
        b"not what was saved",
        None,
    )


async def test_a_repack_killed_at_every_write_loses_nothing_and_finishes_when_run_again(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base"
    saved = await fill_as_an_earlier_release(base)

    async def repack_killed_at(step: int | None) -> int:
        copy = tmp_path / f"killed-at-{step}"
        shutil.copytree(base, copy)
        store, index = open_archive(copy)
        killing = KilledAt(store, "put", step)
        try:
            try:
                await repack(store=killing, index=index, workspace=WS)
            except Killed:
                assert step is not None
            assert await contents(store, index) == saved, f"killed at {step}"
            await repack(store, index, WS)
            assert await contents(store, index) == saved, f"killed at {step}, run again"
            assert (await verify(store, index, WS)).ok
            assert set(forms(copy).values()) == {"packed-1", "zstd-1"}
        finally:
            await index.close()
            await store.close()
        return killing.calls

    steps = await repack_killed_at(None)
    assert steps > len(SAVES)  # the versions, and the parts and epochs a packed one needs
    for step in range(steps):
        await repack_killed_at(step)


async def test_the_local_stores_state_between_metadata_and_bytes_reads_back(
    tmp_path: Path,
) -> None:
    """A repack killed after the local store replaced a version's metadata, before its
    bytes: the object says it is packed and still holds the bytes as saved."""
    saved = await fill_as_an_earlier_release(tmp_path)
    key = next(key for key in saved if key.startswith(f"{WS}/a.ipynb/"))
    meta = tmp_path / "store" / "meta" / f"{key}.json"
    metadata = json.loads(meta.read_text())
    meta.write_text(json.dumps(keys.with_format(metadata, "packed-1", len(saved[key]))))
    store, _ = open_archive(tmp_path)
    try:
        assert await read_version(store, WS, key) == saved[key]
        assert (await find_garbage(store, WS)).unreadable == []  # it names no parts
    finally:
        await store.close()


class PrunedWhileRepacked(DelegatingStore):
    """Prunes a version (its row, then its object) just before repack rewrites it."""

    def __init__(self, inner: Store, index: IndexDatabase, victim: str) -> None:
        super().__init__(inner)
        self.index = index
        self.victim = victim

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        if key == self.victim:
            async with self.index.writing() as session:
                [row] = [
                    r for r in await queries.workspace_versions(session, WS) if r.store_key == key
                ]
                brief = queries.VersionBrief(
                    row.id, row.path, row.number, key, row.queued_at, None, False
                )
                await queries.remove_versions(session, WS, [brief], datetime.now(timezone.utc))
            await self.inner.delete(key)
            async with self.index.writing() as session:
                await queries.forget_pruned(session, [key])
        await super().put(key, data, metadata, overwrite=overwrite)


async def test_a_version_pruned_while_it_is_repacked_does_not_come_back(tmp_path: Path) -> None:
    saved = await fill_as_an_earlier_release(tmp_path)
    victim = next(key for key in saved if "notes.txt" in key)
    store, index = open_archive(tmp_path)
    try:
        await repack(PrunedWhileRepacked(store, index, victim), index, WS)
        left = {key async for key in _keys(store)}
        report = await verify(store, index, WS)
    finally:
        await index.close()
        await store.close()
    assert victim not in left
    assert report.ok, report.problems


async def _keys(store: Store):  # type: ignore[no-untyped-def]
    async for info in store.list(f"{WS}/"):
        yield info.key


def test_the_command_line_repacks_and_says_what_it_saved(tmp_path: Path) -> None:
    import asyncio

    saved = asyncio.run(fill_as_an_earlier_release(tmp_path))
    options = [
        "--root-dir",
        str(tmp_path),
        "--local-store-dir",
        str(tmp_path / "store"),
        "--index-url",
        f"sqlite+aiosqlite:///{tmp_path / 'i.sqlite'}",
        "--workspace-prefix",
        WS,
    ]
    runner = CliRunner()
    dry = runner.invoke(main, [*options, "repack", "--dry-run"])
    done = runner.invoke(main, [*options, "repack", "--json"])
    again = runner.invoke(main, [*options, "repack"])

    total = sum(map(len, saved.values()))
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[-1] == (
        f"would repack 5 versions ({total} bytes); 0 are in the current form (dry run)"
    )
    report = json.loads(done.output)
    assert (report["repacked"], report["bytes_before"], report["damaged"]) == (5, total, [])
    assert 0 < report["bytes_after"] < total
    assert again.output.splitlines()[-1] == (
        "repacked 0 versions: 0 bytes now stored in 0; 5 were in the current form already"
    )
