"""Durable file writes: what the outbox, the local store and restores all rely on."""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["fsync_directory", "replace_atomically", "write_durably"]


def fsync_directory(path: Path) -> None:
    """Make a rename or link inside ``path`` survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Create ``path`` (it must not exist) holding ``data``, or its pieces, flushed to disk."""
    try:
        with path.open("xb") as stream:
            for piece in (data,) if isinstance(data, bytes) else data:
                stream.write(piece)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a reader or a crash sees the old file or the new, whole.

    Temporary files that an earlier, interrupted replace of ``path`` left are removed.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    write_durably(temporary, data)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
