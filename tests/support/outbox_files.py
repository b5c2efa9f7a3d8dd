"""Looking at an outbox and an index behind bookstore's back, and a store that can be
switched off and on without a restart: the tests of the outbox share these."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path

__all__ = ["BlockedDirectory", "failed_entries", "sha256", "waiting_entries", "workspace_rows"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def workspace_rows(index_file: Path) -> list[tuple[str, str, int, str]]:
    """(workspace, path, version, sha256) of every indexed version, in that order."""
    with sqlite3.connect(f"file:{index_file}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT workspace, path, version, sha256 FROM versions "
            "ORDER BY workspace, path, version"
        ).fetchall()


def waiting_entries(outbox: Path) -> list[Path]:
    """The saves waiting in an outbox directory (not those set aside)."""
    return sorted(outbox.glob("*.save"))


def failed_entries(outbox: Path) -> list[Path]:
    """The saves an outbox has set aside, because they can never be archived as they are."""
    return sorted((outbox / "failed").glob("*.save"))


class BlockedDirectory:
    """A directory that cannot be created while ``blocked`` (a file holds its parent's
    name), as a store on a disk that is not mounted; ``unblock`` makes room for it."""

    def __init__(self, base: Path) -> None:
        self.parent = base / "unmounted"
        self.path = self.parent / "store"
        self.block()

    def block(self) -> None:
        """Put the file back; a store made meanwhile is moved aside, as a disk unmounted."""
        if self.parent.is_dir():
            self.parent.rename(self.parent.with_name(f"{self.parent.name}.{uuid.uuid4().hex[:8]}"))
        self.parent.write_text("not a directory")

    def unblock(self) -> None:
        self.parent.unlink()
        self.parent.mkdir()
