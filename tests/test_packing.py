"""Cutting a notebook into a skeleton and shared parts gives back its exact bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookstore.core.packing import MIN_PART_CHARS, Part, join, split

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
LONG = "# a cell long enough to be a part of its own\n" * 8
assert len(LONG) > MIN_PART_CHARS


@st.composite
def notebooks(draw: st.DrawFn) -> dict[str, Any]:
    cells = []
    for number in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["code", "markdown", "raw"]))
        source = draw(st.one_of(TEXT, st.lists(TEXT, max_size=4), TEXT.map(LONG.__add__)))
        cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source}
        if draw(st.booleans()):
            cell["id"] = f"cell-{number}"
        if kind == "code":
            cell["execution_count"] = draw(st.none() | st.integers(1, 99))
            cell["outputs"] = [
                {"output_type": "stream", "name": "stdout", "text": text}
                for text in draw(st.lists(TEXT, max_size=2))
            ]
        if kind == "markdown" and draw(st.booleans()):
            cell["attachments"] = {"a.png": {"image/png": draw(TEXT)}}
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": draw(TEXT)}},
        "nbformat": 4,
        "nbformat_minor": draw(st.integers(0, 5)),
    }


@st.composite
def spellings(draw: st.DrawFn, notebook: dict[str, Any]) -> bytes:
    """One way of writing ``notebook``: indentation, key order, escapes, line ends."""
    text = json.dumps(
        notebook,
        indent=draw(st.sampled_from([None, 0, 1, 2, 4, "\t"])),
        sort_keys=draw(st.booleans()),
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([None, (",", ":"), (", ", ": ")])),
    )
    if draw(st.booleans()):
        text += "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")  # newlines only ever stand between tokens
    return text.encode()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_notebook_joins_back_to_its_exact_bytes(data: st.DataObject) -> None:
    notebook = data.draw(notebooks())
    saved = data.draw(spellings(notebook))
    cut = split(saved)
    assert cut is not None
    assert join(cut.skeleton, cut.parts) == saved
    long_sources = sum(
        isinstance(cell["source"], str) and cell["source"].startswith(LONG)
        for cell in notebook["cells"]
    )
    assert sum(isinstance(piece, Part) for piece in cut.skeleton) >= long_sources
    assert all(len(raw.decode()) >= MIN_PART_CHARS for raw in cut.parts.values())


def test_short_values_stay_in_the_skeleton() -> None:
    cells = [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}]
    cut = split(json.dumps({"cells": cells}).encode())
    assert cut is not None
    assert cut.parts == {}


def test_versions_that_differ_in_one_cell_share_every_other_part() -> None:
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "source": f"x = {n}\n{LONG}",
            "outputs": [],
            "execution_count": n,
        }
        for n in range(10)
    ]
    before = json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1
    )
    cells[4] = {**cells[4], "source": f"x = 'changed'\n{LONG}"}
    after = json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1
    )
    first, second = split(before.encode()), split(after.encode())
    assert first is not None
    assert second is not None
    assert set(second.parts) - set(first.parts) == {
        next(digest for digest, raw in second.parts.items() if b"changed" in raw)
    }


def test_what_is_not_a_notebook_is_kept_whole() -> None:
    for data in (
        b"",
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'{"metadata": {}}',
        b'{"cells": {}}',
        b'{"cells": []} trailing',
        b'{"cells": [',
        '\ufeff{"cells": []}'.encode(),
    ):
        assert split(data) is None, data


def test_a_missing_part_is_named() -> None:
    cell = {"cell_type": "raw", "source": LONG, "metadata": {}}
    cut = split(json.dumps({"cells": [cell]}).encode())
    assert cut is not None
    missing = next(piece for piece in cut.skeleton if isinstance(piece, Part))
    with pytest.raises(KeyError) as raised:
        join(cut.skeleton, {})
    assert raised.value.args == (missing.sha256,)
