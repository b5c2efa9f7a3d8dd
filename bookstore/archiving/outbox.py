"""The outbox: each save's bytes, on local disk before the save is acknowledged.

An entry is one file, ``<UTC timestamp>-<pid>-<n>.save``: a JSON header line
(path, queued time) followed by the saved bytes. It is written to ``tmp/``,
fsynced, and renamed into place, so an entry is either whole or absent. It is
removed only after its version is stored and indexed; whatever is left after a
crash is archived at the next start.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from bookstore.core.keys import format_timestamp
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.store.durable import fsync_directory

__all__ = ["Outbox", "OutboxEntry"]

_SUFFIX = ".save"


class OutboxEntry(NamedTuple):
    """A save waiting in the outbox; its bytes stay on disk until they are needed."""

    outbox_file: Path
    """The entry's own file in the outbox directory."""
    path: str
    """The notebook path that was saved, as the contents API names it."""
    queued_time: datetime


class Outbox:
    """A directory of saves not yet archived. Safe to share between processes."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._tmp = self.directory / "tmp"
        self._names = itertools.count()

    def add_file(self, path: str, queued_time: datetime, source: str) -> OutboxEntry:
        """Copy the file a save just wrote (in the kernel: no serialising, no Python loop)."""
        with self._writing(path, queued_time) as (entry, out), open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        return entry

    def add_bytes(self, path: str, queued_time: datetime, content: bytes) -> OutboxEntry:
        """Keep bytes a contents manager will not write to a local file."""
        with self._writing(path, queued_time) as (entry, out):
            out.write(content)
        return entry

    def pending(self) -> list[OutboxEntry]:
        """Every waiting entry, oldest save first."""
        if not self.directory.is_dir():
            return []
        entries = []
        for file in sorted(self.directory.glob(f"*{_SUFFIX}")):
            with open(file, "rb") as stream:
                header = json.loads(stream.readline())
            entries.append(
                OutboxEntry(file, header["path"], datetime.fromisoformat(header["queued_time"]))
            )
        return entries

    def load(self, entry: OutboxEntry) -> HashedRecord:
        """The entry's record and sha256; blocking, so run it off the event loop."""
        with open(entry.outbox_file, "rb") as stream:
            stream.readline()
            content = stream.read()
        return HashedRecord.of(ArchiveRecord(entry.path, content, entry.queued_time))

    def remove(self, entry: OutboxEntry) -> None:
        """Forget an archived entry (another process may have removed it already)."""
        entry.outbox_file.unlink(missing_ok=True)

    @contextmanager
    def _writing(self, path: str, queued_time: datetime) -> Iterator[tuple[OutboxEntry, BinaryIO]]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        name = f"{format_timestamp(queued_time)}-{os.getpid()}-{next(self._names):08d}{_SUFFIX}"
        temporary = self._tmp / name
        header = {"path": path, "queued_time": queued_time.isoformat()}
        try:
            with open(temporary, "wb") as out:
                out.write(json.dumps(header).encode() + b"\n")
                yield OutboxEntry(self.directory / name, path, queued_time), out
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.directory / name)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(self.directory)
