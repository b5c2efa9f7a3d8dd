"""Notebook diffs: cell matching, output summaries in words, and what is not a change."""

from __future__ import annotations

import base64
import json
from typing import Any

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from bookstore.core.diff import (
    CellChange,
    DiffLimits,
    NotebookDiff,
    diff_as_dict,
    diff_as_json,
    diff_notebooks,
    render_text,
)
from bookstore.core.errors import LimitExceeded


def ipynb(*cells: Any, **metadata: Any) -> str:
    """A valid nbformat 4.5 notebook (ids required), as the file's text."""
    text: str = nbformat.writes(new_notebook(cells=list(cells), metadata=metadata))
    return text


def legacy_ipynb(*cells: tuple[str, str | list[str]]) -> str:
    """An nbformat 4.4 notebook: cells without ids, sources as nbformat splits them."""
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 4,
            "metadata": {},
            "cells": [
                {"cell_type": cell_type, "metadata": {}, "source": source}
                | ({"execution_count": None, "outputs": []} if cell_type == "code" else {})
                for cell_type, source in cells
            ],
        }
    )


def kinds(diff: NotebookDiff) -> list[tuple[str, int | None, int | None]]:
    return [(cell.kind, cell.old_index, cell.new_index) for cell in diff.cells]


def only_change(diff: NotebookDiff) -> CellChange:
    changes = [cell for cell in diff.cells if cell.kind != "unchanged" or cell.moved]
    assert len(changes) == 1, changes
    return changes[0]


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode()
CELLS = (
    new_markdown_cell("# Analysis", id="intro"),
    new_code_cell("import math", id="imports"),
    new_code_cell("x = math.pi\nprint(x)", id="compute"),
    new_markdown_cell("That is all.", id="outro"),
)


# -- cells ---------------------------------------------------------------------


def test_identical_notebooks_make_an_empty_diff() -> None:
    text = ipynb(*CELLS)
    diff = diff_notebooks(text, text.encode())
    assert diff.is_empty
    assert kinds(diff) == [("unchanged", i, i) for i in range(4)]
    assert all(cell.source_diff == () and cell.outputs is None for cell in diff.cells)
    assert diff.summary() == "no changes"
    assert render_text(diff) == []


def test_added_cell_shows_its_whole_source() -> None:
    extra = new_code_cell("y = 2\nz = 3", id="extra")
    diff = diff_notebooks(ipynb(*CELLS), ipynb(*CELLS[:2], extra, *CELLS[2:]))
    assert kinds(diff) == [
        ("unchanged", 0, 0),
        ("unchanged", 1, 1),
        ("added", None, 2),
        ("unchanged", 2, 3),
        ("unchanged", 3, 4),
    ]
    assert diff.cells[2].source_diff == ("@@ -0,0 +1,2 @@", "+y = 2", "+z = 3")
    assert diff.cells[2].cell_type == "code"
    assert diff.summary() == "1 cell added"
    assert render_text(diff) == ["## cell 3 (code) added", "@@ -0,0 +1,2 @@", "+y = 2", "+z = 3"]


def test_removed_cell_stays_where_it_was() -> None:
    diff = diff_notebooks(ipynb(*CELLS), ipynb(CELLS[0], CELLS[2], CELLS[3]))
    assert kinds(diff) == [
        ("unchanged", 0, 0),
        ("removed", 1, None),
        ("unchanged", 2, 1),
        ("unchanged", 3, 2),
    ]
    assert diff.cells[1].source_diff == ("@@ -1 +0,0 @@", "-import math")
    assert diff.summary() == "1 cell removed"
    assert render_text(diff)[0] == "## old cell 2 (code) removed"


def test_removed_first_cell_comes_first() -> None:
    diff = diff_notebooks(ipynb(*CELLS), ipynb(*CELLS[1:]))
    assert kinds(diff)[0] == ("removed", 0, None)


def test_changed_cell_has_a_unified_diff_without_file_headers() -> None:
    source = "\n".join(f"line {n}" for n in range(1, 10))
    edited = source.replace("line 5", "line five")
    diff = diff_notebooks(
        ipynb(new_code_cell(source, id="a")), ipynb(new_code_cell(edited, id="a"))
    )
    change = only_change(diff)
    assert change.kind == "changed"
    assert (change.old_index, change.new_index) == (0, 0)
    assert change.source_diff == (
        "@@ -3,5 +3,5 @@",
        " line 3",
        " line 4",
        "-line 5",
        "+line five",
        " line 6",
        " line 7",
    )
    assert diff.summary() == "1 cell changed"


def test_counts_in_the_summary() -> None:
    new = ipynb(
        new_markdown_cell("# Analysis, revised", id="intro"),
        CELLS[2],
        new_code_cell("a = 1", id="a"),
        new_code_cell("b = 2", id="b"),
    )
    diff = diff_notebooks(ipynb(*CELLS), new)
    assert diff.summary() == "2 cells added, 2 removed, 1 changed"
    assert (diff.count("added"), diff.count("removed"), diff.count("changed")) == (2, 2, 1)
    assert diff.count("unchanged") == 1


def test_reordered_cells_are_moved_not_removed_and_added() -> None:
    diff = diff_notebooks(ipynb(*CELLS), ipynb(CELLS[0], CELLS[2], CELLS[1], CELLS[3]))
    assert [cell.kind for cell in diff.cells] == ["unchanged"] * 4
    moved = only_change(diff)
    assert moved.moved
    assert not diff.is_empty
    assert diff.summary() == "1 cell moved"
    # Either of the two swapped cells could be the one that moved; the later one is.
    assert (moved.old_index, moved.new_index) == (2, 1)
    assert render_text(diff) == ["## cell 2 (code) moved from old cell 3"]


def test_moved_and_edited_cell_is_one_change() -> None:
    edited = new_code_cell("x = math.tau\nprint(x)", id="compute")
    diff = diff_notebooks(ipynb(*CELLS), ipynb(CELLS[0], edited, CELLS[1], CELLS[3]))
    changed = [cell for cell in diff.cells if cell.kind == "changed"]
    assert len(changed) == 1
    assert changed[0].source_diff == (
        "@@ -1,2 +1,2 @@",
        "-x = math.pi",
        "+x = math.tau",
        " print(x)",
    )
    assert changed[0].moved
    assert diff.summary() == "1 cell changed, 1 moved"
    assert render_text(diff)[0] == "## cell 2 (code) changed, moved from old cell 3"


def test_cells_are_matched_by_id_even_when_sources_are_unrelated() -> None:
    diff = diff_notebooks(
        ipynb(new_code_cell("alpha()", id="same")), ipynb(new_code_cell("omega(1, 2)", id="same"))
    )
    assert kinds(diff) == [("changed", 0, 0)]


def test_cell_type_change() -> None:
    diff = diff_notebooks(
        ipynb(new_markdown_cell("x = 1", id="a")), ipynb(new_code_cell("x = 1", id="a"))
    )
    change = only_change(diff)
    assert (change.kind, change.cell_type, change.old_cell_type) == ("changed", "code", "markdown")
    assert change.source_diff == ()
    assert render_text(diff) == ["## cell 1 (code) changed; was markdown"]


def test_cell_metadata_counts_but_view_state_does_not() -> None:
    before = new_code_cell("x = 1", id="a")
    viewed = new_code_cell("x = 1", id="a", metadata={"scrolled": True, "collapsed": True})
    tagged = new_code_cell("x = 1", id="a", metadata={"tags": ["parameters"]})
    assert diff_notebooks(ipynb(before), ipynb(viewed)).is_empty
    diff = diff_notebooks(ipynb(before), ipynb(tagged))
    assert only_change(diff).metadata_keys == ("tags",)
    assert render_text(diff) == ["## cell 1 (code) changed", "cell metadata changed: tags"]


def test_a_changed_attachment_is_named_not_shown() -> None:
    def cell(payload: str) -> Any:
        attachments = {"chart.png": {"image/png": payload}}
        return new_markdown_cell("![chart](attachment:chart.png)", id="m", attachments=attachments)

    diff = diff_notebooks(ipynb(cell(PNG)), ipynb(cell(PNG[::-1])))
    assert only_change(diff).attachments == ("chart.png",)
    assert render_text(diff) == ["## cell 1 (markdown) changed", "attachments changed: chart.png"]


def test_notebook_metadata() -> None:
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    other = {"name": "julia-1.10", "display_name": "Julia 1.10", "language": "julia"}
    diff = diff_notebooks(ipynb(*CELLS, kernelspec=kernel), ipynb(*CELLS, kernelspec=other))
    assert diff.metadata_changed
    assert diff.metadata_keys == ("kernelspec",)
    assert not diff.is_empty
    assert diff.summary() == "notebook metadata changed"
    assert render_text(diff) == ["## notebook metadata changed: kernelspec"]


# -- notebooks without cell ids (nbformat 4.4) ---------------------------------


def test_cells_without_ids_are_aligned_by_similar_sources() -> None:
    old = legacy_ipynb(
        ("markdown", ["# Load\n", "the data"]),
        ("code", "df = load('data.csv')\ndf.head()"),
        ("code", "plot(df)"),
        ("code", "summary = df.describe()"),
    )
    new = legacy_ipynb(
        ("markdown", "# Load\nthe data"),
        ("code", "df = load('data-2024.csv')\ndf.head()"),
        ("code", "train_model(df, epochs=10)"),
        ("code", "summary = df.describe()"),
    )
    diff = diff_notebooks(old, new)
    assert kinds(diff) == [
        ("unchanged", 0, 0),  # the same source, once as a list of lines, once as one string
        ("changed", 1, 1),
        ("removed", 2, None),
        ("added", None, 2),
        ("unchanged", 3, 3),
    ]
    assert diff.cells[1].source_diff == (
        "@@ -1,2 +1,2 @@",
        "-df = load('data.csv')",
        "+df = load('data-2024.csv')",
        " df.head()",
    )


def test_without_ids_inserted_cells_keep_the_rest_unchanged() -> None:
    old = legacy_ipynb(("code", "a = 1"), ("code", "b = 2"))
    new = legacy_ipynb(("code", "a = 1"), ("markdown", "Note"), ("code", "b = 2"))
    assert kinds(diff_notebooks(old, new)) == [
        ("unchanged", 0, 0),
        ("added", None, 1),
        ("unchanged", 1, 2),
    ]


def test_a_long_notebook_edited_throughout_pairs_every_cell() -> None:
    # Far more cells than the alignment compares exhaustively: near the diagonal only.
    old = [("code", f"result_{n} = compute({n}, scale=2)\nshow(result_{n})") for n in range(150)]
    new = [("code", source.replace("scale=2", "scale=3")) for _, source in old]
    diff = diff_notebooks(legacy_ipynb(*old), legacy_ipynb(*new))
    assert kinds(diff) == [("changed", n, n) for n in range(150)]


def test_ids_on_one_side_only_fall_back_to_similarity() -> None:
    old = legacy_ipynb(("code", "a = 1"), ("code", "b = 2"))
    new = ipynb(new_code_cell("a = 1", id="x"), new_code_cell("b = 3", id="y"))
    assert kinds(diff_notebooks(old, new)) == [("unchanged", 0, 0), ("changed", 1, 1)]


# -- outputs -------------------------------------------------------------------


def test_outputs_added_and_changed_are_described_in_words() -> None:
    before = new_code_cell(
        "show()",
        id="plot",
        execution_count=1,
        outputs=[new_output("stream", name="stdout", text="drawing\n")],
    )
    after = new_code_cell(
        "show()",
        id="plot",
        execution_count=1,
        outputs=[
            new_output("stream", name="stdout", text="drawing again\n"),
            new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        ],
    )
    diff = diff_notebooks(ipynb(before), ipynb(after))
    outputs = only_change(diff).outputs
    assert outputs is not None
    assert (outputs.old_count, outputs.new_count) == (1, 2)
    assert outputs.added == ("image/png", "text/plain")
    assert outputs.changed == ("stream stdout",)
    assert outputs.text == (
        "1 output -> 2 outputs; added image/png, text/plain; stream stdout changed"
    )
    lines = render_text(diff)
    assert lines == ["## cell 1 (code) changed", f"outputs: {outputs.text}"]
    assert not any(PNG[:20] in line or "{" in line for line in lines)


def test_a_changed_image_is_named_by_its_mime_type_only() -> None:
    def cell(payload: str) -> Any:
        data = {"image/png": payload, "text/plain": "<Figure>"}
        return new_code_cell(
            "plot()", id="p", outputs=[new_output("execute_result", data=data, execution_count=1)]
        )

    other = base64.b64encode(b"another image").decode()
    diff = diff_notebooks(ipynb(cell(PNG)), ipynb(cell(other)))
    outputs = only_change(diff).outputs
    assert outputs is not None
    assert outputs.text == "1 output; image/png changed"
    text = "\n".join(render_text(diff))
    assert PNG[:16] not in text
    assert other not in text


def test_outputs_removed_and_errors() -> None:
    error = new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    before = new_code_cell(
        "1 / 0",
        id="e",
        outputs=[new_output("stream", name="stderr", text="warning\n"), error],
    )
    after = new_code_cell("1 / 0", id="e", outputs=[])
    outputs = only_change(diff_notebooks(ipynb(before), ipynb(after))).outputs
    assert outputs is not None
    assert outputs.removed == ("stream stderr", "error ZeroDivisionError")
    assert outputs.text == "2 outputs -> 0 outputs; removed stream stderr, error ZeroDivisionError"


def test_repeated_labels_are_counted() -> None:
    before = new_code_cell("plots()", id="p")
    figures = [new_output("display_data", data={"image/png": PNG}) for _ in range(3)]
    after = new_code_cell("plots()", id="p", outputs=figures)
    outputs = only_change(diff_notebooks(ipynb(before), ipynb(after))).outputs
    assert outputs is not None
    assert outputs.text == "0 outputs -> 3 outputs; added image/png (3)"


def test_added_cell_with_outputs_summarises_them() -> None:
    cell = new_code_cell("print(1)", id="n", outputs=[new_output("stream", text="1\n")])
    diff = diff_notebooks(ipynb(*CELLS), ipynb(*CELLS, cell))
    change = diff.cells[-1]
    assert change.kind == "added"
    assert change.outputs is not None
    assert change.outputs.text == "0 outputs -> 1 output; added stream stdout"


def test_execution_count_alone_is_not_a_change() -> None:
    def cell(count: int) -> Any:
        result = new_output("execute_result", data={"text/plain": "42"}, execution_count=count)
        return new_code_cell("6 * 7", id="answer", execution_count=count, outputs=[result])

    diff = diff_notebooks(ipynb(cell(1)), ipynb(cell(17)))
    assert diff.is_empty
    assert kinds(diff) == [("unchanged", 0, 0)]
    assert diff.summary() == "no changes"


# -- input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "its JSON is invalid"),
        ("{not json", "its JSON is invalid"),
        (b"\x80\x81 not text", "not UTF-8 text"),
        ("[1, 2]", "no list of cells"),
        ('{"cells": "many"}', "no list of cells"),
        ('{"nbformat": 3, "worksheets": []}', "no list of cells"),
        ('{"cells": [42]}', "cell 1 is not a JSON object"),
        ('{"cells": [{"source": "x"}]}', "cell 1 has no cell type"),
        ('{"cells": [{"cell_type": "code", "source": 7}]}', "cell 1 has a source that"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
@pytest.mark.parametrize("side", ["old", "new"])
def test_not_a_notebook_is_a_value_error_with_a_sentence(
    data: bytes | str, words: str, side: str
) -> None:
    valid = ipynb(*CELLS)
    old, new = (data, valid) if side == "old" else (valid, data)
    with pytest.raises(ValueError, match=rf"^The {side} version is not a notebook: ") as caught:
        diff_notebooks(old, new)
    message = str(caught.value)
    assert words in message
    assert message.endswith(".")
    assert "\n" not in message


# -- text ----------------------------------------------------------------------


def test_unicode_sources() -> None:
    before = new_code_cell("π = 3.14159  # ünïcødé\nprint('héllo 🌍')", id="u")
    after = new_code_cell("π = 3.14159  # ünïcødé\nprint('こんにちは 🌏')", id="u")
    diff = diff_notebooks(ipynb(before).encode("utf-8"), ipynb(after).encode("utf-8"))
    assert only_change(diff).source_diff == (
        "@@ -1,2 +1,2 @@",
        " π = 3.14159  # ünïcødé",
        "-print('héllo 🌍')",
        "+print('こんにちは 🌏')",
    )


def test_render_escapes_control_characters() -> None:
    before = new_code_cell("print('plain')", id="t")
    after = new_code_cell("print('\x1b[2J\x1b]0;owned\x07')\r", id="t")
    lines = render_text(diff_notebooks(ipynb(before), ipynb(after)))
    assert "+print('\\x1b[2J\\x1b]0;owned\\x07')\\r" in lines
    assert not any(ch in line for line in lines for ch in "\x1b\x07\r")


def test_trailing_newline_change_is_visible() -> None:
    diff = diff_notebooks(
        ipynb(new_code_cell("x = 1", id="a")), ipynb(new_code_cell("x = 1\n", id="a"))
    )
    assert only_change(diff).source_diff == ("@@ -1 +1,2 @@", " x = 1", "+")


# -- properties ----------------------------------------------------------------

sources = st.text(alphabet="ab \n", max_size=8)
ids = st.sampled_from([f"cell-{n}" for n in range(8)])


def plain_notebook(cells: list[tuple[str | None, str]]) -> str:
    """Cells as (id, source); no id gives an nbformat 4.4-style cell."""
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5 if cells and cells[0][0] is not None else 4,
            "metadata": {},
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}
                | ({"id": cell_id} if cell_id is not None else {})
                for cell_id, source in cells
            ],
        }
    )


def assert_consistent(diff: NotebookDiff, old_count: int, new_count: int) -> None:
    counts = {kind: diff.count(kind) for kind in ("added", "removed", "changed", "unchanged")}
    assert old_count == counts["removed"] + counts["changed"] + counts["unchanged"]
    assert new_count == counts["added"] + counts["changed"] + counts["unchanged"]
    old_seen = [cell.old_index for cell in diff.cells if cell.old_index is not None]
    new_seen = [cell.new_index for cell in diff.cells if cell.new_index is not None]
    assert sorted(old_seen) == list(range(old_count))
    assert new_seen == list(range(new_count))  # every new cell once, in the new order
    for cell in diff.cells:
        assert (cell.kind == "added") == (cell.old_index is None)
        assert (cell.kind == "removed") == (cell.new_index is None)


@given(st.lists(sources, max_size=8), st.lists(sources, max_size=8))
def test_counts_add_up_without_ids(old: list[str], new: list[str]) -> None:
    diff = diff_notebooks(
        plain_notebook([(None, s) for s in old]), plain_notebook([(None, s) for s in new])
    )
    assert_consistent(diff, len(old), len(new))
    assert diff.is_empty == (old == new)
    kept = [c.old_index for c in diff.cells if c.old_index is not None and c.new_index is not None]
    assert kept == sorted(kept)  # without ids nothing moves
    assert not any(cell.moved for cell in diff.cells)


cells_with_ids = st.lists(st.tuples(ids, sources), max_size=8, unique_by=lambda cell: cell[0])


@given(cells_with_ids, cells_with_ids)
def test_counts_add_up_with_ids(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> None:
    diff = diff_notebooks(plain_notebook(list(old)), plain_notebook(list(new)))
    assert_consistent(diff, len(old), len(new))
    shared_ids = {cell_id for cell_id, _ in old} & {cell_id for cell_id, _ in new}
    assert diff.count("changed") + diff.count("unchanged") == len(shared_ids)
    assert diff.is_empty == (old == new)


@given(st.lists(st.tuples(st.sampled_from(["code", "markdown", "raw"]), sources), max_size=8))
def test_a_notebook_compared_with_itself_is_empty(cells: list[tuple[str, str]]) -> None:
    notebook = new_notebook(
        cells=[
            new_code_cell(source, id=f"c{n}")
            if cell_type == "code"
            else new_markdown_cell(source, id=f"c{n}")
            if cell_type == "markdown"
            else nbformat.v4.new_raw_cell(source, id=f"c{n}")
            for n, (cell_type, source) in enumerate(cells)
        ]
    )
    text = json.dumps(notebook)
    diff = diff_notebooks(text, text)
    assert diff.is_empty
    assert diff.summary() == "no changes"
    assert render_text(diff) == []


# -- cost and limits -------------------------------------------------------------------


def test_thousands_of_identical_cells_without_ids_pair_in_linear_time() -> None:
    # Pairing by SequenceMatcher alone took 25 s for 16,000; the time limit would stop it.
    cells = [("markdown", "Note")] * 16_000
    diff = diff_notebooks(
        legacy_ipynb(*cells), legacy_ipynb(*cells[:-1]), DiffLimits(max_seconds=5.0)
    )
    assert diff.summary() == "1 cell removed"
    assert kinds(diff)[-1] == ("removed", 15_999, None)


def test_long_notebooks_without_ids_still_pair_moved_and_changed_cells() -> None:
    # Past a million comparisons: common ends, then cells found once on each side.
    old = [("code", f"step_{n}()") for n in range(1_500)]
    new = [
        *old[:700],
        ("code", "inserted()"),
        *old[700:1_400],
        ("code", "step_1400(x)"),
        *old[1_401:],
    ]
    diff = diff_notebooks(legacy_ipynb(*old), legacy_ipynb(*new))
    assert diff.summary() == "1 cell added, 1 changed"
    assert only_change_of(diff, "added").new_index == 700
    assert only_change_of(diff, "changed").old_index == 1_400


def only_change_of(diff: NotebookDiff, kind: str) -> CellChange:
    [change] = [cell for cell in diff.cells if cell.kind == kind]
    return change


def test_a_very_long_source_is_diffed_in_one_hunk() -> None:
    old = "\n".join(["x = 1"] * 12_000)
    new = old.replace("x = 1", "x = 2", 1)[::-1].replace("1 = x", "3 = x", 1)[::-1]
    diff = diff_notebooks(legacy_ipynb(("code", old)), legacy_ipynb(("code", new)))
    lines = only_change(diff).source_diff
    assert lines[0] == "@@ -1,12000 +1,12000 @@"
    assert lines[1:3] == ("-x = 1", "-x = 1")
    assert lines[-2:] == ("+x = 1", "+x = 3")


def test_a_short_cut_hunk_reads_as_difflib_writes_it() -> None:
    old = [f"line {n}" for n in range(10_001)]
    new = [*old[:5_000], "changed", *old[5_001:]]
    diff = diff_notebooks(
        legacy_ipynb(("code", "\n".join(old))), legacy_ipynb(("code", "\n".join(new)))
    )
    assert only_change(diff).source_diff == (
        "@@ -4999,5 +4999,5 @@",
        " line 4998",
        " line 4999",
        "-line 5000",
        "+changed",
        " line 5001",
        " line 5002",
    )


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (DiffLimits(max_bytes=100), "the old version is 0.0 MB, and bookstore compares"),
        (DiffLimits(max_cells=3), "the new version has 4 cells, and bookstore compares"),
        (DiffLimits(max_seconds=0), "takes longer than 0 seconds, the most bookstore spends"),
    ],
)
def test_limits_are_refused_in_words(limits: DiffLimits, words: str) -> None:
    small, large = ipynb(*CELLS[:3]), ipynb(*CELLS)
    with pytest.raises(LimitExceeded, match=words):
        diff_notebooks(small, large, limits)


def test_the_json_made_a_cell_at_a_time_is_json_dumps_of_the_dict() -> None:
    diff = diff_notebooks(ipynb(*CELLS), ipynb(*CELLS[1:], new_code_cell("y", id="y")))
    head = {"path": "a.ipynb", "from": 1, "to": None}
    assert diff_as_json(diff, head) == json.dumps(head | diff_as_dict(diff))
    assert diff_as_dict(diff) is not diff_as_dict(diff)  # each caller gets its own dict
