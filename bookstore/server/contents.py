"""Reading and writing files through the contents manager, for restores and clones.

A restore is a save: the version is written back through the contents
manager, so it is archived as a new version, and whatever the file held is
archived first unless a version already holds it. Restores lose nothing.
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
from bookstore.server.services import BookstoreServices

__all__ = ["check_writable", "current_content", "file_exists", "write_version"]

_MAX_NAME_BYTES = 255


async def file_exists(contents_mgr: Any, path: str) -> bool:
    return bool(await ensure_async(contents_mgr.file_exists(path)))


async def current_content(contents_mgr: Any, path: str) -> tuple[str | None, bytes]:
    """The file's bytes as saved, and its local path when the manager keeps files."""
    if isinstance(contents_mgr, FileManagerMixin):
        os_path: str = contents_mgr._get_os_path(path)  # type: ignore[no-untyped-call]
        return os_path, await asyncio.to_thread(Path(os_path).read_bytes)
    return None, model_to_bytes(await ensure_async(contents_mgr.get(path, content=True)))


async def write_version(
    contents_mgr: Any, services: BookstoreServices, target: str, content: bytes
) -> None:
    """Save ``content`` as ``target`` after making sure the target's content is archived."""
    os_path, current = None, None
    if await file_exists(contents_mgr, target):
        os_path, current = await current_content(contents_mgr, target)
    plan = await services.history.plan_restore(target, content, current)
    if plan.up_to_date:
        return
    if plan.must_archive_current:
        services.hooks.capture(target, os_path, current)
    await ensure_async(contents_mgr.save(bytes_to_model(target, content), target))


async def check_writable(contents_mgr: Any, target: str) -> None:
    """Refuse, before anything is written, a target the contents API would refuse."""
    folder = posixpath.dirname(target)
    if any(len(part.encode()) > _MAX_NAME_BYTES for part in target.split("/")):
        raise web.HTTPError(400, f"a part of {target!r} is longer than file names may be")
    if folder and not await ensure_async(contents_mgr.dir_exists(folder)):
        raise web.HTTPError(404, f"the folder {folder} does not exist")
    if await ensure_async(contents_mgr.dir_exists(target)):
        raise web.HTTPError(409, f"{target} is a folder; name a file")
    if not contents_mgr.allow_hidden and await ensure_async(contents_mgr.is_hidden(target)):
        raise web.HTTPError(400, f"{target} is hidden; the server does not write hidden files")
