"""Archived versions as Jupyter checkpoints, so JupyterLab's own picker shows history.

Stock JupyterLab 4 and Notebook 7 list ``GET /api/contents/<path>/checkpoints``
under File > Revert Notebook to Checkpoint. Here that list is every archived
version of the path (from the index: no store call) followed by saves still
waiting in the outbox, oldest first. Restoring one writes it back through the
contents manager, which archives the restored state as a new version.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime
from typing import Any

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from sqlalchemy.exc import SQLAlchemyError
from tornado.web import HTTPError
from traitlets import Instance

from bookstore.archiving.outbox import OutboxEntry
from bookstore.core import keys
from bookstore.core.errors import VersionNotFound
from bookstore.index import Version
from bookstore.server.contents import current_content, write_version
from bookstore.server.http_errors import http_errors
from bookstore.server.save_hooks import save_in_progress
from bookstore.server.services import BookstoreServices

__all__ = ["BookstoreCheckpoints", "checkpoint_id"]

_PENDING = re.compile(r"\Apending-(?P<name>[\w-]+)\Z")
_NUMBER = re.compile(rf"\A{keys.VERSION_NUMBER}\Z")


def checkpoint_id(item: Version | OutboxEntry) -> str:
    """``3`` for version 3; ``pending-…`` for a save not archived yet (ids match ``[\\w-]+``)."""
    if isinstance(item, Version):
        return str(item.number)
    return "pending-" + item.outbox_file.name.removesuffix(".save").replace(".", "_")


def _model(item: Version | OutboxEntry) -> dict[str, Any]:
    queued: datetime = item.queued_at if isinstance(item, Version) else item.queued_time
    return {"id": checkpoint_id(item), "last_modified": queued}


class BookstoreCheckpoints(AsyncCheckpoints):
    """Checkpoints backed by the archive; history is never deleted from here."""

    services = Instance(BookstoreServices, help="The history and archive queue that serve us.")

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        in_progress = save_in_progress(path.strip("/"))
        if in_progress is not None:
            # Inside a save, which only asks whether a checkpoint exists: its own will.
            return [{"id": "pending-save", "last_modified": in_progress}]
        name = keys.normalize_path(path)
        archived = [_model(version) for version in await self._indexed(name)]
        return archived + [_model(entry) for entry in self.services.archiver.pending(name)]

    async def _indexed(self, name: str) -> list[Version]:
        """The path's versions; none while the index is not ready, so a save never fails on it.

        The contents manager lists checkpoints inside every save.
        """
        if not self.services.archiver.ready:
            return []
        try:
            return await self.services.history.versions(name)
        except SQLAlchemyError as exc:
            self.log.warning("bookstore: cannot read the index for checkpoints: %s", exc)
            return []

    async def create_checkpoint(self, contents_mgr: Any, path: str) -> dict[str, Any]:
        """The version holding the file's current content, queuing it if no version does."""
        name = keys.normalize_path(path)
        in_progress = save_in_progress(name)
        if in_progress is not None:
            # Called from inside a save, whose post-save hook queues this very content.
            return {"id": "pending-save", "last_modified": in_progress}
        os_path, content = await current_content(contents_mgr, name)
        versions = await self._indexed(name)
        latest = versions[-1] if versions else None
        if (
            latest is not None
            and latest.sha256 == hashlib.sha256(content).hexdigest()
            and not self.services.archiver.pending(name)
        ):
            return _model(latest)
        try:
            entry = self.services.hooks.capture(name, os_path, content)
        except OSError as exc:
            raise HTTPError(507, f"bookstore could not keep this checkpoint: {exc}") from exc
        return _model(entry)

    async def restore_checkpoint(self, contents_mgr: Any, checkpoint_id: str, path: str) -> None:
        """Save the chosen version as the file's content: the restore is itself archived."""
        name = keys.normalize_path(path)
        with http_errors():
            content = await self._content_of(name, checkpoint_id)
            await write_version(contents_mgr, self.services, name, content)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        raise HTTPError(
            403, "bookstore keeps every version; remove old ones with `bookstore-history prune`"
        )

    async def delete_all_checkpoints(self, path: str) -> None:
        """Deleting a notebook keeps its history: it can be listed and restored later."""
        self.log.info("bookstore: %s was deleted; its archived versions are kept", path)

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        """Versions stay under the path they were saved at (their keys name it)."""

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        self.log.info(
            "bookstore: %s was renamed to %s; versions saved before stay listed under %s",
            old_path,
            new_path,
            old_path,
        )

    async def _content_of(self, name: str, checkpoint: str) -> bytes:
        if _NUMBER.match(checkpoint):
            _, content = await self.services.history.fetch(name, int(checkpoint))
            return content
        if _PENDING.match(checkpoint) is None:
            raise VersionNotFound(f"{checkpoint!r} is not a checkpoint of {name!r}")
        archiver = self.services.archiver
        for entry in archiver.pending(name):
            if checkpoint_id(entry) == checkpoint:
                hashed = await asyncio.to_thread(archiver.outbox.load, entry)
                return hashed.record.content
        raise VersionNotFound(
            f"checkpoint {checkpoint!r} of {name!r} has been archived since; reload the list"
        )
