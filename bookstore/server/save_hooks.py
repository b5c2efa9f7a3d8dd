"""How saves enter the archive: the contents manager's pre- and post-save hooks.

The pre-save hook notes the save's time; the post-save hook copies the bytes the
contents manager has just written into the outbox, so a notebook is serialised
once per save (by the contents manager, off the event loop) and the copy costs a
kernel file copy and an fsync. Contents managers that keep no local file get the
content serialised in the pre-save hook instead.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from jupyter_server.services.contents.fileio import FileManagerMixin

from bookstore.archiving.outbox import Outbox, OutboxEntry
from bookstore.core.notebook import is_notebook_path, model_to_bytes
from bookstore.core.view import AS_STORED, PathView

__all__ = ["NotKept", "SaveHooks", "save_in_progress", "saved_path"]

_pending_save: contextvars.ContextVar[tuple[str, datetime] | None] = contextvars.ContextVar(
    "bookstore_pending_save", default=None
)


def save_in_progress(path: str) -> datetime | None:
    """The time of the save of ``path`` this task is making, if its post-save hook is to come."""
    pending = _pending_save.get()
    return pending[1] if pending is not None and pending[0] == saved_path(path) else None


def saved_path(path: str) -> str:
    """The path a save wrote, as the contents API names it: ``./a.ipynb`` and ``/a.ipynb``
    are saved as ``a.ipynb`` (a ``..`` is kept, and the archive refuses it)."""
    return "/".join(part for part in path.split("/") if part not in ("", "."))


class NotKept(NamedTuple):
    """Saves the outbox could not keep, so their versions are not in the history."""

    saves: int
    latest_at: datetime
    reason: str

    def __str__(self) -> str:
        saves = "1 save was" if self.saves == 1 else f"{self.saves} saves were"
        return (
            f"{saves} not kept for history since the server started (the latest at "
            f"{self.latest_at:%Y-%m-%d %H:%M:%S} UTC): {self.reason}"
        )


class SaveHooks:
    """The pre- and post-save hooks that put every save in the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        submit: Callable[[OutboxEntry], None],
        archive_types: Collection[str],
        log: logging.Logger,
        view: PathView = AS_STORED,
    ) -> None:
        self.outbox = outbox
        self.submit = submit
        self.archive_types = frozenset(archive_types)
        self.log = log
        self.view = view
        """Saves are kept under the stored path of the contents path they were made to."""
        self.not_kept: NotKept | None = None
        """Saves whose versions are missing because the outbox could not keep them."""
        self._last_time = datetime.min.replace(tzinfo=timezone.utc)

    def install(self, contents_manager: Any) -> None:
        """Register the hooks on any jupyter_server 2 contents manager, once."""
        if self.pre_save not in contents_manager._pre_save_hooks:
            contents_manager.register_pre_save_hook(self.pre_save)
            contents_manager.register_post_save_hook(self.post_save)

    def archives(self, path: str, kind: str | None) -> bool:
        """Whether saves of this path are archived; a ``.ipynb`` uploaded as a file counts."""
        return ("notebook" if is_notebook_path(path) else kind) in self.archive_types

    def pre_save(self, model: dict[str, Any], path: str, contents_manager: Any, **_: Any) -> None:
        """Stamp the save; without a local file to copy later, keep its content now.

        A chunked upload runs this hook on its first chunk only, so it is stamped
        by the post-save hook of its last chunk instead, when the file is whole.
        """
        if model.get("chunk") is not None:
            return
        if not isinstance(contents_manager, FileManagerMixin):
            self.keep_model(model, path)
        elif model.get("content") is not None and self.archives(path, model.get("type")):
            _pending_save.set((saved_path(path), self._next_time()))

    def post_save(self, model: dict[str, Any], os_path: str, contents_manager: Any) -> None:
        """Copy the file the save wrote into the outbox before the save is acknowledged."""
        pending = _pending_save.get()
        _pending_save.set(None)
        if pending is None:
            # The last chunk of an upload (its pre-save hook ran in another request).
            path = saved_path(str(model.get("path", "")))
            if not path or not self.archives(path, model.get("type")):
                return
            pending = (path, self._next_time())
        path, queued_time = pending
        stored = self.view.stored(path)
        self._keep(lambda: self.outbox.add_file(stored, queued_time, os_path))

    def keep_model(self, model: dict[str, Any], path: str) -> None:
        """Queue the bytes a save of ``model`` writes, if its type is archived."""
        if model.get("content") is None or not self.archives(path, model.get("type")):
            return
        path, queued_time = saved_path(path), self._next_time()
        stored = self.view.stored(path)
        self._keep(lambda: self.outbox.add_bytes(stored, queued_time, model_to_bytes(model)))

    def capture(self, path: str, os_path: str | None, content: bytes | None) -> OutboxEntry:
        """Queue the current state of a file as a save (a checkpoint asked for by the UI).

        The entry already waiting is returned when it holds the same content. Raises
        ``OSError`` (``OutboxFull`` past the outbox's limits) when the outbox cannot
        keep it: the caller reports it.
        """
        queued_time = self._next_time()
        if os_path is not None:
            entry = self.outbox.add_file(self.view.stored(path), queued_time, os_path)
        else:
            entry = self.outbox.add_bytes(self.view.stored(path), queued_time, content or b"")
        self.submit(entry)
        return entry

    def _keep(self, add: Callable[[], OutboxEntry]) -> None:
        try:
            entry = add()
        except OSError as exc:
            # The save itself has succeeded; failing it now would lose more than it saves.
            self.log.error(
                "bookstore: could not keep this save for archiving (%s); the notebook is "
                "saved, but this version will not be in its history",
                exc,
            )
            saves = self.not_kept.saves + 1 if self.not_kept else 1
            self.not_kept = NotKept(saves, datetime.now(timezone.utc), str(exc))
            return
        self.submit(entry)

    def _next_time(self) -> datetime:
        """Now in UTC, strictly later than the previous save's time: keys never collide."""
        now = datetime.now(timezone.utc)
        if now <= self._last_time:
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now
