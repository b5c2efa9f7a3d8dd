"""bookstore's events on Jupyter's event bus: a history changed, so a client showing it
(JupyterLab's History panel) updates it without asking again and again.

The schema (``event_schemas/version/v1.yaml``) ships in the package. An event is
a courtesy: whatever goes wrong emitting one is logged, and archiving or the
request that caused it goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from jupyter_events import EventLogger

from bookstore.core.version_record import VersionRecord
from bookstore.core.view import PathView

__all__ = ["VERSION_EVENT", "VersionEvents"]

VERSION_EVENT = "https://schema.jupyter.org/bookstore/version/v1"
"""The ``$id`` of the schema of bookstore's events."""
_SCHEMA = Path(__file__).parent / "event_schemas" / "version" / "v1.yaml"


class VersionEvents:
    """Emits a version's events on a server's ``event_logger``, its path named as the
    server's view names it."""

    def __init__(self, event_logger: EventLogger, view: PathView, log: logging.Logger) -> None:
        event_logger.register_event_schema(_SCHEMA)
        self.event_logger = event_logger
        self.view = view
        self.log = log

    def archived(self, version: VersionRecord) -> None:
        """A save was just archived as ``version``."""
        self._emit("archived", version)

    def annotated(self, version: VersionRecord) -> None:
        """``version``'s label or pin was just changed."""
        self._emit("annotated", version)

    def _emit(self, action: Literal["archived", "annotated"], version: VersionRecord) -> None:
        path = self.view.shown(version.path)
        if path is None:
            return  # a history outside the server's root: no client of this server shows it
        data = {"action": action, "path": path, "version": version.number}
        try:
            self.event_logger.emit(schema_id=VERSION_EVENT, data=data)
        except Exception:
            self.log.warning("bookstore: could not emit the event %s", data, exc_info=True)
