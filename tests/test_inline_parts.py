"""A small part stays in its version's manifest until a later version repeats it.

The cell being edited changes at every save; writing each of its drafts as a
part of its own would double the requests a save costs. In-process, on a real
local store and SQLite index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from bookstore.archiving.version_objects import INLINE_AT_MOST
from bookstore.core.body import Body
from bookstore.store.base import Store
from tests.support.delegating_store import DelegatingStore
from tests.support.part_archive import Archive, notebook


class CountedPuts(DelegatingStore):
    """Counts the part objects and the version objects written through it."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.parts = 0
        self.versions = 0

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        if "/@parts/" in key:
            self.parts += 1
        elif not key.endswith("epochs.json"):
            self.versions += 1
        await super().put(key, data, metadata, overwrite=overwrite)


def draft(cell: str, words: int) -> str:
    """The name of a cell whose text grows with every save, as it is typed."""
    return cell + " typed" * words


async def test_a_part_seen_once_stays_in_the_manifest_and_is_written_when_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(tmp_path, monkeypatch, inline_at_most=INLINE_AT_MOST) as archive:
        await archive.save("x.ipynb", notebook("A", "B"))
        assert archive.parts() == set(), "seen once: both cells stay in the manifest"

        await archive.save("x.ipynb", notebook("A", "C"))
        assert archive.parts() == {"A@10"}, "A repeated: written; C is new"

        await archive.save("x.ipynb", notebook("A", "C", "D"))
        assert archive.parts() == {"A@10", "C@10"}
        assert await archive.contents() == {
            "x.ipynb": [notebook("A", "B"), notebook("A", "C"), notebook("A", "C", "D")]
        }
        await archive.assert_whole_and_clean()


async def test_a_large_part_is_written_the_first_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = "BIG" + "\n" + "x" * INLINE_AT_MOST
    async with Archive(tmp_path, monkeypatch, inline_at_most=INLINE_AT_MOST) as archive:
        await archive.save("x.ipynb", notebook(big, "small"))

        assert archive.parts() == {"BIG@10"}
        assert await archive.contents() == {"x.ipynb": [notebook(big, "small")]}


async def test_typing_in_one_cell_costs_one_request_a_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(tmp_path, monkeypatch, inline_at_most=INLINE_AT_MOST) as archive:
        counted = CountedPuts(archive.store)
        saved = [notebook("A", "B", draft("C", words)) for words in range(20)]
        for content in saved:
            await archive.save("x.ipynb", content, store=counted)

        # A and B once each, when the second save repeated them; never a draft of C.
        assert (counted.versions, counted.parts) == (20, 2)
        assert archive.parts() == {"A@10", "B@10"}
        assert await archive.contents() == {"x.ipynb": saved}
        await archive.assert_whole_and_clean()


async def test_a_draft_kept_in_a_manifest_is_freed_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Archive(tmp_path, monkeypatch, inline_at_most=INLINE_AT_MOST) as archive:
        for words in range(3):
            await archive.save("x.ipynb", notebook("A", draft("C", words)))
        await archive.save("x.ipynb", notebook("A", draft("C", 2), "D"))
        assert archive.parts() == {"A@10", f"{draft('C', 2)}@10"}

        archive.at_epoch(12)
        assert await archive.prune(keep_last=1) == 3

        assert archive.parts() == {"A@10", f"{draft('C', 2)}@10"}, "the last version names both"
        assert await archive.contents() == {"x.ipynb": [notebook("A", draft("C", 2), "D")]}
        await archive.assert_whole_and_clean()
