"""Our diff in nbdime's format: applied to the base with nbdime's patch semantics, it gives
the new notebook, on many generated pairs of notebooks.

"The new notebook" is as the engine compares notebooks: execution counts, view-state
cell metadata and cell ids are no change to it, so they are not in the diff either,
and the comparison leaves them out; so does an empty mapping against a missing one.
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bookstore.core.diff import VOLATILE_CELL_METADATA, diff_notebooks
from bookstore.core.nbdime_format import nbdime_diff, nbformat_reads
from tests.support.nbdime_patch import patch, split_lines

# -- notebooks ---------------------------------------------------------------------

LINES = ["import os", "x = 1", "print(x)", "", "# a note", "y = x + 1", "    pass", "z"]
ENDINGS = ["\n", "\n", "\n", "\r\n", "\r"]


@st.composite
def texts(draw: st.DrawFn, most: int = 5) -> Any:
    """A multiline string, as one string or as nbformat's list of lines."""
    lines = draw(st.lists(st.sampled_from(LINES), max_size=most))
    endings = draw(st.lists(st.sampled_from(ENDINGS), min_size=len(lines), max_size=len(lines)))
    text = "".join(line + ending for line, ending in zip(lines, endings, strict=True))
    if lines and draw(st.booleans()):
        text = text.rstrip("\r\n")  # no ending on the last line
    return text.splitlines(keepends=True) if draw(st.booleans()) else text


@st.composite
def outputs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["stream", "execute_result", "display_data", "error"]))
    if kind == "stream":
        name = draw(st.sampled_from(["stdout", "stderr"]))
        return {"output_type": "stream", "name": name, "text": draw(texts(3))}
    if kind == "error":
        ename = draw(st.sampled_from(["ValueError", "KeyError"]))
        return {"output_type": "error", "ename": ename, "evalue": "x", "traceback": ["t"]}
    data = {"text/plain": draw(texts(2))}
    if draw(st.booleans()):
        data["image/png"] = draw(st.sampled_from(["iVBORw0KGgo=", "AAAA"]))
    if draw(st.booleans()):
        data["application/json"] = {"a": draw(st.integers(0, 2))}
    output = {"output_type": kind, "data": data, "metadata": {}}
    if kind == "execute_result":
        output["execution_count"] = draw(st.integers(1, 9))
    return output


METADATA = st.dictionaries(
    st.sampled_from(["tags", "collapsed", "scrolled", "editable", "jupyter"]),
    st.sampled_from([True, False, ["a"], {"source_hidden": True}]),
    max_size=3,
)


@st.composite
def cells(draw: st.DrawFn, cell_type: str | None = None) -> dict[str, Any]:
    cell_type = cell_type or draw(st.sampled_from(["code", "code", "markdown", "raw"]))
    cell: dict[str, Any] = {"cell_type": cell_type, "metadata": draw(METADATA)}
    cell["source"] = draw(texts())
    if cell_type == "code":
        cell["execution_count"] = draw(st.none() | st.integers(1, 99))
        cell["outputs"] = draw(st.lists(outputs(), max_size=3))
    elif cell_type == "markdown" and draw(st.booleans()):
        cell["attachments"] = {"a.png": {"image/png": draw(st.sampled_from(["AAAA", "BBBB"]))}}
    return cell


@st.composite
def edited(draw: st.DrawFn, cell: dict[str, Any]) -> dict[str, Any]:
    """``cell`` after a person worked on it: each part kept, or changed."""
    cell = json.loads(json.dumps(cell))
    if draw(st.booleans()):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = source + draw(st.sampled_from(LINES)) + "\n"
    if cell["cell_type"] == "code":
        cell["execution_count"] = draw(st.none() | st.integers(1, 99))
        if draw(st.booleans()):
            cell["outputs"] = draw(st.lists(outputs(), max_size=3))
    if draw(st.booleans()):
        cell["metadata"] = draw(METADATA)
    if draw(st.integers(0, 9)) == 0:  # its type changed
        if cell["cell_type"] == "code":
            cell["cell_type"] = "markdown"
            del cell["outputs"], cell["execution_count"]
        else:
            cell["cell_type"] = "code"
            cell.pop("attachments", None)
            cell.update(outputs=[], execution_count=None)
    return cell


def notebook(cell_list: list[dict[str, Any]], metadata: dict[str, Any]) -> dict[str, Any]:
    return {"cells": cell_list, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


NOTEBOOK_METADATA = st.dictionaries(
    st.sampled_from(["kernelspec", "language_info", "title"]),
    st.sampled_from([{"name": "python3"}, {"name": "ir"}, "x"]),
    max_size=2,
)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An old notebook and a new one made from it: cells kept, edited, removed, added,
    moved; with cell ids on every cell, on none, or on some."""
    old_cells = draw(st.lists(cells(), max_size=7))
    ids = draw(st.sampled_from(["all", "none", "some"]))
    for number, cell in enumerate(old_cells):
        if ids == "all" or (ids == "some" and draw(st.booleans())):
            cell["id"] = f"old-{number}"
    new_cells = []
    for cell in old_cells:
        action = draw(st.sampled_from(["keep", "keep", "edit", "edit", "remove"]))
        if action != "remove":
            new_cells.append(cell if action == "keep" else draw(edited(cell)))
    for number in range(draw(st.integers(0, 3))):
        added = draw(cells())
        if ids == "all" or (ids == "some" and draw(st.booleans())):
            added["id"] = f"new-{number}"
        new_cells.insert(draw(st.integers(0, len(new_cells))), added)
    if draw(st.integers(0, 3)) == 0:
        new_cells = draw(st.permutations(new_cells))
    if draw(st.booleans()):  # a re-run: every count changes, nothing else
        for cell in new_cells:
            if cell["cell_type"] == "code":
                cell["execution_count"] = draw(st.integers(1, 99))
    old_metadata = draw(NOTEBOOK_METADATA)
    new_metadata = draw(st.just(old_metadata) | NOTEBOOK_METADATA)
    return notebook(old_cells, old_metadata), notebook(new_cells, new_metadata)


# -- comparing -----------------------------------------------------------------------


def as_compared(document: dict[str, Any]) -> dict[str, Any]:
    """The notebook without what the engine does not count as a change."""
    compared = []
    for cell in document["cells"]:
        cell = {k: v for k, v in cell.items() if k not in ("id", "execution_count")}
        cell["metadata"] = {
            k: v for k, v in cell.get("metadata", {}).items() if k not in VOLATILE_CELL_METADATA
        }
        if "outputs" in cell:
            cell["outputs"] = [_as_compared_output(output) for output in cell["outputs"]]
        if not cell.get("attachments"):
            cell.pop("attachments", None)
        compared.append(cell)
    return {**document, "cells": compared}


def _as_compared_output(output: dict[str, Any]) -> dict[str, Any]:
    """An output without its count; a result is compared as the display of the same data
    (the engine reads both as one rich output: the data is what changed or not)."""
    compared = {k: v for k, v in output.items() if k != "execution_count"}
    if compared.get("output_type") == "execute_result":
        compared["output_type"] = "display_data"
    return compared


def converted(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The base and diff the server sends for ``old`` and ``new``, through JSON as sent."""
    base, target = nbformat_reads(old), nbformat_reads(new)
    difference = diff_notebooks(json.dumps(old), json.dumps(new))
    answer = json.loads(json.dumps({"base": base, "diff": nbdime_diff(base, target, difference)}))
    return answer["base"], answer["diff"]


def assert_applies(old: dict[str, Any], new: dict[str, Any]) -> list[Any]:
    base, diff = converted(old, new)
    assert as_compared(patch(base, diff)) == as_compared(nbformat_reads(new))
    return diff


# -- the tests -----------------------------------------------------------------------

EXAMPLES = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@EXAMPLES
@given(pairs())
def test_the_diff_applied_to_the_base_gives_the_new_notebook(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    assert_applies(*pair)


def _code_cell(*outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "metadata": {},
        "source": "",
        "execution_count": None,
        "outputs": list(outputs),
    }


_SHOWN = {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}
_RESULT = {**_SHOWN, "output_type": "execute_result", "execution_count": 1}


@EXAMPLES
@given(
    st.lists(cells(), max_size=5).map(lambda c: notebook(c, {})),
    st.lists(cells(), max_size=5).map(lambda c: notebook(c, {})),
)
@example(  # the same data, shown as a result and then as a display
    old=notebook([_code_cell(_SHOWN, _RESULT), _code_cell()], {}),
    new=notebook([_code_cell(_SHOWN, _SHOWN)], {}),
)
def test_the_diff_of_unrelated_notebooks_applies_too(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert_applies(old, new)


@EXAMPLES
@given(pairs())
def test_a_notebook_compared_with_itself_has_an_empty_diff(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, _ = pair
    assert converted(old, old)[1] == []


@settings(max_examples=200, deadline=None)
@given(st.lists(cells(), max_size=5).map(lambda c: notebook(c, {}) | {"nbformat_minor": 4}))
def test_the_base_is_the_notebook_as_nbformat_reads_it(document: dict[str, Any]) -> None:
    found: dict[str, Any] = {}  # whether nbformat would validate it does not matter here
    text = json.dumps(document)
    read = nbformat.reads(text, as_version=nbformat.NO_CONVERT, capture_validation_error=found)
    assert nbformat_reads(document) == json.loads(json.dumps(read))
    assert all(isinstance(cell["source"], str) for cell in nbformat_reads(document)["cells"])


def code(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": source, "execution_count": None}


def test_an_edited_line_is_one_line_removed_and_added_at_its_index() -> None:
    old = notebook([code("a = 1\nb = 2\nc = 3\n") | {"outputs": []}], {})
    new = notebook([code("a = 1\nb = 20\nc = 3\n") | {"outputs": []}], {})
    diff = assert_applies(old, new)
    source = [{"op": "addrange", "key": 1, "valuelist": ["b = 20\n"]}]
    source.append({"op": "removerange", "key": 1, "length": 1})
    cell_patch = [{"op": "patch", "key": "source", "diff": source}]
    cells_patch = [{"op": "patch", "key": 0, "diff": cell_patch}]
    assert diff == [{"op": "patch", "key": "cells", "diff": cells_patch}]


def test_added_and_removed_cells_are_ranges_at_base_positions() -> None:
    kept = [code(f"cell {n}") | {"outputs": []} for n in range(3)]
    old = notebook([kept[0], code("removed()") | {"outputs": []}, kept[1], kept[2]], {})
    new = notebook([kept[0], kept[1], code("added()") | {"outputs": []}, kept[2]], {})
    [cells_entry] = assert_applies(old, new)
    assert [(e["op"], e["key"]) for e in cells_entry["diff"]] == [
        ("removerange", 1),
        ("addrange", 3),
    ]


def test_a_moved_cell_is_removed_and_added_and_a_rerun_is_no_change() -> None:
    cells_ = [code(f"cell {n}") | {"outputs": [], "id": f"c{n}"} for n in range(3)]
    moved = [cells_[2], cells_[0], cells_[1]]
    rerun = [cell | {"execution_count": 7} for cell in cells_]
    [cells_entry] = assert_applies(notebook(cells_, {}), notebook(moved, {}))
    assert [(e["op"], e["key"]) for e in cells_entry["diff"]] == [
        ("addrange", 0),
        ("removerange", 2),
    ]
    assert assert_applies(notebook(cells_, {}), notebook(rerun, {})) == []


def test_lines_split_as_nbdime_splits_them() -> None:
    assert split_lines("a\r\nb\rc\nd") == ["a\r\n", "b\r", "c\n", "d"]
    assert split_lines("") == []
