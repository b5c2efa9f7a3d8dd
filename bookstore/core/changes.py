"""Renames and copies, as a history follows them. Pure functions, no I/O.

A rename of ``from_path`` to ``to_path`` at ``changed_at`` moves the file there,
or, for a folder, every file under it. A version saved under a name before the
name was renamed belongs to the file's new name: ``follow`` walks a version
through every rename made after it was saved (a chain A to B to C, a swap
through a temporary name), which is how the archiver files a save still queued
when its file was renamed, and how a rebuilt index replays the renames.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["COPY", "RENAME", "Change", "ancestors", "follow", "moved"]

RENAME = "rename"
COPY = "copy"


class Change(NamedTuple):
    """One rename or copy, as kept in the store and the index."""

    kind: str
    from_path: str
    to_path: str
    changed_at: datetime
    renumbered: Mapping[str, int] = {}
    """The versions (by store key) the rename numbered anew: the new name had a history."""

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "kind": self.kind,
                "from": self.from_path,
                "to": self.to_path,
                "changed_at": self.changed_at.isoformat(),
                "renumbered": dict(self.renumbered),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Change | None:
        """The change a stored record holds; ``None`` for anything that is not one."""
        try:
            document: Any = json.loads(data)
            change = cls(
                str(document["kind"]),
                str(document["from"]),
                str(document["to"]),
                datetime.fromisoformat(document["changed_at"]),
                {str(key): int(number) for key, number in document["renumbered"].items()},
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if change.kind not in (RENAME, COPY) or change.changed_at.tzinfo is None:
            return None
        return change


def ancestors(path: str) -> list[str]:
    """``path`` and every folder it lies in: ``a/b/c`` gives ``a``, ``a/b``, ``a/b/c``."""
    parts = path.split("/")
    return ["/".join(parts[: count + 1]) for count in range(len(parts))]


def moved(path: str, from_path: str, to_path: str) -> str | None:
    """Where ``path`` is after ``from_path`` became ``to_path``; ``None`` if it did not move."""
    if path == from_path:
        return to_path
    if path.startswith(f"{from_path}/"):
        return to_path + path[len(from_path) :]
    return None


def follow(
    path: str, saved_at: datetime, store_key: str, renames: Iterable[Change]
) -> tuple[str, int | None]:
    """The name the version at ``store_key``, saved under ``path`` at ``saved_at``, has
    after ``renames`` (in the order they were made), and the number the last rename
    that renumbered it gave it (``None``: it keeps its own)."""
    number = None
    for change in renames:
        if change.kind != RENAME or change.changed_at <= saved_at:
            continue
        destination = moved(path, change.from_path, change.to_path)
        if destination is not None:
            path = destination
            number = change.renumbered.get(store_key, number)
    return path, number
