"""Part epochs: the clock that lets prune delete parts while other servers write.

A packed version's parts are all kept in the epoch the version was written in,
and a writer reuses only parts of the current epoch. Prune deletes a part only
when its epoch ended at least one whole epoch ago and no version refers to it,
so a writer that chose to reuse a part always has at least one epoch to finish
writing the version that names it. ``docs/storage.md`` gives the argument.
Pure, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_EPOCH_SECONDS", "Epochs"]

DEFAULT_EPOCH_SECONDS = 24 * 60 * 60
"""A day: far longer than any upload, and far more than clocks disagree by."""


@dataclass(frozen=True, slots=True)
class Epochs:
    """Consecutive spans of ``seconds`` since the Unix epoch, numbered from 0."""

    seconds: int

    def of(self, moment: float) -> int:
        """The epoch ``moment`` (seconds since the Unix epoch) falls in."""
        return int(moment // self.seconds)

    def collectable(self, epoch: int, now: float) -> bool:
        """Whether parts of ``epoch`` that no version refers to may be deleted at ``now``."""
        return epoch <= self.of(now) - 2

    def to_json(self) -> bytes:
        return json.dumps({"seconds": self.seconds}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Epochs:
        """``ValueError`` unless ``data`` names a whole number of seconds, at least one."""
        try:
            document: Any = json.loads(data)
            seconds = document["seconds"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an epochs object ({exc})") from exc
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
            raise ValueError(f"an epoch of {seconds!r} seconds")
        return cls(seconds)
