"""A version's bytes on their way to the store: held in memory when small, read in
chunks from the file that keeps them when large, so a 300 MB save is never held whole.

The reading functions block; stores call them off the event loop.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeAlias

__all__ = [
    "CHUNK",
    "Body",
    "FileSlice",
    "chunks_of",
    "matches",
    "open_body",
    "read_whole",
    "size_of",
]

CHUNK = 1 << 20
"""How many bytes a streamed body is read at a time."""


class FileSlice(NamedTuple):
    """The ``size`` bytes of ``file`` that start at ``offset``."""

    file: Path
    offset: int
    size: int


Body: TypeAlias = bytes | FileSlice


def size_of(body: Body) -> int:
    return body.size if isinstance(body, FileSlice) else len(body)


def read_whole(body: Body) -> bytes:
    """All of ``body`` in memory: for small bodies, and for stores that keep bytes in memory."""
    return body if isinstance(body, bytes) else b"".join(chunks_of(body))


def chunks_of(body: Body, chunk: int = CHUNK) -> Generator[bytes, None, None]:
    """``body`` in pieces of at most ``chunk`` bytes.

    Raises ``OSError`` if the file holds fewer bytes than the slice names: a body
    is what was saved, whole, or nothing.
    """
    with open_body(body) as reader:
        while piece := reader.read(chunk):
            yield piece


def matches(pieces: Iterable[bytes], body: Body) -> bool:
    """Whether ``pieces``, however they are cut, hold exactly the bytes of ``body``."""
    with open_body(body) as reader:
        return all(reader.read(len(piece)) == piece for piece in pieces) and not reader.read(1)


class _SliceReader(io.RawIOBase):
    """Reads a ``FileSlice`` and no further; a file that ends early is an error."""

    def __init__(self, body: FileSlice) -> None:
        self._stream: BinaryIO = body.file.open("rb")
        self._stream.seek(body.offset)
        self._left = body.size

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(wanted)
        if len(data) < wanted:
            raise OSError(f"{self._stream.name} ended before the bytes it should hold")
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_body(body: Body) -> io.RawIOBase | io.BytesIO:
    """A blocking reader of ``body``, to close after use (a ``with`` block)."""
    return io.BytesIO(body) if isinstance(body, bytes) else _SliceReader(body)
