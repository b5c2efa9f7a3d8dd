"""How a version object holds the bytes that were saved: pure encoding and decoding.

Three forms, named in the object's metadata (``keys.version_metadata``):

* whole (no name): the bytes as saved, as every earlier release wrote them;
* ``zstd-1``: the bytes as saved, compressed with zstd (a file that is not a
  notebook, or a notebook ``packing.split`` cannot cut);
* ``packed-1``: a notebook as a compressed manifest (its skeleton, from
  ``packing.split``) that names its parts by sha256; each part is its own
  compressed object of the workspace (``keys.part_key``), shared by every
  version that holds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zstandard

from bookstore.core.packing import Part, split

__all__ = ["COMPRESSED", "PACKED", "Encoded", "compress", "decompress", "encode", "manifest_of"]

COMPRESSED = "zstd-1"
PACKED = "packed-1"
_LEVEL = 3
"""zstd's default level: most of the gain, at hundreds of megabytes a second."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A version as its object holds it: the form, the object's bytes, and the parts
    (raw bytes, by sha256) a packed version refers to."""

    form: str
    body: bytes
    parts: dict[str, bytes]


def encode(data: bytes, notebook: bool) -> Encoded:
    """The object for ``data``: packed if it is a notebook that can be cut, else compressed."""
    cut = split(data) if notebook else None
    if cut is None:
        return Encoded(COMPRESSED, compress(data), {})
    skeleton = [
        piece if isinstance(piece, str) else {"part": piece.sha256} for piece in cut.skeleton
    ]
    manifest = json.dumps({"skeleton": skeleton}, ensure_ascii=False, separators=(",", ":"))
    return Encoded(PACKED, compress(manifest.encode()), cut.parts)


def manifest_of(body: bytes) -> list[str | Part]:
    """The skeleton a packed version's object holds. ``ValueError`` if it holds none."""
    try:
        document: Any = json.loads(decompress(body))
        pieces = document["skeleton"]
        return [piece if isinstance(piece, str) else Part(str(piece["part"])) for piece in pieces]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a packed version's manifest ({exc})") from exc


def compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_LEVEL).compress(data)


def decompress(data: bytes) -> bytes:
    """``ValueError`` if ``data`` is not a zstd frame."""
    try:
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise ValueError(f"not zstd-compressed ({exc})") from exc
