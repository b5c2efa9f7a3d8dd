"""nbdime's ``patch`` (``nbdime/patching.py``), written again for tests, strictly.

It applies a diff in nbdime's format and checks on the way what nbdime's renderer
(``NotebookDiffModel``) relies on: sequence entries sorted by key, an ``addrange``
first among the entries of its key, ranges inside the base, each mapping key
named once. A string is patched as a list of lines split as the renderer's
``splitLines`` splits them (at ``\\r\\n``, ``\\r`` or ``\\n``, keeping the ending).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["patch", "split_lines"]


def patch(value: Any, diff: list[dict[str, Any]]) -> Any:
    """``value`` with ``diff`` applied; ``AssertionError`` for a diff nbdime would misread."""
    assert isinstance(diff, list), diff
    if isinstance(value, dict):
        return _patch_mapping(value, diff)
    if isinstance(value, list):
        return _patch_sequence(value, diff)
    if isinstance(value, str):
        return "".join(_patch_sequence(split_lines(value), diff))
    raise AssertionError(f"nbdime patches no {type(value).__name__}")


def split_lines(text: str) -> list[str]:
    """Lines and their endings, as nbdime's renderer splits a string."""
    lines, start, at = [], 0, 0
    while at < len(text):
        if text[at] in "\r\n":
            end = at + 2 if text.startswith("\r\n", at) else at + 1
            lines.append(text[start:end])
            start = at = end
        else:
            at += 1
    if start < len(text):
        lines.append(text[start:])
    return lines


def _patch_mapping(value: dict[str, Any], diff: list[dict[str, Any]]) -> dict[str, Any]:
    result = copy.deepcopy(value)
    keys = [entry["key"] for entry in diff]
    assert all(isinstance(key, str) for key in keys), keys
    assert len(set(keys)) == len(keys), f"a key patched twice: {keys}"
    for entry in diff:
        op, key = entry["op"], entry["key"]
        if op == "add":
            assert key not in value, f"add of {key!r}, which the base has"
            result[key] = entry["value"]
        elif op == "remove":
            assert key in value, f"remove of {key!r}, which the base lacks"
            del result[key]
        elif op == "replace":
            assert key in value, f"replace of {key!r}, which the base lacks"
            result[key] = entry["value"]
        elif op == "patch":
            assert key in value, f"patch of {key!r}, which the base lacks"
            result[key] = patch(value[key], entry["diff"])
        else:
            raise AssertionError(f"{op!r} on a mapping")
    return result


def _patch_sequence(value: list[Any], diff: list[dict[str, Any]]) -> list[Any]:
    result: list[Any] = []
    take = 0
    previous: dict[str, Any] | None = None
    for entry in diff:
        op, key = entry["op"], entry["key"]
        assert isinstance(key, int), entry
        assert 0 <= key <= len(value), entry
        if previous is not None:
            ordered = previous["key"] < key or (
                previous["key"] == key and previous["op"] == "addrange" and op != "addrange"
            )
            assert ordered, f"{previous['op']} at {previous['key']}, then {op} at {key}"
        if op != "addrange":
            assert key >= take, f"{op} at {key} overlaps what is already taken up to {take}"
        result.extend(copy.deepcopy(value[take:key]))
        take = max(take, key)
        if op == "addrange":
            assert entry["valuelist"], "an empty addrange"
            result.extend(entry["valuelist"])
        elif op == "removerange":
            assert entry["length"] > 0, entry
            assert key + entry["length"] <= len(value), entry
            take = key + entry["length"]
        elif op == "patch":
            assert key < len(value), entry
            item = value[key]
            if isinstance(item, str):  # a line of a string, patched character by character
                result.append("".join(_patch_sequence(list(item), entry["diff"])))
            else:
                result.append(patch(item, entry["diff"]))
            take = key + 1
        else:
            raise AssertionError(f"{op!r} on a sequence")
        previous = entry
    result.extend(copy.deepcopy(value[take:]))
    return result
