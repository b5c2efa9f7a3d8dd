"""Copies the contents manager makes ("Duplicate"), noted so that a copy's history says
which file, and which of its versions, it began as."""

from __future__ import annotations

from typing import Any

from bookstore.server.services import BookstoreServices

__all__ = ["follow_copies"]


def follow_copies(services: BookstoreServices, serverapp: Any, contents_manager: Any) -> None:
    """Note each copy of a kept file the contents manager makes, from the event it emits
    once the copy is saved."""
    event_logger = getattr(serverapp, "event_logger", None)
    schema_id = getattr(contents_manager, "event_schema_id", None)
    if event_logger is None or schema_id is None:
        return

    async def copied(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        path, source = data.get("path") or "", data.get("source_path") or ""
        kept = bool(path) and services.hooks.archives(path.strip("/"), "file")
        if data.get("action") == "copy" and source and kept:
            services.note_copy(source, path)

    event_logger.add_listener(schema_id=schema_id, listener=copied)
