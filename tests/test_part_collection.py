"""Prune frees the parts no version names, and never one a version still needs.

In-process, on a real local store and SQLite index, with the epoch clock moved
by the test (``version_objects.clock``): the races the protocol guards against
(``docs/storage.md``) are set up step by step instead of hoped for. Two real
servers racing a real prune are in ``test_part_collection_e2e.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
import zstandard

from bookstore.archiving.maintenance import (
    reindex,
    verify,
)
from bookstore.archiving.part_collection import collect_parts, find_garbage
from bookstore.core import keys
from bookstore.core.body import Body
from bookstore.core.epochs import Epochs
from bookstore.core.errors import CorruptVersion
from bookstore.core.packing import split
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.core.version_format import compress
from bookstore.history import History
from bookstore.index import Version, queries
from bookstore.store.base import Store
from tests.support.delegating_store import DelegatingStore
from tests.support.killing_store import Killed, KilledAt
from tests.support.part_archive import LONG, SAVED_AT, WS, Archive, notebook


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


async def test_parts_no_version_names_are_freed_once_their_epoch_is_two_epochs_old(
    archive_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save("x.ipynb", notebook("A", "B"))
        await archive.save("x.ipynb", notebook("A", "C"))
        await archive.save("x.ipynb", notebook("A", "D"))
        assert archive.parts() == {"A@10", "B@10", "C@10", "D@10"}

        archive.at_epoch(11)
        assert await archive.prune() == 2
        assert archive.parts() == {"A@10", "B@10", "C@10", "D@10"}, "still in its grace period"
        await archive.assert_whole_and_clean()

        archive.at_epoch(12)
        assert await archive.prune() == 0
        assert archive.parts() == {"A@10", "D@10"}
        assert await archive.contents() == {"x.ipynb": [notebook("A", "D")]}
        await archive.assert_whole_and_clean()


async def test_verify_names_a_part_left_past_its_grace_period(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save("x.ipynb", notebook("A", "B"))
        await archive.save("x.ipynb", notebook("A"))
        archive.at_epoch(11)
        await archive.prune()  # B is unnamed, and kept: its epoch is not collectable yet
        archive.at_epoch(12)

        report = await verify(archive.store, archive.index, WS)

        assert [(problem.kind, problem.detail) for problem in report.problems] == [
            ("orphan", "a part no version names, past its grace period; the next prune deletes it")
        ]
        assert "/@parts/10/" in report.problems[0].store_key


class PausedVersionWrites(DelegatingStore):
    """Holds every version object's put (not a part's) until ``release`` is set."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        if "/@parts/" not in key:
            self.arrived.set()
            await self.release.wait()
        await super().put(key, data, metadata, overwrite=overwrite)


async def test_a_part_reused_by_a_version_still_being_written_survives_a_prune(
    archive_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save("x.ipynb", notebook("A", "B"))
        await archive.save("x.ipynb", notebook("C"))
        paused = PausedVersionWrites(archive.store)
        writer = asyncio.create_task(archive.save("y.ipynb", notebook("A", "E"), store=paused))
        await asyncio.wait_for(paused.arrived.wait(), 10)  # A reused, E written, no manifest yet

        # The latest moment the protocol allows a prune beside this writer: the next epoch.
        archive.at_epoch(11)
        assert await archive.prune() == 1  # x's first version, the only one naming A
        assert "A@10" in archive.parts()
        paused.release.set()
        await asyncio.wait_for(writer, 10)

        archive.at_epoch(12)
        await archive.prune()
        assert archive.parts() == {"A@10", "C@10", "E@10"}
        assert await archive.contents() == {
            "x.ipynb": [notebook("C")],
            "y.ipynb": [notebook("A", "E")],
        }
        await archive.assert_whole_and_clean()


class EpochEndsDuringParts(DelegatingStore):
    """Moves the clock to the next epoch while the first part is written."""

    def __init__(self, inner: Store, archive: Archive) -> None:
        super().__init__(inner)
        self.archive = archive
        self.moved = False

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        await super().put(key, data, metadata, overwrite=overwrite)
        if "/@parts/" in key and not self.moved:
            self.moved = True
            self.archive.at_epoch(11)


async def test_a_version_whose_epoch_ends_while_its_parts_are_written_is_written_in_the_next(
    archive_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save(
            "x.ipynb", notebook("A", "B"), store=EpochEndsDuringParts(archive.store, archive)
        )

        assert archive.parts() >= {"A@11", "B@11"}
        archive.at_epoch(13)
        await archive.prune()
        assert archive.parts() == {"A@11", "B@11"}
        assert await archive.contents() == {"x.ipynb": [notebook("A", "B")]}


async def test_an_unreadable_manifest_stops_every_part_from_being_freed(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save("x.ipynb", notebook("A", "B"))
        await archive.save("x.ipynb", notebook("C"))
        await archive.save("x.ipynb", notebook("D"))
        async with archive.index.reading() as session:
            damaged = (await queries.workspace_versions(session, WS))[-1].store_key
        (archive.base / "store" / "data" / damaged).write_bytes(b"not a manifest")
        archive.at_epoch(12)

        garbage = await find_garbage(archive.store, WS)
        freed = await collect_parts(archive.store, WS)

        assert (garbage.parts, garbage.unreadable) == ([], [damaged])
        assert freed.parts == []
        assert (freed.blocked() or "").startswith("no part was freed: 1 versions cannot be read")
        assert archive.parts() == {"A@10", "B@10", "C@10", "D@10"}


async def fill(archive: Archive) -> None:
    """Two paths whose versions share parts across paths and across versions."""
    await archive.save("x.ipynb", notebook("A", "B"))
    await archive.save("y.ipynb", notebook("A", "C"))
    await archive.save("x.ipynb", notebook("A", "D"))
    await archive.save("y.ipynb", notebook("B", "E"))
    await archive.save("x.ipynb", notebook("F"))


async def test_a_prune_killed_at_every_step_loses_nothing_and_leaves_no_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = await Archive(tmp_path / "base", monkeypatch).open()
    await fill(base)
    await base.close()
    expected = {"x.ipynb": [notebook("F")], "y.ipynb": [notebook("B", "E")]}

    async def prune_killed_at(step: int | None) -> int:
        """Prune a copy of ``base``, killed at ``step``, then again; how many deletes
        the first run made."""
        copy = tmp_path / f"killed-at-{step}"
        shutil.copytree(base.base, copy)
        archive = await Archive(copy, monkeypatch).open()
        archive.at_epoch(12)
        killing = KilledAt(archive.store, "delete", step)
        try:
            await archive.prune(store=killing)
        except Killed:
            assert step is not None
        await archive.prune()
        assert await archive.contents() == expected, f"killed at step {step}"
        assert archive.parts() == {"B@10", "E@10", "F@10"}, f"killed at step {step}"
        await archive.assert_whole_and_clean()
        await archive.close()
        return killing.calls

    steps = await prune_killed_at(None)
    assert steps == 3 + 3  # three versions, then three parts (A, C, D)
    for step in range(steps):
        await prune_killed_at(step)


def test_epochs_are_read_from_the_store_and_refuse_nonsense() -> None:
    assert Epochs.from_json(b'{"seconds": 2}') == Epochs(2)
    for bad in (b"", b"[]", b'{"seconds": 0}', b'{"seconds": 1.5}', b'{"seconds": true}'):
        with pytest.raises(ValueError, match="epoch"):
            Epochs.from_json(bad)
    epochs = Epochs(10)
    assert (epochs.of(0), epochs.of(9.99), epochs.of(10)) == (0, 0, 1)
    assert not epochs.collectable(5, now=69.9)
    assert epochs.collectable(5, now=70)


async def test_a_part_kept_in_other_compressed_bytes_is_reused_as_it_is(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another server's zstd build may compress a part to other bytes: its key names
    what it holds, so the save goes on."""
    async with Archive(archive_dir, monkeypatch) as archive:
        content = notebook("A")
        cut = split(content)
        assert cut is not None
        [(digest, raw)] = cut.parts.items()
        other = zstandard.ZstdCompressor(level=19, write_checksum=True).compress(raw)
        assert other != compress(raw)
        await archive.store.put(keys.part_key(WS, 10, digest), other, {})

        await archive.save("x.ipynb", content)

        assert await archive.contents() == {"x.ipynb": [content]}


async def write_version(archive: Archive, manifest: bytes, size: int) -> Version:
    """A packed version object holding ``manifest`` and saying it saved ``size`` bytes,
    indexed as such (its sha256 is of nothing that will ever be read back)."""
    record = HashedRecord.of(ArchiveRecord("hostile.ipynb", b"x" * size, SAVED_AT))
    key = keys.version_key(WS, "hostile.ipynb", SAVED_AT)
    await archive.store.put(key, manifest, keys.version_metadata(record, 1, "packed-1"))
    await reindex(archive.store, archive.index, WS)
    async with archive.index.reading() as session:
        rows = await queries.workspace_versions(session, WS)
    [row] = [row for row in rows if row.store_key == key]
    return row


async def test_a_manifest_naming_one_part_a_million_times_is_damaged_not_obeyed(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        raw = LONG.encode() * 4
        digest = hashlib.sha256(raw).hexdigest()
        await archive.store.put(keys.part_key(WS, 10, digest), compress(raw), {})
        skeleton = [{"part": digest}] * 30_000  # within what a manifest may hold
        manifest = compress(json.dumps({"epoch": 10, "skeleton": skeleton}).encode())
        row = await write_version(archive, manifest, 1_000_000)

        with pytest.raises(CorruptVersion, match="would join to more than the 1000000 bytes"):
            await History(archive.store, archive.index, WS).read(row)


async def test_a_manifest_nested_too_deep_is_damaged_and_crashes_no_prune(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(archive_dir, monkeypatch) as archive:
        await archive.save("x.ipynb", notebook("A"))
        await archive.save("x.ipynb", notebook("B"))
        row = await write_version(archive, compress(b"[" * 200_000 + b"]" * 200_000), 1_000_000)
        archive.at_epoch(12)

        with pytest.raises(CorruptVersion, match="damaged in the store"):
            await History(archive.store, archive.index, WS).read(row)
        freed = await collect_parts(archive.store, WS)
        assert (freed.parts, freed.unreadable) == ([], [row.store_key])
