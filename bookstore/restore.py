"""Restoring inside the server: what a file holds is kept before a version replaces it.

Both the checkpoint picker and the REST API restore through here. The version
is validated, the target's current content is queued for archiving unless a
version already holds it, and the version is then saved through the contents
manager, so the restore itself becomes a new version: restores lose nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.utils import ensure_async

from bookstore.archive import serialize_model
from bookstore.history import validate_notebook
from bookstore.index import queries

if TYPE_CHECKING:
    from bookstore.extension import BookstoreExtension

__all__ = ["current_content", "restore_into", "save_model"]


async def current_content(contents_mgr: Any, path: str) -> tuple[str | None, bytes]:
    """The file's bytes as saved, and its local path when the manager keeps files."""
    if isinstance(contents_mgr, FileManagerMixin):
        os_path: str = contents_mgr._get_os_path(path)  # type: ignore[no-untyped-call]
        return os_path, await asyncio.to_thread(_read, os_path)
    return None, serialize_model(await ensure_async(contents_mgr.get(path, content=True)))


async def restore_into(
    contents_mgr: Any, bookstore: BookstoreExtension, target: str, content: bytes
) -> None:
    """Save ``content`` as ``target`` after making sure the target's content is archived."""
    if target.endswith(".ipynb"):
        validate_notebook(content, f"the version restored to {target!r}")
    if await ensure_async(contents_mgr.file_exists(target)):
        os_path, current = await current_content(contents_mgr, target)
        if current == content:
            return
        digest = hashlib.sha256(current).hexdigest()
        async with bookstore.index.reading() as session:
            archived = await queries.version_with_sha256(
                session, bookstore.workspace, target, digest
            )
        if archived is None:
            bookstore.hooks.capture(target, os_path, current)
    await ensure_async(contents_mgr.save(save_model(target, content), target))


def _read(os_path: str) -> bytes:
    with open(os_path, "rb") as stream:
        return stream.read()


def save_model(name: str, content: bytes) -> dict[str, Any]:
    """A contents-API model whose save writes ``content`` back byte for byte."""
    if name.endswith(".ipynb"):
        return {"type": "notebook", "format": "json", "content": json.loads(content)}
    try:
        return {"type": "file", "format": "text", "content": content.decode("utf-8")}
    except UnicodeDecodeError:
        encoded = base64.b64encode(content).decode("ascii")
        return {"type": "file", "format": "base64", "content": encoded}
