"""How a version object holds the bytes that were saved: pure encoding and decoding.

Three forms, named in the object's metadata (``keys.version_metadata``):

* whole (no name): the bytes as saved, as every earlier release wrote them;
* ``zstd-1``: the bytes as saved, compressed with zstd (a file that is not a
  notebook, or a notebook ``packing.split`` cannot cut);
* ``packed-1``: a notebook as a compressed manifest: the epoch its parts are kept in
  and its skeleton (from ``packing.split``), which names its parts by sha256; each
  part is its own compressed object of the workspace (``keys.part_key``), shared
  by every version of that epoch that holds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zstandard

from bookstore.core.packing import Part, Split, split

__all__ = [
    "COMPRESSED",
    "PACKED",
    "Manifest",
    "compress",
    "cut",
    "decompress",
    "manifest_body",
    "read_manifest",
]

COMPRESSED = "zstd-1"
PACKED = "packed-1"
_LEVEL = 3
"""zstd's default level: most of the gain, at hundreds of megabytes a second."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a packed version's object holds: the epoch of its parts, and its skeleton."""

    epoch: int
    skeleton: list[str | Part]

    def parts(self) -> set[str]:
        """The sha256 of every part the version refers to."""
        return {piece.sha256 for piece in self.skeleton if isinstance(piece, Part)}


def cut(data: bytes, notebook: bool) -> Split | None:
    """A notebook's bytes cut for packing; ``None`` if they are to be kept compressed whole."""
    return split(data) if notebook else None


def manifest_body(cut: Split, epoch: int) -> bytes:
    """The object of a packed version whose parts are kept in ``epoch``."""
    skeleton = [
        piece if isinstance(piece, str) else {"part": piece.sha256} for piece in cut.skeleton
    ]
    document = {"epoch": epoch, "skeleton": skeleton}
    return compress(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())


def read_manifest(body: bytes, limit: int) -> Manifest:
    """The manifest a packed version's object holds, if no larger than ``limit``.
    ``ValueError`` if it holds none."""
    try:
        document: Any = json.loads(decompress(body, limit))
        epoch, pieces = document["epoch"], document["skeleton"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"an epoch of {epoch!r}")
        skeleton = [
            piece if isinstance(piece, str) else Part(str(piece["part"])) for piece in pieces
        ]
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not a packed version's manifest ({exc})") from exc
    return Manifest(epoch, skeleton)


def compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_LEVEL).compress(data)


def decompress(data: bytes, limit: int) -> bytes:
    """The bytes a zstd frame holds. ``ValueError`` if ``data`` is not one, or if it would
    give more than ``limit`` bytes: stored objects are untrusted, and a frame that
    promises gigabytes must not be given them."""
    try:
        size = zstandard.frame_content_size(data)
        if size < 0 or size > limit:
            raise ValueError(f"it would give {size} bytes, more than the {limit} expected")
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise ValueError(f"not zstd-compressed ({exc})") from exc
