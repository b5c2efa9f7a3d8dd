"""A ``Store`` on a local directory, for single-machine installs and tests.

Layout under ``root``::

    data/<key>          the object's bytes
    meta/<key>.json     its metadata, a JSON object of strings
    tmp/.tmp-<random>   files being written, linked into place when complete

Writes are atomic and never overwrite: bytes go to a temp file that is fsynced
and then hard-linked to its final name, which fails if the key already exists.
The metadata file is written before the data file is linked, so a reader that
finds a data file always finds its metadata. Temp files live in their own
directory, so a listing never sees a half-written object.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from bookstore.core.body import CHUNK, Body, chunks_of, matches
from bookstore.core.errors import ObjectConflict, ObjectNotFound, StoreUnavailable
from bookstore.store.base import ObjectInfo, StoredObject
from bookstore.store.durable import fsync_directory, write_durably

__all__ = ["LocalStore"]

_TMP_PREFIX = ".tmp-"
_META_SUFFIX = ".json"


def _check_key(key: str) -> list[str]:
    """The key's path components, or ``ValueError`` if it could escape ``root``.

    Keys come from ``bookstore.core.keys`` and are safe already; this is defence in
    depth, because here a key becomes a file name. Empty and ``.`` components
    are refused too: the file system would fold ``a//b`` and ``a/./b`` onto
    ``a/b``, so two keys would share one file.
    """
    if not key:
        raise ValueError("a store key must not be empty")
    if "\x00" in key:
        raise ValueError(f"a store key must not contain NUL: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"a store key must be relative: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"a store key must not have empty, '.' or '..' components: {key!r}")
    return parts


def _check_prefix(prefix: str) -> list[str]:
    """The directories a prefix surely lies under, or ``ValueError`` if it could escape."""
    if "\x00" in prefix or prefix.startswith("/"):
        raise ValueError(f"a store prefix must be relative and not hold NUL: {prefix!r}")
    directories = prefix.split("/")[:-1]
    if any(part in ("", ".", "..") for part in directories):
        raise ValueError(f"a store prefix must not have empty, '.' or '..' components: {prefix!r}")
    return directories


def _file_and_directory(key: str) -> ValueError:
    """The one key shape a directory tree cannot hold, which version keys never take."""
    return ValueError(
        f"the local store cannot hold {key!r}: one key would be both a file and a "
        "directory (a key equal to another key's directory part)"
    )


def _may_match(directory: str, prefix: str) -> bool:
    """Whether keys under ``directory`` (ending in ``/``) can start with ``prefix``."""
    return directory.startswith(prefix) or prefix.startswith(directory)


def _same_bytes(path: Path, data: Body) -> bool:
    """Whether the file at ``path`` holds exactly ``data``, both read in chunks."""
    with path.open("rb") as stream:
        return matches(iter(partial(stream.read, CHUNK), b""), data)


class LocalStore:
    """Immutable versions as files under one directory, created on first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.description = str(self.root)
        self._data = self.root / "data"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        # Serialises puts and deletes of this instance: the check-then-write of a
        # put and the pruning of empty directories by a delete must not interleave.
        # A threading lock, because the work runs in worker threads.
        self._lock = threading.Lock()

    # -- paths -------------------------------------------------------------

    def _data_path(self, key: str) -> Path:
        return self._data.joinpath(*_check_key(key))

    def _meta_path(self, key: str) -> Path:
        parts = _check_key(key)
        return self._meta.joinpath(*parts[:-1], parts[-1] + _META_SUFFIX)

    @contextlib.contextmanager
    def _unavailable(self, action: str) -> Iterator[None]:
        """Turn an ``OSError`` into ``StoreUnavailable`` naming the directory."""
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = f" ({exc.filename})" if exc.filename else ""
            raise StoreUnavailable(
                f"cannot {action} in the local store at {self.root}: {reason}{where}"
            ) from exc

    # -- Store -------------------------------------------------------------

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        """Write ``data`` unless ``key`` exists (or replace it, with ``overwrite``)."""
        data_path = self._data_path(key)
        meta_path = self._meta_path(key)
        meta_bytes = json.dumps(dict(metadata), sort_keys=True).encode("utf-8")
        await asyncio.to_thread(
            self._put_sync, key, data_path, meta_path, data, meta_bytes, overwrite
        )

    def _put_sync(
        self,
        key: str,
        data_path: Path,
        meta_path: Path,
        data: Body,
        meta_bytes: bytes,
        overwrite: bool,
    ) -> None:
        with self._unavailable(f"store {key!r}"):
            self._tmp.mkdir(parents=True, exist_ok=True)
            data_tmp = self._write_tmp(data)
            try:
                with self._lock:
                    if data_path.is_dir():
                        raise _file_and_directory(key)
                    if data_path.exists() and not overwrite:
                        self._settle_existing(key, data_path, data)
                        return
                    try:
                        data_path.parent.mkdir(parents=True, exist_ok=True)
                    except (FileExistsError, NotADirectoryError) as exc:
                        raise _file_and_directory(key) from exc
                    # Metadata first: a data file must never exist without it. A
                    # metadata file without data (a put that crashed) is replaced.
                    meta_path.parent.mkdir(parents=True, exist_ok=True)
                    meta_tmp = self._write_tmp(meta_bytes)
                    os.replace(meta_tmp, meta_path)
                    fsync_directory(meta_path.parent)
                    try:
                        if overwrite:
                            os.replace(data_tmp, data_path)
                        else:
                            os.link(data_tmp, data_path)
                    except FileExistsError:
                        # Another process wrote the key since the check above.
                        self._settle_existing(key, data_path, data)
                        return
                    fsync_directory(data_path.parent)
            finally:
                data_tmp.unlink(missing_ok=True)

    def _write_tmp(self, content: Body) -> Path:
        """A durable temp file holding ``content``, named so no key can collide with it."""
        path = self._tmp / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        write_durably(path, chunks_of(content))
        return path

    @staticmethod
    def _settle_existing(key: str, data_path: Path, data: Body) -> None:
        """A retried put of the same bytes succeeds; different bytes are a conflict."""
        if not _same_bytes(data_path, data):
            raise ObjectConflict(key)

    async def get(self, key: str) -> StoredObject:
        """Read an object's bytes and metadata."""
        data_path = self._data_path(key)
        meta_path = self._meta_path(key)
        return await asyncio.to_thread(self._read_sync, key, data_path, meta_path, True)

    async def head(self, key: str) -> StoredObject:
        """Read an object's metadata; ``data`` is ``b""``."""
        data_path = self._data_path(key)
        meta_path = self._meta_path(key)
        return await asyncio.to_thread(self._read_sync, key, data_path, meta_path, False)

    def _read_sync(
        self, key: str, data_path: Path, meta_path: Path, with_data: bool
    ) -> StoredObject:
        with self._unavailable(f"read {key!r}"):
            try:
                if with_data:
                    data = data_path.read_bytes()
                elif data_path.is_file():
                    data = b""
                else:
                    raise ObjectNotFound(key)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                raise ObjectNotFound(key) from exc
            try:
                metadata = json.loads(meta_path.read_bytes())
            except (FileNotFoundError, NotADirectoryError):
                # Only a hand-edited store lacks it; the bytes are still worth having.
                metadata = {}
            except ValueError as exc:
                raise StoreUnavailable(
                    f"the metadata of {key!r} in the local store at {self.root} is not JSON"
                ) from exc
            if not isinstance(metadata, dict):
                raise StoreUnavailable(
                    f"the metadata of {key!r} in the local store at {self.root} is not an object"
                )
        return StoredObject(key, data, {str(k): str(v) for k, v in metadata.items()})

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        directories = _check_prefix(prefix)
        infos = await asyncio.to_thread(self._list_sync, prefix, directories)
        for info in infos:
            yield info

    def _list_sync(self, prefix: str, directories: builtins.list[str]) -> builtins.list[ObjectInfo]:
        # Walk only the deepest directory the prefix names; its last partial
        # component is matched by string comparison, so ``a/x`` never lists ``ab/x``.
        start = self._data.joinpath(*directories)
        found: builtins.list[ObjectInfo] = []

        def fail(exc: OSError) -> None:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise exc

        with self._unavailable(f"list {prefix!r}"):
            for dirpath, dirnames, filenames in os.walk(start, onerror=fail):
                relative = Path(dirpath).relative_to(self._data).parts
                # Descend only where keys can still match the prefix.
                dirnames[:] = [
                    name
                    for name in dirnames
                    if _may_match("/".join((*relative, name)) + "/", prefix)
                ]
                for name in filenames:
                    key = "/".join((*relative, name))
                    if not key.startswith(prefix):
                        continue
                    try:
                        stat = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue  # deleted while listing
                    modified = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
                    found.append(ObjectInfo(key, stat.st_size, modified))
        # Python orders str by code point, which is the UTF-8 byte order S3 uses.
        found.sort()
        return found

    async def delete(self, key: str) -> None:
        """Remove the data, then the metadata, then directories left empty."""
        data_path = self._data_path(key)
        meta_path = self._meta_path(key)
        await asyncio.to_thread(self._delete_sync, key, data_path, meta_path)

    def _delete_sync(self, key: str, data_path: Path, meta_path: Path) -> None:
        with self._unavailable(f"delete {key!r}"), self._lock:
            for path, top in ((data_path, self._data), (meta_path, self._meta)):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    path.unlink()
                self._prune(path.parent, top)

    @staticmethod
    def _prune(directory: Path, top: Path) -> None:
        """Remove ``directory`` and its parents below ``top`` while they are empty."""
        while directory != top and top in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty, or already gone
            directory = directory.parent

    async def check(self) -> None:
        """Prove a file can be written under ``root``, creating it if needed."""
        await asyncio.to_thread(self._check_sync)

    def _check_sync(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreUnavailable(f"the local store at {self.root} is not a directory")
        with self._unavailable("write"):
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._write_tmp(b"").unlink()

    async def close(self) -> None:
        """Nothing to release: every file is closed after each operation."""
