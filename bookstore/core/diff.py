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
* **Cost.** Pairing cells without ids is bounded, so a notebook of 16,000
  identical cells compares in well under a second: up to a million (cells of
  one side times cells of the other), cells are aligned exactly as
  ``SequenceMatcher`` aligns them; beyond, the cells both sides share at
  either end are paired first, then cells found once on each side anchor the
  rest (as patience diff does), and only stretches small enough are handed to
  ``SequenceMatcher``. Source diffs and output lists are bounded the same way.
* **Limits.** :class:`DiffLimits` caps each side's size and cell count and the
  time one diff takes; past one, :class:`~bookstore.core.errors.LimitExceeded`
  says which, in words.
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
import json
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import pairwise
from typing import Any, Literal, NamedTuple

from bookstore.core.errors import LimitExceeded
from bookstore.core.notebook import read_notebook_json, source_text

__all__ = [
    "DEFAULT_LIMITS",
    "NO_LIMITS",
    "SIMILARITY_THRESHOLD",
    "VOLATILE_CELL_METADATA",
    "CellChange",
    "ChangeKind",
    "DiffLimits",
    "NotebookDiff",
    "OutputSummary",
    "diff_as_dict",
    "diff_as_json",
    "diff_notebooks",
    "render_text",
    "sequence_opcodes",
]

ChangeKind = Literal["added", "removed", "changed", "unchanged"]

#: Sources at least this similar (difflib ratio) are one cell that changed.
SIMILARITY_THRESHOLD = 0.5

#: Context lines around each change in a source diff.
_CONTEXT_LINES = 2

#: Cell metadata that records how a cell was viewed or how long it ran, not
#: what it is; changing it alone does not change the cell.
VOLATILE_CELL_METADATA = frozenset(
    {"collapsed", "scrolled", "jupyter", "execution", "ExecuteTime", "papermill", "trusted"}
)

#: Above this product of lengths (two sources of about 300 characters), sources
#: are only compared line by line: matching characters costs milliseconds.
_MAX_CHARACTER_COMPARISON = 100_000

#: Most source comparisons made to align one stretch of differing cells; a
#: longer stretch only compares cells near the diagonal.
_MAX_CELL_COMPARISONS = 2_000

#: Above this product of lengths, ``SequenceMatcher`` could take seconds: its
#: worst case, sequences of a few repeated elements, is quadratic or worse.
_MAX_SEQUENCE_COMPARISONS = 1_000_000

#: Above this product of line counts, two sources are not matched line by line to
#: measure their similarity (the share of lines they have in common stands in).
_MAX_LINE_COMPARISONS = 250_000

#: Above this product of line counts, a source diff is one hunk: the lines both
#: sources share at either end are left out, the middle is removed and added.
_MAX_SOURCE_DIFF_LINES = 100_000_000


# -- limits --------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLimits:
    """How much one diff may take, so that no request keeps a server busy.

    ``None`` sets no limit. The size and the cells are checked on each side.
    """

    max_bytes: int | None = 20_000_000
    """Each side's JSON is parsed in one step that holds Python's interpreter lock,
    as long as 10 ms a megabyte of closely packed cells (2 to 3 ms for images)."""
    max_cells: int | None = 50_000
    max_seconds: float | None = 10.0

    def check_size(self, size: int, what: str) -> None:
        """Refuse ``what`` (e.g. ``"version 3 of 'a.ipynb'"``) of ``size`` bytes if too large."""
        if self.max_bytes is not None and size > self.max_bytes:
            raise LimitExceeded(
                f"{what} is {_megabytes(size)}, and bookstore compares notebooks of at most "
                f"{_megabytes(self.max_bytes)}"
            )

    def check_cells(self, count: int, what: str) -> None:
        """Refuse ``what`` with ``count`` cells if it has too many."""
        if self.max_cells is not None and count > self.max_cells:
            raise LimitExceeded(
                f"{what} has {count:,} cells, and bookstore compares notebooks of at most "
                f"{self.max_cells:,} cells"
            )


DEFAULT_LIMITS = DiffLimits()
NO_LIMITS = DiffLimits(max_bytes=None, max_cells=None, max_seconds=None)


class _Clock:
    """The time a diff may still take; ``check`` gives up, in words, once it is spent."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"comparing these notebooks takes longer than {self.seconds:g} seconds, "
                "the most bookstore spends on one diff"
            )


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


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
    _as_dict: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    """``diff_as_dict``'s answer, made once."""

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

    def counts(self) -> dict[str, int]:
        """How many cells were added, removed, changed and moved: the summary in numbers."""
        return {
            "added": self.count("added"),
            "removed": self.count("removed"),
            "changed": self.count("changed"),
            "moved": self.moved,
        }

    def summary(self) -> str:
        """One line, e.g. ``"2 cells added, 1 removed, 3 changed"``, or ``"no changes"``."""
        counts = [(number, word) for word, number in self.counts().items()]
        parts = [f"{number} {word}" for number, word in counts if number]
        if parts:  # the first count names its noun: "1 cell added, 2 changed"
            number, word = next((number, word) for number, word in counts if number)
            parts[0] = f"{_plural(number, 'cell')} {word}"
        text = ", ".join(parts)
        if self.metadata_changed:
            text = f"{text}; notebook metadata changed" if text else "notebook metadata changed"
        return text or "no changes"


# -- the diff ------------------------------------------------------------------


def diff_notebooks(
    old: bytes | str, new: bytes | str, limits: DiffLimits = DEFAULT_LIMITS
) -> NotebookDiff:
    """Compare two notebooks given as ``.ipynb`` JSON, within ``limits``.

    Raises :class:`ValueError`, with a sentence naming the side, when either is
    not an nbformat 4 notebook, and :class:`LimitExceeded` past a limit.
    """
    limits.check_size(len(old), "the old version")
    limits.check_size(len(new), "the new version")
    clock = _Clock(limits.max_seconds)
    old_notebook = _load(old, "old", limits, clock)
    new_notebook = _load(new, "new", limits, clock)
    old_cells, new_cells = old_notebook.cells, new_notebook.cells

    if _ids_usable(old_cells) and _ids_usable(new_cells):
        pairs = _match_by_id(old_cells, new_cells)
    else:
        pairs = _match_by_similarity(old_cells, new_cells, clock)
    changes = []
    for old_index, new_index, moved in _in_new_order(len(old_cells), len(new_cells), pairs):
        clock.check()
        changes.append(_cell_change(old_cells, new_cells, old_index, new_index, moved, clock))
    metadata_keys = _changed_keys(old_notebook.metadata, new_notebook.metadata)
    return NotebookDiff(tuple(changes), bool(metadata_keys), metadata_keys)


def diff_as_dict(diff: NotebookDiff) -> dict[str, Any]:
    """The diff as plain JSON-ready data, with its one-line summary.

    Made once per diff and kept with it: for 16,000 cells it takes a tenth of a
    second, which ``History.diff`` spends in its worker thread, so that a server
    sending it as JSON does not spend it on its event loop.
    """
    if diff._as_dict is None:
        plain = {
            "summary": diff.summary(),
            "cells": tuple(_plain_change(cell) for cell in diff.cells),
            "metadata_changed": diff.metadata_changed,
            "metadata_keys": diff.metadata_keys,
        }
        object.__setattr__(diff, "_as_dict", plain)
    assert diff._as_dict is not None
    return dict(diff._as_dict)


def diff_as_json(diff: NotebookDiff, head: Mapping[str, Any]) -> str:
    """``json.dumps(head | diff_as_dict(diff))``, encoded a cell at a time.

    For a server to call in a worker thread: one ``json.dumps`` of 16,000 cells
    holds the interpreter lock for 40 ms, during which the event loop waits; a
    cell at a time, the loop gets it back every few milliseconds.
    """
    parts = []
    for key, value in (dict(head) | diff_as_dict(diff)).items():
        if key == "cells":
            encoded = "[" + ", ".join(json.dumps(cell) for cell in value) + "]"
        else:
            encoded = json.dumps(value)
        parts.append(f"{json.dumps(key)}: {encoded}")
    return "{" + ", ".join(parts) + "}"


def _plain_change(cell: CellChange) -> dict[str, Any]:
    plain = {name: getattr(cell, name) for name in _CHANGE_FIELDS}
    if cell.outputs is not None:
        plain["outputs"] = {name: getattr(cell.outputs, name) for name in _OUTPUT_FIELDS}
    return plain


_CHANGE_FIELDS = tuple(each.name for each in fields(CellChange))
_OUTPUT_FIELDS = tuple(each.name for each in fields(OutputSummary))


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


def _load(data: bytes | str, side: str, limits: DiffLimits, clock: _Clock) -> _Notebook:
    what = f"The {side} version is not a notebook"
    document = read_notebook_json(data, what)
    limits.check_cells(len(document["cells"]), f"the {side} version")
    cells = []
    for number, cell in enumerate(document["cells"], 1):
        clock.check()
        cells.append(_read_cell(cell, number, what))
    return _Notebook(tuple(cells), _mapping(document.get("metadata"), f"{what}: its metadata"))


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
        metadata={k: v for k, v in metadata.items() if k not in VOLATILE_CELL_METADATA},
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


def _match_by_similarity(old: Sequence[_Cell], new: Sequence[_Cell], clock: _Clock) -> _Pairs:
    opcodes = _opcodes(
        [(cell.cell_type, cell.source) for cell in old],
        [(cell.cell_type, cell.source) for cell in new],
        clock,
    )
    pairs: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
        elif tag == "replace":
            block = _align_similar(
                [c.source for c in old[i1:i2]], [c.source for c in new[j1:j2]], clock
            )
            pairs.extend((i1 + i, j1 + j) for i, j in block)
    return pairs, set()


_Opcode = tuple[str, int, int, int, int]
"""``SequenceMatcher.get_opcodes`` items: (tag, i1, i2, j1, j2)."""


def sequence_opcodes(a: Sequence[Hashable], b: Sequence[Hashable]) -> Sequence[_Opcode]:
    """How to turn ``a`` into ``b``, as ``SequenceMatcher.get_opcodes`` says it, at the
    bounded cost of this module's own diffs (for other forms of a diff it made)."""
    return _opcodes(a, b, _Clock(None))


def _opcodes(a: Sequence[Hashable], b: Sequence[Hashable], clock: _Clock) -> Sequence[_Opcode]:
    """How to turn ``a`` into ``b``, as ``SequenceMatcher`` (without junk) says it.

    Exactly its answer up to ``_MAX_SEQUENCE_COMPARISONS``; longer sequences are
    matched by ``_matching_blocks``, whose cost stays bounded.
    """
    if len(a) * len(b) <= _MAX_SEQUENCE_COMPARISONS:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    opcodes: list[_Opcode] = []
    i = j = 0
    for ai, bj, size in [*_matching_blocks(a, b, clock), (len(a), len(b), 0)]:
        if i < ai or j < bj:
            tag = "replace" if i < ai and j < bj else "delete" if i < ai else "insert"
            opcodes.append((tag, i, ai, j, bj))
        i, j = ai + size, bj + size
        if size:
            opcodes.append(("equal", ai, i, bj, j))
    return opcodes


def _matching_blocks(
    a: Sequence[Hashable], b: Sequence[Hashable], clock: _Clock
) -> list[tuple[int, int, int]]:
    """Runs ``(i, j, size)`` of equal elements, increasing in both sequences and merged.

    Each stretch still to match gives up the elements it shares at either end;
    what remains, if small enough, goes to ``SequenceMatcher``, and otherwise is
    cut at the elements found exactly once on each side (in an order both sides
    keep), and each piece is matched the same way. A stretch with no such element
    is left unmatched.
    """
    blocks: list[tuple[int, int, int]] = []
    stretches = [(0, len(a), 0, len(b))]
    while stretches:
        clock.check()
        alo, ahi, blo, bhi = stretches.pop()
        head = 0
        while alo + head < ahi and blo + head < bhi and a[alo + head] == b[blo + head]:
            head += 1
        tail = 0
        while ahi - tail > alo + head and bhi - tail > blo + head:
            if a[ahi - tail - 1] != b[bhi - tail - 1]:
                break
            tail += 1
        blocks.extend(
            block for block in ((alo, blo, head), (ahi - tail, bhi - tail, tail)) if block[2]
        )
        alo, blo, ahi, bhi = alo + head, blo + head, ahi - tail, bhi - tail
        if alo == ahi or blo == bhi:
            continue
        if (ahi - alo) * (bhi - blo) <= _MAX_SEQUENCE_COMPARISONS:
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            blocks.extend((alo + i, blo + j, n) for i, j, n in matcher.get_matching_blocks() if n)
            continue
        anchors = _unique_in_both(a, alo, ahi, b, blo, bhi)
        if anchors:
            edges = [(alo - 1, blo - 1), *anchors, (ahi, bhi)]
            blocks.extend((i, j, 1) for i, j in anchors)
            stretches.extend(
                (i + 1, next_i, j + 1, next_j) for (i, j), (next_i, next_j) in pairwise(edges)
            )
    merged: list[tuple[int, int, int]] = []
    for i, j, size in sorted(blocks):
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + size)
        else:
            merged.append((i, j, size))
    return merged


def _unique_in_both(
    a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Positions ``(i, j)`` of the elements found once in ``a[alo:ahi]`` and once in
    ``b[blo:bhi]``: the most of them whose order both sides keep (patience diff's anchors)."""
    in_a = Counter(a[alo:ahi])
    in_b = Counter(b[blo:bhi])
    where_in_b = {b[j]: j for j in range(blo, bhi) if in_b[b[j]] == 1}
    pairs = [
        (i, where_in_b[a[i]]) for i in range(alo, ahi) if in_a[a[i]] == 1 and a[i] in where_in_b
    ]
    kept = _longest_increasing([j for _, j in pairs])
    return [(i, j) for i, j in pairs if j in kept]


def _align_similar(old: Sequence[str], new: Sequence[str], clock: _Clock) -> list[tuple[int, int]]:
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
        clock.check()
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
        old_lines, new_lines = a.splitlines(), b.splitlines()
        matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
        if len(old_lines) * len(new_lines) > _MAX_LINE_COMPARISONS:
            # The share of lines in common: an upper bound of the ratio, in linear time.
            ratio = matcher.quick_ratio()
            return ratio if ratio >= SIMILARITY_THRESHOLD else 0.0
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
    clock: _Clock,
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
            _output_summary((), cell.outputs, clock),
        )
    if new_index is None:
        cell = old[old_index]
        return CellChange(
            "removed",
            old_index,
            None,
            cell.cell_type,
            _source_diff(cell.source, ""),
            _output_summary(cell.outputs, (), clock),
        )
    before, after = old[old_index], new[new_index]
    source_diff = _source_diff(before.source, after.source)
    outputs = _output_summary(before.outputs, after.outputs, clock)
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
    old_lines, new_lines = _lines(old), _lines(new)
    if len(old_lines) * len(new_lines) > _MAX_SOURCE_DIFF_LINES:
        return _one_hunk(old_lines, new_lines)
    lines = difflib.unified_diff(old_lines, new_lines, n=_CONTEXT_LINES, lineterm="")
    return tuple(lines)[2:]  # without the "---" and "+++" file headers


def _one_hunk(old: list[str], new: list[str]) -> tuple[str, ...]:
    """A unified diff of two very long sources in one hunk, made in linear time: the
    lines they share at either end are context (the nearest ones) or left out."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-tail - 1] == new[-tail - 1]:
        tail += 1
    start = max(0, head - _CONTEXT_LINES)
    after = min(tail, _CONTEXT_LINES)
    old_stop, new_stop = len(old) - tail + after, len(new) - tail + after
    return (
        f"@@ -{_hunk_range(start, old_stop)} +{_hunk_range(start, new_stop)} @@",
        *(" " + line for line in old[start:head]),
        *("-" + line for line in old[head : len(old) - tail]),
        *("+" + line for line in new[head : len(new) - tail]),
        *(" " + line for line in old[len(old) - tail : old_stop]),
    )


def _hunk_range(start: int, stop: int) -> str:
    """Lines ``start:stop`` as a unified diff's hunk header writes them (as difflib does)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _lines(source: str) -> list[str]:
    # Split on "\n" only, so a trailing newline shows as an empty last line.
    return source.split("\n") if source else []


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key)))


def _output_summary(
    old: Sequence[_Output], new: Sequence[_Output], clock: _Clock
) -> OutputSummary | None:
    if tuple(old) == tuple(new):
        return None
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    for _tag, i1, i2, j1, j2 in _opcodes([o.key for o in old], [o.key for o in new], clock):
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
