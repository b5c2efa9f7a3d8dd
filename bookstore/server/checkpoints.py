"""Archived versions as Jupyter checkpoints, so JupyterLab's own picker shows history.

Stock JupyterLab 4 and Notebook 7 list ``GET /api/contents/<path>/checkpoints``
under File > Revert Notebook to Checkpoint. Here that list is the path's newest
archived versions (from the index: no store call) followed by its saves still
waiting in the outbox, oldest first, ``LISTED_CHECKPOINTS`` at most: older
versions are paged by the REST API and the command line. Restoring one writes it
back through the contents manager, which archives the restored state as a new
version.

The contents API's rules hold here too:

* A hidden file (unless ``ContentsManager.allow_hidden``) is refused as the
  contents API refuses it: listing and creating its checkpoints answer 404, as
  ``GET`` of the file does; restoring or deleting one answers 400, as ``PUT`` and
  ``DELETE`` do. Nothing is read, archived or written.
* A file whose type ``archive_types`` leaves out is not bookstore's to keep: it
  gets Jupyter's own checkpoints (the contents manager's ``checkpoints_class``,
  by default one copy in ``.ipynb_checkpoints`` beside the file), as it would
  without bookstore. JupyterLab creates a checkpoint after every save of any
  file; those go on working, and archive nothing.

A checkpoint id is ``3`` for version 3, and ``pending-<UTC time of the save>``
for a save not archived yet. Every id listed or returned stays restorable for as
long as its version exists: a pending id restores its save while that waits in
the outbox (set aside there, too, if it can never be archived), and afterwards
the version archived from it: the one saved at that time, or, when the save held
what the version before it held and so added none, that version. The time stays
with the save across restarts, and when another server takes it over.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.services.contents.manager import AsyncContentsManager
from jupyter_server.utils import ensure_async
from tornado.web import HTTPError
from traitlets import Instance, default

from bookstore.archiving.outbox import Outbox, OutboxEntry
from bookstore.core import keys
from bookstore.core.errors import VersionNotFound
from bookstore.core.notebook import model_to_bytes
from bookstore.core.version_record import VersionRecord
from bookstore.server.contents import refuse_hidden, write_version
from bookstore.server.http_errors import http_errors
from bookstore.server.save_hooks import save_in_progress
from bookstore.server.services import BookstoreServices

__all__ = ["LISTED_CHECKPOINTS", "BookstoreCheckpoints", "attach_checkpoints", "checkpoint_id"]

LISTED_CHECKPOINTS = 100
"""The most checkpoints a list holds: the newest saves, waiting ones first."""

_STAMP = "%Y%m%dT%H%M%S_%fZ"
_PENDING = re.compile(r"\Apending-(?P<stamp>\d{8}T\d{6}_\d{6}Z)(?:-[\w-]+)?\Z")
"""A pending id; the tail after the time is what ids of earlier releases carried."""
_NUMBER = re.compile(rf"\A{keys.VERSION_NUMBER}\Z")
_CHUNK = 1 << 20


def checkpoint_id(item: VersionRecord | OutboxEntry) -> str:
    """``3`` for version 3; ``pending-<UTC time>`` for a save not archived yet (``[\\w-]+``)."""
    if isinstance(item, OutboxEntry):
        return "pending-" + item.queued_time.astimezone(timezone.utc).strftime(_STAMP)
    return str(item.number)


def _saved_at(checkpoint: str) -> datetime | None:
    """The time of the save a pending id names."""
    match = _PENDING.match(checkpoint)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=timezone.utc)


def _model(item: VersionRecord | OutboxEntry, saved_as: str | None = None) -> dict[str, Any]:
    """A checkpoint model; ``saved_as``: the name a version was saved under, when the
    file had another name then (JupyterLab shows the time; other clients may show it)."""
    queued = item.queued_time if isinstance(item, OutboxEntry) else item.queued_at
    model = {"id": checkpoint_id(item), "last_modified": queued}
    return model if saved_as is None else {**model, "saved_as": saved_as}


def _name(path: str) -> str:
    with http_errors():
        return keys.normalize_path(path)


class BookstoreCheckpoints(AsyncCheckpoints):
    """Checkpoints backed by the archive; history is never deleted from here."""

    services = Instance(BookstoreServices, help="The history and archive queue that serve us.")
    # Typed ``Any`` for mypy: jupyter_server's methods carry no annotations.
    contents_manager: Any = Instance(
        AsyncContentsManager, help="The contents manager whose checkpoints these are."
    )
    jupyter_checkpoints: Any = Instance(
        AsyncCheckpoints, help="Jupyter's own checkpoints, for the files bookstore does not keep."
    )

    @default("jupyter_checkpoints")
    def _as_without_bookstore(self) -> Any:
        """What the contents manager would have made, had bookstore not replaced it."""
        manager = self.contents_manager
        return manager.checkpoints_class(**manager.checkpoints_kwargs)

    # -- the checkpoints API ---------------------------------------------------------

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        in_progress = save_in_progress(path)
        if in_progress is not None:
            # Inside a save, which only asks whether a checkpoint exists: its own will.
            return [{"id": "pending-save", "last_modified": in_progress}]
        name = _name(path)
        await refuse_hidden(self.contents_manager, name, target=False)
        if not self._keeps(name):
            return list(await self.jupyter_checkpoints.list_checkpoints(path))
        waiting = self._pending(name)[-LISTED_CHECKPOINTS:]
        listed: list[VersionRecord | OutboxEntry] = [
            *await self._newest(name, LISTED_CHECKPOINTS - len(waiting)),
            *waiting,
        ]
        return [self._model_of(name, item) for item in listed]

    async def create_checkpoint(self, contents_mgr: Any, path: str) -> dict[str, Any]:
        """The checkpoint holding the file's content: the save waiting with it, or the
        latest version if it holds it, else a save queued now."""
        in_progress = save_in_progress(path)
        if in_progress is not None:
            # Called from inside a save, whose post-save hook queues this very content.
            return {"id": "pending-save", "last_modified": in_progress}
        name = _name(path)
        await refuse_hidden(self.contents_manager, name, target=False)
        if not self._keeps(name):
            return dict(await self.jupyter_checkpoints.create_checkpoint(contents_mgr, path))
        now = await _file_now(contents_mgr, name)
        if not self._pending(name):
            # (A save waiting with this content is found by the outbox, which keeps it once.)
            latest = await self._latest(name)
            if latest is not None and latest.sha256 == await asyncio.to_thread(now.sha256):
                return _model(latest)
        try:
            entry = self.services.hooks.capture(name, now.os_path, now.content)
        except OSError as exc:
            raise HTTPError(507, f"bookstore could not keep this checkpoint: {exc}") from exc
        return _model(entry)

    async def restore_checkpoint(self, contents_mgr: Any, checkpoint_id: str, path: str) -> None:
        """Save the chosen version as the file's content: the restore is itself archived."""
        name = _name(path)
        await refuse_hidden(self.contents_manager, name, target=True)
        if not self._keeps(name):
            await self.jupyter_checkpoints.restore_checkpoint(contents_mgr, checkpoint_id, path)
            return
        with http_errors():
            content = await self._content_of(name, checkpoint_id)
            warning = await write_version(contents_mgr, self.services, name, content)
        if warning is not None:
            self.log.warning("bookstore: checkpoint %s of %s: %s", checkpoint_id, name, warning)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        name = _name(path)
        await refuse_hidden(self.contents_manager, name, target=True)
        if not self._keeps(name):
            await self.jupyter_checkpoints.delete_checkpoint(checkpoint_id, path)
            return
        raise HTTPError(
            403, "bookstore keeps every version; remove old ones with `bookstore-history prune`"
        )

    async def delete_all_checkpoints(self, path: str) -> None:
        """Deleting a notebook keeps its history: it can be listed and restored later."""
        if not self._keeps(path):
            await self.jupyter_checkpoints.delete_all_checkpoints(path)
            return
        self.log.info("bookstore: %s was deleted; its archived versions are kept", path)

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        """A version follows its file with the rest of its history (``rename_all_checkpoints``)."""
        if not self._keeps(old_path):
            await self.jupyter_checkpoints.rename_checkpoint(checkpoint_id, old_path, new_path)

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        """The contents manager renamed a file or a folder: its history follows it, to a
        name whose type is archived (else it stays, listed as deleted, where it was)."""
        folder = await ensure_async(self.contents_manager.dir_exists(new_path))
        if folder or not self._keeps(old_path):
            await self.jupyter_checkpoints.rename_all_checkpoints(old_path, new_path)
        if folder or (self._keeps(old_path) and self._keeps(new_path)):
            await self.services.follow_rename(old_path, new_path, self.log)

    def _model_of(self, name: str, item: VersionRecord | OutboxEntry) -> dict[str, Any]:
        if isinstance(item, OutboxEntry):
            return _model(item)
        saved_as = self.services.history.saved_as(item)
        return _model(item, None if saved_as == name else saved_as)

    # -- the contents API's rules ----------------------------------------------------

    def _keeps(self, path: str) -> bool:
        """Whether ``path``'s saves are archived, so its checkpoints are versions."""
        return self.services.hooks.archives(path.strip("/"), "file")

    # -- versions ----------------------------------------------------------------------

    def _pending(self, name: str) -> list[OutboxEntry]:
        """The saves of ``name`` waiting to be archived, oldest first."""
        return self.services.archiver.pending(self.services.history.view.stored(name))

    async def _newest(self, name: str, count: int) -> Sequence[VersionRecord]:
        """The path's newest ``count`` versions, oldest first; none while the index is
        not ready or cannot be read, so that listing never fails on it."""
        if count <= 0 or not self.services.archiver.ready:
            return []
        history = self.services.history
        try:
            return await history.versions(name, limit=count, newest=True)
        except history.outages as exc:
            self.log.warning("bookstore: cannot read the history for checkpoints: %s", exc)
            return []

    async def _latest(self, name: str) -> VersionRecord | None:
        if not self.services.archiver.ready:
            return None
        history = self.services.history
        try:
            return await history.latest(name)
        except history.outages as exc:
            self.log.warning("bookstore: cannot read the history for checkpoints: %s", exc)
            return None

    async def _content_of(self, name: str, checkpoint: str) -> bytes:
        if _NUMBER.match(checkpoint):
            _, content = await self.services.history.fetch(name, int(checkpoint))
            return content
        saved_at = _saved_at(checkpoint)
        if saved_at is None:
            raise VersionNotFound(f"{checkpoint!r} is not a checkpoint of {name!r}")
        archiver, stored = self.services.archiver, self.services.history.view.stored(name)
        queued = [entry for entry in archiver.pending(stored) if entry.queued_time == saved_at]
        waiting = await asyncio.to_thread(
            _waiting_content, archiver.outbox, stored, saved_at, queued
        )
        if waiting is not None:
            return waiting
        try:
            _, content = await self.services.history.fetch(name, at=saved_at)
        except VersionNotFound:
            raise VersionNotFound(
                f"checkpoint {checkpoint!r} of {name!r} is neither waiting to be archived "
                "nor archived"
            ) from None
        return content


def attach_checkpoints(parent: Any, services: BookstoreServices, contents_manager: Any) -> None:
    """Make the archive the contents manager's checkpoints (an asynchronous one's only)."""
    if isinstance(contents_manager, AsyncContentsManager):
        contents_manager.checkpoints = BookstoreCheckpoints(
            parent=parent, services=services, contents_manager=contents_manager
        )
    else:
        parent.log.warning(
            "bookstore: %s is not asynchronous, so archived versions are not offered as "
            "checkpoints (File > Revert to Checkpoint); they are archived all the same",
            type(contents_manager).__name__,
        )


def _waiting_content(
    outbox: Outbox, name: str, saved_at: datetime, queued: list[OutboxEntry]
) -> bytes | None:
    """The bytes of the save of ``name`` made at ``saved_at`` while it is in the outbox.

    Blocking. Looked for where an entry goes next: queued in this server, in the
    outbox (before start-up, or left by a server that is gone), set aside; one that
    moves meanwhile is found further on, or has been archived.
    """

    def candidates() -> Iterator[OutboxEntry]:
        yield from queued
        for entry in outbox.pending():
            if entry.path == name and entry.queued_time == saved_at:
                yield entry
        for item in outbox.set_aside_saves():
            if (item.path, item.queued_time) == (name, saved_at) and item.workspace in (
                None,
                outbox.workspace,
            ):
                yield OutboxEntry(item.outbox_file, name, saved_at)

    for entry in candidates():
        try:
            return outbox.read(entry)
        except FileNotFoundError:
            continue
    return None


class _FileNow(NamedTuple):
    """A file as it is now: its local path, or, from a contents manager that keeps no
    local files, its bytes."""

    os_path: str | None
    content: bytes | None

    def sha256(self) -> str:
        """The content's sha256, read in chunks; blocking."""
        digest = hashlib.sha256()
        if self.os_path is None:
            digest.update(self.content or b"")
            return digest.hexdigest()
        with open(self.os_path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


async def _file_now(contents_mgr: Any, name: str) -> _FileNow:
    if isinstance(contents_mgr, FileManagerMixin):
        os_path: str = contents_mgr._get_os_path(name)  # type: ignore[no-untyped-call]
        if not await asyncio.to_thread(os.path.isfile, os_path):
            raise HTTPError(404, f"file {name!r} does not exist")
        return _FileNow(os_path, None)
    model = await ensure_async(contents_mgr.get(name, content=True))
    return _FileNow(None, await asyncio.to_thread(model_to_bytes, model))
