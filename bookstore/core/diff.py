"""Notebook-aware diffs of two versions, in words a terminal can show.

A line diff of two ``.ipynb`` files is mostly noise: JSON punctuation, base64
images and execution counts. This module compares notebooks as cells instead,
in the spirit of nbdime's summary but with no dependency beyond the standard
library, and with no I/O, so the command line, the server and tests share it.

Decisions, so the results are predictable:

* **Matching cells.** When every cell on both sides has an ``id`` (nbformat
  4.5 and later) and the ids are unique, cells are paired by id, so a cell
  that moved is reported as moved rather than removed and added. Otherwise
  cells are aligned in order with :class:`difflib.SequenceMatcher` over their
  sources; within a stretch that differs, an old and a new cell are the same
  (changed) cell when their sources are similar (SequenceMatcher ratio >= 0.5
  over characters, or over lines when both are longer than about 300
  characters), else the old one is removed and the new one added.
* **Order.** Changes follow the new notebook's order; a removed cell comes
  right after the cell it followed in the old notebook.
* **What counts as a change.** The source, the cell type, the outputs, the
  cell's attachments, and its metadata other than view state and timings
  (``collapsed``, ``scrolled``, ``jupyter``, ``execution``, ``ExecuteTime``,
  ``papermill``, ``trusted``). **Execution counts never do**: re-running a cell
  that prints the same thing is noise, while a run whose output differs is
  reported through its outputs. A cell that only moved keeps the kind
  ``"unchanged"`` with ``moved=True``, and still makes the diff non-empty.
* **Outputs are described, never shown**: counts, MIME types, stream names and
  exception names, so no base64 or JSON reaches a terminal.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

from bookstore.core.notebook import read_notebook_json, source_text

__all__ = [
    "SIMILARITY_THRESHOLD",
    "CellChange",
    "ChangeKind",
    "NotebookDiff",
    "OutputSummary",
    "diff_as_dict",
    "diff_notebooks",
    "render_text",
]

ChangeKind = Literal["added", "removed", "changed", "unchanged"]

#: Sources at least this similar (difflib ratio) are one cell that changed.
SIMILARITY_THRESHOLD = 0.5

#: Context lines around each change in a source diff.
_CONTEXT_LINES = 2

#: Cell metadata that records how a cell was viewed or how long it ran, not
#: what it is; changing it alone does not change the cell.
_VOLATILE_CELL_METADATA = frozenset(
    {"collapsed", "scrolled", "jupyter", "execution", "ExecuteTime", "papermill", "trusted"}
)

#: Above this product of lengths (two sources of about 300 characters), sources
#: are only compared line by line: matching characters costs milliseconds.
_MAX_CHARACTER_COMPARISON = 100_000

#: Most source comparisons made to align one stretch of differing cells; a
#: longer stretch only compares cells near the diagonal.
_MAX_CELL_COMPARISONS = 2_000


# -- results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputSummary:
    """How a cell's outputs changed, in words: counts, MIME types, stream names.

    ``added``, ``removed`` and ``changed`` hold labels such as ``"image/png"``,
    ``"stream stdout"`` or ``"error ValueError"``, once per occurrence; output
    data itself is never kept.
    """

    old_count: int
    new_count: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """One line, e.g. ``"1 output -> 2 outputs; added image/png; stream stdout changed"``."""
        if self.old_count == self.new_count:
            parts = [_plural(self.new_count, "output")]
        else:
            parts = [f"{_plural(self.old_count, 'output')} -> {_plural(self.new_count, 'output')}"]
        if self.added:
            parts.append(f"added {_labels(self.added)}")
        if self.removed:
            parts.append(f"removed {_labels(self.removed)}")
        if self.changed:
            parts.append(f"{_labels(self.changed)} changed")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class CellChange:
    """What happened to one cell between the two versions.

    Indices are 0-based positions in the old and new notebook (``None`` on the
    side where the cell does not exist). ``cell_type`` is the new type, or the
    old one for a removed cell; ``old_cell_type`` is set only when the type
    changed. ``source_diff`` holds unified diff lines (hunk headers included,
    file headers not); an added or removed cell's diff shows its whole source.
    ``outputs`` is ``None`` when the outputs are the same on both sides.
    ``metadata_keys`` and ``attachments`` name what changed in a cell kept on
    both sides. ``moved`` is true when, matched by id, the cell changed place
    relative to the others.
    """

    kind: ChangeKind
    old_index: int | None
    new_index: int | None
    cell_type: str
    source_diff: tuple[str, ...] = ()
    outputs: OutputSummary | None = None
    moved: bool = False
    old_cell_type: str | None = None
    metadata_keys: tuple[str, ...] = ()
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NotebookDiff:
    """Every cell of both versions, in the new notebook's order, and what changed.

    ``metadata_keys`` names the top-level notebook metadata entries that differ
    (``kernelspec``, ``language_info``, ...); ``metadata_changed`` says whether
    there are any.
    """

    cells: tuple[CellChange, ...]
    metadata_changed: bool = False
    metadata_keys: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the two versions hold the same notebook (execution counts aside)."""
        return not self.metadata_changed and all(
            cell.kind == "unchanged" and not cell.moved for cell in self.cells
        )

    def count(self, kind: ChangeKind) -> int:
        """How many cells have this kind of change."""
        return sum(1 for cell in self.cells if cell.kind == kind)

    @property
    def moved(self) -> int:
        """How many cells changed place (whatever else happened to them)."""
        return sum(1 for cell in self.cells if cell.moved)

    def summary(self) -> str:
        """One line, e.g. ``"2 cells added, 1 removed, 3 changed"``, or ``"no changes"``."""
        counts = [
            (self.count("added"), "added"),
            (self.count("removed"), "removed"),
            (self.count("changed"), "changed"),
            (self.moved, "moved"),
        ]
        parts = [f"{number} {word}" for number, word in counts if number]
        if parts:  # the first count names its noun: "1 cell added, 2 changed"
            number, word = next((number, word) for number, word in counts if number)
            parts[0] = f"{_plural(number, 'cell')} {word}"
        text = ", ".join(parts)
        if self.metadata_changed:
            text = f"{text}; notebook metadata changed" if text else "notebook metadata changed"
        return text or "no changes"


# -- the diff ------------------------------------------------------------------


def diff_notebooks(old: bytes | str, new: bytes | str) -> NotebookDiff:
    """Compare two notebooks given as ``.ipynb`` JSON.

    Raises :class:`ValueError`, with a sentence naming the side, when either is
    not an nbformat 4 notebook.
    """
    old_notebook = _load(old, "old")
    new_notebook = _load(new, "new")
    old_cells, new_cells = old_notebook.cells, new_notebook.cells

    if _ids_usable(old_cells) and _ids_usable(new_cells):
        pairs = _match_by_id(old_cells, new_cells)
    else:
        pairs = _match_by_similarity(old_cells, new_cells)
    changes = [
        _cell_change(old_cells, new_cells, old_index, new_index, moved)
        for old_index, new_index, moved in _in_new_order(len(old_cells), len(new_cells), pairs)
    ]
    metadata_keys = _changed_keys(old_notebook.metadata, new_notebook.metadata)
    return NotebookDiff(tuple(changes), bool(metadata_keys), metadata_keys)


def diff_as_dict(diff: NotebookDiff) -> dict[str, Any]:
    """The diff as plain JSON-ready data, with its one-line summary."""
    return {"summary": diff.summary(), **asdict(diff)}


def render_text(diff: NotebookDiff) -> list[str]:
    """Plain lines for a terminal: a ``## cell N (type) kind`` header per change,
    then its source diff (lines start with ``+``, ``-``, space or ``@@``), then
    metadata, attachments and outputs lines.

    Cell numbers are 1-based, as a reader counts. Unchanged cells are left out,
    so an empty diff renders as no lines. Control characters from the notebook
    are escaped, so a notebook cannot drive the terminal.
    """
    lines: list[str] = []
    if diff.metadata_changed:
        lines.append(f"## notebook metadata changed: {', '.join(diff.metadata_keys)}")
    for cell in diff.cells:
        if cell.kind == "unchanged" and not cell.moved:
            continue
        lines.append(_header(cell))
        lines.extend(cell.source_diff)
        if cell.metadata_keys:
            lines.append(f"cell metadata changed: {', '.join(cell.metadata_keys)}")
        if cell.attachments:
            lines.append(f"attachments changed: {', '.join(cell.attachments)}")
        if cell.outputs is not None:
            lines.append(f"outputs: {cell.outputs.text}")
    return [line.translate(_ESCAPES) for line in lines]


# -- reading notebooks ---------------------------------------------------------


class _Output(NamedTuple):
    """One output reduced to what matters for comparison (no execution count)."""

    kind: str  # "stream", "rich" (display_data, execute_result), "error", or another type
    name: str  # stream name, exception name, or the output type of an unknown kind
    data: dict[str, Any]  # MIME type -> value for "rich"; the output's fields otherwise
    metadata: Any

    @property
    def key(self) -> tuple[str, ...]:
        """What two outputs must share to be paired as one output that changed."""
        if self.kind == "rich":
            return (self.kind, *sorted(self.data))
        return (self.kind, self.name)

    @property
    def labels(self) -> tuple[str, ...]:
        """Words naming the output: its MIME types, or e.g. ``"stream stdout"``."""
        if self.kind == "rich":
            return tuple(self.data) or ("empty output",)
        if self.kind in ("stream", "error"):
            return (f"{self.kind} {self.name}",)
        return (self.name,)


class _Cell(NamedTuple):
    id: str | None
    cell_type: str
    source: str
    outputs: tuple[_Output, ...]
    metadata: dict[str, Any]
    attachments: dict[str, Any]


class _Notebook(NamedTuple):
    cells: tuple[_Cell, ...]
    metadata: dict[str, Any]


def _load(data: bytes | str, side: str) -> _Notebook:
    what = f"The {side} version is not a notebook"
    document = read_notebook_json(data, what)
    cells = tuple(
        _read_cell(cell, number, what) for number, cell in enumerate(document["cells"], 1)
    )
    return _Notebook(cells, _mapping(document.get("metadata"), f"{what}: its metadata"))


def _read_cell(cell: Any, number: int, what: str) -> _Cell:
    where = f"{what}: cell {number}"
    if not isinstance(cell, dict):
        raise ValueError(f"{where} is not a JSON object.")
    cell_type = cell.get("cell_type")
    if not isinstance(cell_type, str):
        raise ValueError(f"{where} has no cell type.")
    outputs = cell.get("outputs", [])
    if not isinstance(outputs, list):
        raise ValueError(f"{where} has outputs that are not a list.")
    metadata = _mapping(cell.get("metadata"), f"{where} has metadata that")
    cell_id = cell.get("id")
    return _Cell(
        id=cell_id if isinstance(cell_id, str) else None,
        cell_type=cell_type,
        source=_text(cell.get("source", ""), f"{where} has a source that"),
        outputs=tuple(_read_output(output, where) for output in outputs),
        metadata={k: v for k, v in metadata.items() if k not in _VOLATILE_CELL_METADATA},
        attachments=_mapping(cell.get("attachments"), f"{where} has attachments that"),
    )


def _read_output(output: Any, where: str) -> _Output:
    if not isinstance(output, dict) or not isinstance(output.get("output_type"), str):
        raise ValueError(f"{where} has an output that is not a JSON object with an output_type.")
    output_type: str = output["output_type"]
    if output_type == "stream":
        name = output.get("name")
        text = _text(output.get("text", ""), f"{where} has stream output that")
        return _Output("stream", name if isinstance(name, str) else "stdout", {"text": text}, None)
    if output_type in ("display_data", "execute_result"):
        data = _mapping(output.get("data"), f"{where} has output data that")
        values = {mime: _joined(value) for mime, value in data.items()}
        return _Output("rich", "", values, output.get("metadata", {}))
    fields = {
        k: _joined(v) for k, v in output.items() if k not in ("output_type", "execution_count")
    }
    if output_type == "error":
        ename = fields.get("ename")
        return _Output("error", ename if isinstance(ename, str) else "", fields, None)
    return _Output(output_type, output_type, fields, None)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object.")
    return value


def _text(value: Any, what: str) -> str:
    text = source_text(value)
    if text is None:
        raise ValueError(f"{what} is neither a string nor a list of strings.")
    return text


def _joined(value: Any) -> Any:
    text = source_text(value)
    return value if text is None else text


# -- matching cells ------------------------------------------------------------

#: (old index, new index): a cell on both sides; the set holds moved old indices.
_Pairs = tuple[list[tuple[int, int]], set[int]]


def _ids_usable(cells: Sequence[_Cell]) -> bool:
    ids = [cell.id for cell in cells]
    return None not in ids and len(set(ids)) == len(ids)


def _match_by_id(old: Sequence[_Cell], new: Sequence[_Cell]) -> _Pairs:
    new_index = {cell.id: index for index, cell in enumerate(new)}
    pairs = [(i, new_index[cell.id]) for i, cell in enumerate(old) if cell.id in new_index]
    pairs.sort(key=lambda pair: pair[1])
    in_place = _longest_increasing([i for i, _ in pairs])
    return pairs, {i for i, _ in pairs} - in_place


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """The values of one longest increasing subsequence: the cells that stayed put."""
    tails: list[int] = []  # tails[k]: position of the smallest tail of a run of length k + 1
    tail_values: list[int] = []
    previous: list[int | None] = [None] * len(values)
    for position, value in enumerate(values):
        k = bisect_left(tail_values, value)
        previous[position] = tails[k - 1] if k else None
        if k == len(tails):
            tails.append(position)
            tail_values.append(value)
        else:
            tails[k] = position
            tail_values[k] = value
    kept: set[int] = set()
    cursor = tails[-1] if tails else None
    while cursor is not None:
        kept.add(values[cursor])
        cursor = previous[cursor]
    return kept


def _match_by_similarity(old: Sequence[_Cell], new: Sequence[_Cell]) -> _Pairs:
    matcher = difflib.SequenceMatcher(
        None,
        [(cell.cell_type, cell.source) for cell in old],
        [(cell.cell_type, cell.source) for cell in new],
        autojunk=False,
    )
    pairs: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
        elif tag == "replace":
            block = _align_similar([c.source for c in old[i1:i2]], [c.source for c in new[j1:j2]])
            pairs.extend((i1 + i, j1 + j) for i, j in block)
    return pairs, set()


def _align_similar(old: Sequence[str], new: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of similar sources, in order, with the largest total similarity.

    A long stretch (a notebook rewritten without cell ids) only compares each
    old cell with the new cells near its proportional place, so the cost stays
    bounded; cells that stayed in order are still found.
    """
    n, m = len(old), len(new)
    band = max(n, m)
    if n * m > _MAX_CELL_COMPARISONS:
        band = max(1, _MAX_CELL_COMPARISONS // (2 * max(n, m)))
    scores: dict[tuple[int, int], float] = {}
    for i in range(n):
        centre = i * m // n
        for j in range(max(0, centre - band), min(m, centre + band + 1)):
            ratio = _similarity(old[i], new[j])
            if ratio >= SIMILARITY_THRESHOLD:
                scores[i, j] = ratio
    return _heaviest_chain(scores, m)


def _heaviest_chain(scores: Mapping[tuple[int, int], float], m: int) -> list[tuple[int, int]]:
    """The pairs, increasing in both indices, whose scores have the largest sum.

    A heaviest increasing subsequence, with a Fenwick tree of prefix maxima over
    the new indices: O(k log m) for k candidate pairs.
    """
    # Same old index: larger new index first, so two pairs of one old cell never chain.
    candidates = sorted(scores.items(), key=lambda item: (item[0][0], -item[0][1]))
    tree: list[tuple[float, int]] = [(0.0, -1)] * (m + 1)
    back: list[int] = []
    best: tuple[float, int] = (0.0, -1)
    for k, ((_, j), score) in enumerate(candidates):
        prefix: tuple[float, int] = (0.0, -1)
        position = j  # pairs with a new index below j sit at tree positions 1..j
        while position > 0:
            prefix = max(prefix, tree[position])
            position -= position & -position
        entry = (prefix[0] + score, k)
        back.append(prefix[1])
        best = max(best, entry)
        position = j + 1
        while position <= m:
            tree[position] = max(tree[position], entry)
            position += position & -position
    chain: list[tuple[int, int]] = []
    k = best[1]
    while k >= 0:
        chain.append(candidates[k][0])
        k = back[k]
    return chain[::-1]


def _similarity(a: str, b: str) -> float:
    """difflib's ratio of two sources; 0.0 stands for any ratio below the threshold.

    Characters are compared, unless both sources are long, where that costs
    too much and lines are compared instead.
    """
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if len(a) * len(b) > _MAX_CHARACTER_COMPARISON:
        matcher = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False)
    else:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if (
        matcher.real_quick_ratio() < SIMILARITY_THRESHOLD
        or matcher.quick_ratio() < SIMILARITY_THRESHOLD
    ):
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= SIMILARITY_THRESHOLD else 0.0


def _in_new_order(
    old_count: int, new_count: int, matched: _Pairs
) -> Iterable[tuple[int | None, int | None, bool]]:
    """Every cell once, as (old index, new index, moved), in the new notebook's order,
    each removed cell right after the nearest earlier old cell that stayed in place."""
    pairs, moved = matched
    old_of_new: dict[int, int] = {j: i for i, j in pairs}
    new_of_old: dict[int, int] = {i: j for i, j in pairs}
    removed_after: dict[int | None, list[int]] = {}
    anchor: int | None = None
    for i in range(old_count):
        if i not in new_of_old:
            removed_after.setdefault(anchor, []).append(i)
        elif i not in moved:
            anchor = new_of_old[i]
    for i in removed_after.get(None, []):
        yield i, None, False
    for j in range(new_count):
        i_or_none = old_of_new.get(j)
        yield i_or_none, j, i_or_none in moved
        for i in removed_after.get(j, []):
            yield i, None, False


# -- describing changes --------------------------------------------------------


def _cell_change(
    old: Sequence[_Cell],
    new: Sequence[_Cell],
    old_index: int | None,
    new_index: int | None,
    moved: bool,
) -> CellChange:
    if old_index is None:
        assert new_index is not None
        cell = new[new_index]
        return CellChange(
            "added",
            None,
            new_index,
            cell.cell_type,
            _source_diff("", cell.source),
            _output_summary((), cell.outputs),
        )
    if new_index is None:
        cell = old[old_index]
        return CellChange(
            "removed",
            old_index,
            None,
            cell.cell_type,
            _source_diff(cell.source, ""),
            _output_summary(cell.outputs, ()),
        )
    before, after = old[old_index], new[new_index]
    source_diff = _source_diff(before.source, after.source)
    outputs = _output_summary(before.outputs, after.outputs)
    metadata_keys = _changed_keys(before.metadata, after.metadata)
    attachments = _changed_keys(before.attachments, after.attachments)
    old_cell_type = before.cell_type if before.cell_type != after.cell_type else None
    changed = (
        before.source != after.source
        or outputs is not None
        or bool(metadata_keys or attachments)
        or old_cell_type is not None
    )
    return CellChange(
        "changed" if changed else "unchanged",
        old_index,
        new_index,
        after.cell_type,
        source_diff,
        outputs,
        moved,
        old_cell_type,
        metadata_keys,
        attachments,
    )


def _source_diff(old: str, new: str) -> tuple[str, ...]:
    if old == new:
        return ()
    lines = difflib.unified_diff(_lines(old), _lines(new), n=_CONTEXT_LINES, lineterm="")
    return tuple(lines)[2:]  # without the "---" and "+++" file headers


def _lines(source: str) -> list[str]:
    # Split on "\n" only, so a trailing newline shows as an empty last line.
    return source.split("\n") if source else []


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key)))


def _output_summary(old: Sequence[_Output], new: Sequence[_Output]) -> OutputSummary | None:
    if tuple(old) == tuple(new):
        return None
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    matcher = difflib.SequenceMatcher(
        None, [o.key for o in old], [o.key for o in new], autojunk=False
    )
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        # Pair outputs in place: in an "equal" run their kinds match; elsewhere
        # an output is compared with the one at its position when comparable.
        before, after = old[i1:i2], new[j1:j2]
        for k in range(max(len(before), len(after))):
            a = before[k] if k < len(before) else None
            b = after[k] if k < len(after) else None
            if a is not None and b is not None and _comparable(a, b):
                _compare_outputs(a, b, added, removed, changed)
                continue
            if a is not None:
                removed.extend(a.labels)
            if b is not None:
                added.extend(b.labels)
    return OutputSummary(len(old), len(new), tuple(added), tuple(removed), tuple(changed))


def _comparable(a: _Output, b: _Output) -> bool:
    return a.kind == b.kind and (a.kind == "rich" or a.name == b.name)


def _compare_outputs(
    a: _Output, b: _Output, added: list[str], removed: list[str], changed: list[str]
) -> None:
    if a.kind != "rich":
        if a != b:
            changed.extend(b.labels)
        return
    removed.extend(mime for mime in a.data if mime not in b.data)
    added.extend(mime for mime in b.data if mime not in a.data)
    differing = [mime for mime in b.data if mime in a.data and a.data[mime] != b.data[mime]]
    changed.extend(differing)
    if not differing and a.metadata != b.metadata:
        changed.append("output metadata")


# -- words ---------------------------------------------------------------------


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _labels(labels: Sequence[str]) -> str:
    """``"image/png (2), text/plain"``: each label once, with how often it occurs."""
    return ", ".join(
        label if times == 1 else f"{label} ({times})" for label, times in Counter(labels).items()
    )


def _header(cell: CellChange) -> str:
    if cell.kind == "removed":
        return f"## old cell {_number(cell.old_index)} ({cell.cell_type}) removed"
    kind = "moved" if cell.kind == "unchanged" else cell.kind
    header = f"## cell {_number(cell.new_index)} ({cell.cell_type}) {kind}"
    if cell.moved and cell.kind != "unchanged":
        header += ", moved"
    if cell.moved:
        header += f" from old cell {_number(cell.old_index)}"
    if cell.old_cell_type is not None:
        header += f"; was {cell.old_cell_type}"
    return header


def _number(index: int | None) -> int:
    assert index is not None
    return index + 1


#: C0 and C1 control characters (but tab) and DEL, shown escaped instead.
_ESCAPES = {
    code: ("\\r" if code == 13 else f"\\x{code:02x}")
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
    if code != 0x09
}
