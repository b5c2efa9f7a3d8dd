"""A notebook's bytes as a skeleton and the cell parts it shares with other versions.

Consecutive versions of a notebook differ in a cell or two; most of their bytes
are cell sources and outputs that every version repeats. This module cuts a
notebook's exact bytes into

* **parts**: the raw JSON text of each cell's ``source``, ``outputs`` and
  ``attachments`` values, as the file spells them (indentation, key order,
  escapes and all), each named by its sha256; and
* a **skeleton**: everything else, in order, with a reference where each part was.

Joining the skeleton with its parts gives back the very bytes that were cut,
whatever the notebook's formatting: the cut is made on the text, never on a
re-serialised copy, and ``split`` checks the join before it answers. Anything
it cannot cut (not UTF-8, not a JSON object, no ``cells`` list) is ``None``:
such a file is kept whole. Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from json import JSONDecodeError, JSONDecoder
from json.decoder import scanstring  # type: ignore[attr-defined]  # public since 2.x, untyped

__all__ = ["CELL_PARTS", "MIN_PART_CHARS", "Part", "Split", "inline", "join", "split"]

CELL_PARTS = frozenset({"source", "outputs", "attachments"})
"""The members of a cell kept as parts: what repeats from version to version."""

MIN_PART_CHARS = 256
"""Shorter values stay in the skeleton: a part of its own costs a request and an object
for a few bytes that compress away in the skeleton anyway."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = JSONDecoder()


@dataclass(frozen=True, slots=True)
class Part:
    """A reference, in a skeleton, to the part whose bytes have this sha256."""

    sha256: str


@dataclass(frozen=True, slots=True)
class Split:
    """A notebook cut in two: its skeleton, and the parts it refers to by sha256."""

    skeleton: tuple[str | Part, ...]
    parts: dict[str, bytes]


def split(data: bytes) -> Split | None:
    """Cut a notebook's bytes into a skeleton and parts; ``None`` if they cannot be cut."""
    try:
        text = data.decode("utf-8")
        spans = list(_part_spans(text))
    except (UnicodeDecodeError, JSONDecodeError, ValueError, IndexError):
        return None
    skeleton: list[str | Part] = []
    parts: dict[str, bytes] = {}
    at = 0
    for start, end in spans:
        if end - start < MIN_PART_CHARS:
            continue
        skeleton.append(text[at:start])
        raw = text[start:end].encode("utf-8")
        digest = hashlib.sha256(raw).hexdigest()
        parts[digest] = raw
        skeleton.append(Part(digest))
        at = end
    skeleton.append(text[at:])
    cut = Split(tuple(piece for piece in skeleton if piece != ""), parts)
    return cut if join(cut.skeleton, cut.parts) == data else None


def inline(cut: Split, digests: set[str]) -> Split:
    """``cut`` with the parts named in ``digests`` put back in its skeleton as text."""
    skeleton: list[str | Part] = []
    for piece in cut.skeleton:
        if isinstance(piece, Part) and piece.sha256 in digests:
            piece = cut.parts[piece.sha256].decode("utf-8")
        if isinstance(piece, str) and skeleton and isinstance(skeleton[-1], str):
            skeleton[-1] += piece
        else:
            skeleton.append(piece)
    parts = {digest: raw for digest, raw in cut.parts.items() if digest not in digests}
    return Split(tuple(skeleton), parts)


def join(skeleton: Sequence[str | Part], parts: dict[str, bytes]) -> bytes:
    """The bytes a skeleton and its parts were cut from. ``KeyError`` names a part missing."""
    pieces = []
    for piece in skeleton:
        pieces.append(parts[piece.sha256] if isinstance(piece, Part) else piece.encode("utf-8"))
    return b"".join(pieces)


# -- finding the parts in the text -----------------------------------------------------


def _part_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where each cell's parts are in ``text``, in order: (start, end) offsets."""
    at = _skip(text, 0)
    if text[at] != "{":
        raise ValueError("not a JSON object")
    found_cells = False
    for key, start, _ in _members(text, at):
        if key != "cells":
            continue
        if text[start] != "[":
            raise ValueError("cells is not a list")
        found_cells = True
        for cell_start, _ in _elements(text, start):
            if text[cell_start] != "{":
                continue
            for name, value_start, value_end in _members(text, cell_start):
                if name in CELL_PARTS:
                    yield value_start, value_end
    if not found_cells:
        raise ValueError("no cells")
    if _skip(text, _value_end(text, at)) != len(text):
        raise ValueError("text after the notebook")


def _members(text: str, at: int) -> Iterator[tuple[str, int, int]]:
    """An object's members, from the ``{`` at ``at``: (key, value start, value end)."""
    at = _skip(text, at + 1)
    if text[at] == "}":
        return
    while True:
        if text[at] != '"':
            raise ValueError("a key is not a string")
        key, at = scanstring(text, at + 1)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("no colon after a key")
        start = _skip(text, at + 1)
        end = _value_end(text, start)
        yield key, start, end
        at = _skip(text, end)
        if text[at] == "}":
            return
        if text[at] != ",":
            raise ValueError("no comma between members")
        at = _skip(text, at + 1)


def _elements(text: str, at: int) -> Iterator[tuple[int, int]]:
    """A list's elements, from the ``[`` at ``at``: (start, end) of each."""
    at = _skip(text, at + 1)
    if text[at] == "]":
        return
    while True:
        end = _value_end(text, at)
        yield at, end
        at = _skip(text, end)
        if text[at] == "]":
            return
        if text[at] != ",":
            raise ValueError("no comma between elements")
        at = _skip(text, at + 1)


def _value_end(text: str, at: int) -> int:
    _, end = _DECODER.raw_decode(text, at)
    return int(end)


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    assert match is not None  # the pattern matches the empty string
    return match.end()
