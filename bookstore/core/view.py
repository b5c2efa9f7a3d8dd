"""How a server, or a command, names the paths of the histories it shows.

A history belongs to a file. Unless a workspace is configured, histories are kept
under the file's absolute path, so two project folders never share one, and a
server started in a parent folder finds the same history under a longer name. A
server rooted at ``/home/ada/project`` then names the history of
``/home/ada/project/analysis.ipynb`` ``analysis.ipynb``: its view's ``base`` is
``home/ada/project``. With a configured workspace (S3, JupyterHub), paths are
relative to the server's root, as they always were: the base is empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

__all__ = ["AS_STORED", "PathView"]


class PathView(NamedTuple):
    """Stored paths (the index's and the store's) seen from one root."""

    base: str = ""
    """The root as a stored path (no leading ``/``); empty when paths are stored as seen,
    or when the root is ``/``."""
    by_file: bool = False
    """Whether stored paths are absolute paths (without their leading ``/``)."""

    @classmethod
    def of_root(cls, root: str | Path) -> PathView:
        """The view of a server or command rooted at ``root``, histories kept by file."""
        return cls(Path(root).resolve().as_posix().strip("/"), by_file=True)

    def stored(self, path: str) -> str:
        """The stored path of ``path``, named relative to the root."""
        return f"{self.base}/{path}" if self.base else path

    def shown(self, stored: str) -> str | None:
        """``stored`` as named relative to the root; ``None`` if it lies outside it."""
        if not self.base:
            return stored
        inside = stored.removeprefix(f"{self.base}/")
        return inside if inside != stored else None

    def name(self, stored: str) -> str:
        """``stored`` as named relative to the root, or absolutely if it lies outside it."""
        shown = self.shown(stored)
        return self.anywhere(stored) if shown is None else shown

    def anywhere(self, stored: str) -> str:
        """``stored`` named for a listing of every root: absolute, when kept by file."""
        return f"/{stored}" if self.by_file else stored


AS_STORED = PathView()
"""The view of a configured workspace: paths are stored as they are named."""
