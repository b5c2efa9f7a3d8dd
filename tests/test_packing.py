"""Cutting a notebook into a skeleton and shared parts gives back its exact bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookstore.core.packing import Part, join, split

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def notebooks(draw: st.DrawFn) -> dict[str, Any]:
    cells = []
    for number in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["code", "markdown", "raw"]))
        source = draw(st.one_of(TEXT, st.lists(TEXT, max_size=4)))
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
    kept = sum(
        1
        for cell in notebook["cells"]
        for name in ("source", "outputs", "attachments")
        if name in cell
    )
    assert sum(isinstance(piece, Part) for piece in cut.skeleton) == kept


def test_versions_that_differ_in_one_cell_share_every_other_part() -> None:
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "source": f"x = {n}",
            "outputs": [],
            "execution_count": n,
        }
        for n in range(10)
    ]
    before = json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1
    )
    cells[4] = {**cells[4], "source": "x = 'changed'"}
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
    cut = split(b'{"cells": [{"cell_type": "raw", "source": "a", "metadata": {}}]}')
    assert cut is not None
    missing = next(piece for piece in cut.skeleton if isinstance(piece, Part))
    with pytest.raises(KeyError) as raised:
        join(cut.skeleton, {})
    assert raised.value.args == (missing.sha256,)
