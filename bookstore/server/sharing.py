"""Publishing a notebook to a shared prefix, and cloning one in from S3 or a directory.

As in the original bookstore, made safe: clones come only from buckets on an
allowlist or from inside one configured directory (never from its hidden files
unless the contents manager allows hidden files), what they bring in is
validated as a notebook before anything is written, a clone never overwrites
an existing file (it takes the next free name instead), and it is no more
trusted than an upload of the same file.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyter_core.paths import is_hidden
from jupyter_server.utils import ensure_async

from bookstore.config import BookstoreSettings
from bookstore.core.errors import InvalidPath, NotAllowed, VersionNotFound
from bookstore.core.keys import normalize_path, published_key, published_metadata
from bookstore.core.notebook import is_notebook_path, validate_notebook
from bookstore.factory import open_s3_store
from bookstore.server.contents import save_content
from bookstore.store.base import Store

__all__ = ["check_fs_clone_source", "publish", "read_fs_clone", "read_s3_clone", "save_clone"]


async def publish(store: Store, settings: BookstoreSettings, path: str, content: bytes) -> str:
    """Copy ``content`` to the published key of ``path`` (replacing the previous copy)."""
    if is_notebook_path(path):
        validate_notebook(content, f"the notebook published as {path!r}")
    key = published_key(settings.published, path)
    digest = hashlib.sha256(content).hexdigest()
    metadata = published_metadata(path, digest, datetime.now(timezone.utc))
    await store.put(key, content, metadata, overwrite=True)
    return key


async def read_s3_clone(
    settings: BookstoreSettings, bucket: str, key: str, version_id: str | None
) -> bytes:
    """A notebook's bytes from an allowlisted bucket, with the server's S3 settings."""
    if bucket not in settings.clone_s3_buckets:
        raise NotAllowed(
            f"cloning from the bucket {bucket!r} is not allowed; allowed buckets are set "
            "with c.BookstoreSettings.clone_s3_buckets"
        )
    source = open_s3_store(settings, bucket)
    try:
        return (await source.get(key, version_id=version_id)).data
    finally:
        await source.close()


async def read_fs_clone(settings: BookstoreSettings, relpath: str, allow_hidden: bool) -> bytes:
    """A notebook's bytes from inside ``fs_clone_dir``; anything outside it is refused."""
    return await asyncio.to_thread(_read_inside, settings, relpath, allow_hidden)


def _read_inside(settings: BookstoreSettings, relpath: str, allow_hidden: bool) -> bytes:
    source = check_fs_clone_source(settings, relpath, allow_hidden)
    if not source.is_file():
        raise VersionNotFound(f"{relpath!r} does not exist in the clone directory")
    return source.read_bytes()


def check_fs_clone_source(settings: BookstoreSettings, relpath: str, allow_hidden: bool) -> Path:
    """The file ``relpath`` names inside ``fs_clone_dir``, refused if it is outside it, or
    if its name is hidden there as the contents API hides names in its root (answered
    as missing)."""
    directory = Path(settings.fs_clone_dir).expanduser().absolute()
    named = directory / normalize_path(relpath)
    source = named.resolve()
    if not source.is_relative_to(directory.resolve()):
        raise InvalidPath(f"{relpath!r} is outside the clone directory")
    try:
        hidden = not allow_hidden and is_hidden(named, directory)
    except OSError:  # it cannot even be looked at (a name too long, say)
        hidden = True
    if hidden:
        raise VersionNotFound(f"{relpath!r} does not exist in the clone directory")
    return source


async def save_clone(contents_mgr: Any, content: bytes, target: str) -> str:
    """Save a cloned notebook at ``target``, or at the next free name if that exists."""
    name = normalize_path(target)
    validate_notebook(content, f"the notebook cloned to {name!r}")
    directory, filename = posixpath.split(name)
    if await ensure_async(contents_mgr.file_exists(name)):
        filename = await ensure_async(contents_mgr.increment_filename(filename, directory, "-"))
        name = posixpath.join(directory, filename)
    await save_content(contents_mgr, name, content)
    return name
