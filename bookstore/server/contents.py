"""Reading and writing files through the contents manager, under the contents API's rules.

Every path a bookstore endpoint acts on passes ``check_path`` first: a hidden file
is refused as the contents API refuses it (unless ``allow_hidden``), and a path
whose type ``archive_types`` leaves out has no history to show and is never
written. Nothing has been read or written when it refuses.

A restore is a save: the version is written back through the contents manager,
so it is archived as a new version, and whatever the file held is archived
first unless a version already holds it. Restores lose nothing.

A restore gives back exactly the bytes that were saved: the version is saved as
a file, so the contents manager writes it as it is, whatever its formatting or
nbformat version, valid or not (``RestorePlan.warning`` says when nbformat would
not accept it).

A restore or a clone never makes a notebook trusted: Jupyter signs what it saves
as a notebook when every cell says it is trusted, and stored JSON can say so for
anyone. Saved as a file, nothing is signed; Jupyter trusts the notebook when it
next reads it only if its signature store already trusts exactly that content.
"""

from __future__ import annotations

import asyncio
import posixpath
from pathlib import Path
from typing import Any

from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.utils import ensure_async
from tornado import web

from bookstore.core.notebook import bytes_to_model, model_to_bytes
from bookstore.core.view import PathView
from bookstore.server.services import BookstoreServices

__all__ = [
    "check_path",
    "current_content",
    "file_exists",
    "refuse_hidden",
    "save_content",
    "shows_history",
    "write_version",
]

_MAX_NAME_BYTES = 255


async def check_path(
    contents_mgr: Any, services: BookstoreServices, path: str, *, target: bool = False
) -> None:
    """Refuse a path the contents API would refuse, or whose saves are not archived.

    A path to read (a history, a version, the file to publish) is refused with
    the contents API's answer to ``GET`` of a hidden file, 404 as if it did not
    exist, and so is a type that is not archived: it has no history here. A
    ``target`` to write is refused as ``PUT`` refuses it, with 400, and also
    when it cannot be written (a missing folder, a folder, a name too long).
    """
    if target:
        _check_name_lengths(path)
    await refuse_hidden(contents_mgr, path, target=target)
    if target:
        await _check_folder(contents_mgr, path)
    if not services.hooks.archives(path, "file"):
        types = list(services.settings.archive_types)
        why = f"c.BookstoreSettings.archive_types is {types}, so its saves are not archived"
        if target:
            raise web.HTTPError(400, f"bookstore does not write {path}: {why}")
        raise web.HTTPError(404, f"{path} has no history: {why}")


async def shows_history(contents_mgr: Any, services: BookstoreServices, path: str) -> bool:
    """Whether ``check_path`` lets ``path``'s history be read: for listings, which leave
    out what the contents API hides or bookstore does not archive, instead of refusing."""
    return services.hooks.archives(path, "file") and not await _hidden(contents_mgr, path)


async def refuse_hidden(contents_mgr: Any, path: str, *, target: bool) -> None:
    """Refuse a hidden path as the contents API does: 404 to read it, 400 to write it."""
    if not await _hidden(contents_mgr, path):
        return
    if target:
        raise web.HTTPError(400, f"{path} is hidden; the server does not write hidden files")
    raise web.HTTPError(404, f"file or directory {path!r} does not exist")


async def _hidden(contents_mgr: Any, path: str) -> bool:
    """Whether the contents API hides ``path``; by its name when it cannot be looked at."""
    if contents_mgr.allow_hidden:
        return False
    try:
        return bool(await ensure_async(contents_mgr.is_hidden(path)))
    except OSError:  # a name too long, a file where a folder should be
        return any(part.startswith(".") for part in path.split("/"))


def _check_name_lengths(target: str) -> None:
    if any(len(part.encode()) > _MAX_NAME_BYTES for part in target.split("/")):
        raise web.HTTPError(400, f"a part of {target!r} is longer than file names may be")


async def _check_folder(contents_mgr: Any, target: str) -> None:
    folder = posixpath.dirname(target)
    if folder and not await ensure_async(contents_mgr.dir_exists(folder)):
        raise web.HTTPError(404, f"the folder {folder} does not exist")
    if await ensure_async(contents_mgr.dir_exists(target)):
        raise web.HTTPError(409, f"{target} is a folder; name a file")


async def file_exists(contents_mgr: Any, path: str) -> bool:
    return bool(await ensure_async(contents_mgr.file_exists(path)))


async def stored_file_exists(contents_mgr: Any, view: PathView, stored: str) -> bool:
    """Whether the file a stored path names is there; one outside the server's root,
    which it cannot see, counts as there."""
    name = view.shown(stored)
    return name is None or await file_exists(contents_mgr, name)


async def current_content(contents_mgr: Any, path: str) -> tuple[str | None, bytes]:
    """The file's bytes as saved, and its local path when the manager keeps files."""
    if isinstance(contents_mgr, FileManagerMixin):
        os_path: str = contents_mgr._get_os_path(path)  # type: ignore[no-untyped-call]
        return os_path, await asyncio.to_thread(Path(os_path).read_bytes)
    return None, model_to_bytes(await ensure_async(contents_mgr.get(path, content=True)))


async def write_version(
    contents_mgr: Any, services: BookstoreServices, target: str, content: bytes
) -> str | None:
    """Save ``content`` as ``target`` after making sure the target's content is archived.

    Returns the plan's warning: why nbformat would not accept the notebook written.
    """
    os_path, current = None, None
    if await file_exists(contents_mgr, target):
        os_path, current = await current_content(contents_mgr, target)
    plan = await services.history.plan_restore(target, content, current)
    if plan.up_to_date:
        return plan.warning
    if plan.must_archive_current:
        services.hooks.capture(target, os_path, current)
    await save_content(contents_mgr, target, content)
    return plan.warning


async def save_content(contents_mgr: Any, path: str, content: bytes) -> None:
    """Save exactly ``content`` at ``path`` through the contents manager, signing nothing."""
    await ensure_async(contents_mgr.save(bytes_to_model(path, content), path))
