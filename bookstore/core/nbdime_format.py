"""Our diff of two notebooks in nbdime's diff format, for nbdime's renderer.

nbdime's JavaScript ``NotebookDiffModel(base, diff)`` draws a notebook diff from
the old notebook and a diff in the format of ``nbdime/diff_format.py``: a list
of entries ``{"op": ..., "key": ...}``. On a mapping (a string key): ``add``
(``value``), ``remove``, ``replace`` (``value``) and ``patch`` (a nested
``diff``). On a sequence (an integer key, an index of the old sequence):
``addrange`` (``valuelist``, inserted before the key), ``removerange``
(``length`` items from the key) and ``patch``, sorted by key, an ``addrange``
before the other entries of its key. A string is diffed as a sequence of lines,
each keeping its line ending.

The comparison is this package's (``bookstore.core.diff``), not nbdime's: cells
are paired as the engine paired them, and what it does not count as a change
(execution counts, view-state metadata, cell ids) is not in the diff either. A
cell that moved, or whose type changed, is removed and added, since nbdime's
renderer shows neither. Changed outputs are replaced, from the first one that
differs to the last. Pure: no I/O, and the documents given are not changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bookstore.core.diff import CellChange, NotebookDiff, sequence_opcodes
from bookstore.core.notebook import source_text

__all__ = ["Entry", "nbdime_diff", "nbformat_reads"]

Entry = dict[str, Any]
"""One entry of an nbdime diff."""

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
"""A line and its ending, split as nbdime's renderer splits a string (``splitLines``)."""


def nbformat_reads(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as ``nbformat.reads`` gives it, which is what nbdime's renderer takes:
    sources and the text of outputs and attachments as one string each (not lists of lines)."""
    cells = [_joined_cell(cell) for cell in document.get("cells", [])]
    return {**document, "cells": cells}


def nbdime_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], difference: NotebookDiff
) -> list[Entry]:
    """The diff from ``old`` to ``new`` (both as ``nbformat_reads`` gives them) that applies
    ``difference``, the engine's comparison of the two."""
    entries = []
    cells = _cells_diff(old["cells"], new["cells"], difference.cells)
    if cells:
        entries.append(_patch("cells", cells))
    if difference.metadata_keys:
        entries.append(_field_entry("metadata", old, new, difference.metadata_keys))
    return entries


# -- cells ----------------------------------------------------------------------


def _cells_diff(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    changes: Iterable[CellChange],
) -> list[Entry]:
    """Between two cells kept in place, the old ones removed and the new ones added; a
    cell kept in place and changed is patched."""
    anchors: list[tuple[int, int, CellChange | None]] = []
    for change in changes:
        i, j = change.old_index, change.new_index
        if i is None or j is None or change.moved or change.old_cell_type is not None:
            continue
        if anchors and (i <= anchors[-1][0] or j <= anchors[-1][1]):
            continue  # out of order: never from the engine, and shown as removed and added
        anchors.append((i, j, change))
    anchors.append((len(old), len(new), None))
    entries: list[Entry] = []
    previous_i = previous_j = -1
    for i, j, kept in anchors:
        start = previous_i + 1
        if j > previous_j + 1:
            entries.append(_addrange(start, new[previous_j + 1 : j]))
        if i > start:
            entries.append(_removerange(start, i - start))
        if kept is not None and kept.kind == "changed":
            cell = _cell_diff(old[i], new[j], kept)
            if cell:
                entries.append(_patch(i, cell))
        previous_i, previous_j = i, j
    return entries


def _cell_diff(old: Mapping[str, Any], new: Mapping[str, Any], change: CellChange) -> list[Entry]:
    """What changed in one cell, by field, sorted by field name as nbdime sorts them."""
    entries = []
    if change.attachments:
        entries.append(_field_entry("attachments", old, new, change.attachments))
    if change.metadata_keys:
        entries.append(_field_entry("metadata", old, new, change.metadata_keys))
    if change.outputs is not None:
        entries.append(_outputs_entry(old, new))
    if old.get("source", "") != new.get("source", ""):
        entries.append(_source_entry(old, new))
    return entries


def _source_entry(old: Mapping[str, Any], new: Mapping[str, Any]) -> Entry:
    if "source" not in old or "source" not in new:
        return _whole("source", old, new)
    before, after = _lines(old["source"]), _lines(new["source"])
    entries: list[Entry] = []
    for tag, i1, i2, j1, j2 in sequence_opcodes(before, after):
        if tag in ("insert", "replace"):
            entries.append(_addrange(i1, after[j1:j2]))
        if tag in ("delete", "replace"):
            entries.append(_removerange(i1, i2 - i1))
    return _patch("source", entries)


def _outputs_entry(old: Mapping[str, Any], new: Mapping[str, Any]) -> Entry:
    """The outputs from the first that differs (execution counts aside) to the last, replaced."""
    if not isinstance(old.get("outputs"), list) or not isinstance(new.get("outputs"), list):
        return _whole("outputs", old, new)
    before = [_without_count(output) for output in old["outputs"]]
    after = [_without_count(output) for output in new["outputs"]]
    head = 0
    while head < min(len(before), len(after)) and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < min(len(before), len(after)) - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    entries = []
    if len(after) - tail > head:
        entries.append(_addrange(head, new["outputs"][head : len(after) - tail]))
    if len(before) - tail > head:
        entries.append(_removerange(head, len(before) - tail - head))
    return _patch("outputs", entries)


def _without_count(output: Any) -> Any:
    if isinstance(output, dict):
        return {key: value for key, value in output.items() if key != "execution_count"}
    return output


# -- mappings and entries ---------------------------------------------------------


def _field_entry(
    field: str, old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]
) -> Entry:
    """A patch of the mapping ``field`` changing ``keys``, or the whole field when one side
    has no mapping there (which the engine reads as an empty one)."""
    before, after = old.get(field), new.get(field)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return _whole(field, old, new)
    entries = []
    for key in sorted(keys):
        if key not in after:
            entries.append({"op": "remove", "key": key})
        elif key not in before:
            entries.append({"op": "add", "key": key, "value": after[key]})
        else:
            entries.append({"op": "replace", "key": key, "value": after[key]})
    return _patch(field, entries)


def _whole(field: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Entry:
    """``field`` replaced, added or removed as a whole."""
    if field not in new:
        return {"op": "remove", "key": field}
    return {"op": "replace" if field in old else "add", "key": field, "value": new[field]}


def _patch(key: str | int, diff: list[Entry]) -> Entry:
    return {"op": "patch", "key": key, "diff": diff}


def _addrange(key: int, values: Sequence[Any]) -> Entry:
    return {"op": "addrange", "key": key, "valuelist": list(values)}


def _removerange(key: int, length: int) -> Entry:
    return {"op": "removerange", "key": key, "length": length}


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


# -- as nbformat reads it ----------------------------------------------------------


def _joined_cell(cell: Any) -> Any:
    if not isinstance(cell, dict):
        return cell
    joined = dict(cell)
    if "source" in cell:
        joined["source"] = _text(cell["source"])
    if isinstance(cell.get("attachments"), dict):
        joined["attachments"] = {
            name: _joined_bundle(bundle) for name, bundle in cell["attachments"].items()
        }
    if isinstance(cell.get("outputs"), list):
        joined["outputs"] = [_joined_output(output) for output in cell["outputs"]]
    return joined


def _joined_output(output: Any) -> Any:
    if not isinstance(output, dict):
        return output
    joined = dict(output)
    if output.get("output_type") in ("execute_result", "display_data"):
        if "data" in output:
            joined["data"] = _joined_bundle(output["data"])
    elif "text" in output:
        joined["text"] = _text(output["text"])
    return joined


def _joined_bundle(bundle: Any) -> Any:
    """A MIME bundle with each text joined; JSON types keep their lists (as nbformat does)."""
    if not isinstance(bundle, dict):
        return bundle
    return {mime: value if _is_json(mime) else _text(value) for mime, value in bundle.items()}


def _is_json(mime: str) -> bool:
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _text(value: Any) -> Any:
    text = source_text(value)
    return value if text is None else text
