"""Writing a version's object, with the parts it shares, and reading its bytes back.

The one place that knows version objects are not always the bytes as saved
(``core.version_format``): the archiver writes through ``put_version`` and every
reader (history, verify) reads through ``read_version``.
"""

from __future__ import annotations

import asyncio

from bookstore.core import keys
from bookstore.core.errors import CorruptVersion, ObjectConflict, ObjectNotFound
from bookstore.core.notebook import is_notebook_path
from bookstore.core.packing import Part, join
from bookstore.core.record import HashedRecord
from bookstore.core.version_format import (
    COMPRESSED,
    PACKED,
    compress,
    decompress,
    encode,
    manifest_of,
)
from bookstore.store.base import Store

__all__ = ["PACK_AT_MOST", "put_version", "read_version"]

PACK_AT_MOST = 64 * 1024 * 1024
"""Saves larger than this, which stay in their outbox file until the store streams them,
are kept whole: packing holds a save in memory."""


async def put_version(
    store: Store, workspace: str, key: str, hashed: HashedRecord, number: int
) -> None:
    """Write version ``number`` of a save at ``key``: its parts first, then the object
    naming them, so that a version in the store never lacks a part."""
    body = hashed.body
    if not isinstance(body, bytes) or len(body) > PACK_AT_MOST:
        await store.put(key, body, keys.version_metadata(hashed, number))
        return
    encoded = await asyncio.to_thread(encode, body, is_notebook_path(hashed.filepath))
    await asyncio.gather(
        *(_put_part(store, workspace, digest, raw) for digest, raw in encoded.parts.items())
    )
    try:
        await store.put(key, encoded.body, keys.version_metadata(hashed, number, encoded.form))
    except ObjectConflict:
        # A replay after a crash finds the object it wrote, perhaps in another form (an
        # earlier release wrote it whole): the same sha256 is the same save.
        recorded = keys.parse_version_metadata((await store.head(key)).metadata)
        if recorded.sha256 != hashed.sha256:
            raise


async def _put_part(store: Store, workspace: str, digest: str, raw: bytes) -> None:
    key = keys.part_key(workspace, digest)
    try:
        await store.head(key)
    except ObjectNotFound:
        data = await asyncio.to_thread(compress, raw)
        await store.put(key, data, {})


async def read_version(store: Store, workspace: str, key: str) -> bytes:
    """The bytes a version object holds, as they were saved (unchecked: callers compare
    them with the sha256 the index recorded). ``ObjectNotFound`` if the object is
    gone; ``CorruptVersion`` if it or a part cannot be read back."""
    stored = await store.get(key)
    form = keys.parse_version_metadata(stored.metadata).format
    try:
        if form is None:
            return stored.data
        if form == COMPRESSED:
            return await asyncio.to_thread(decompress, stored.data)
        if form == PACKED:
            skeleton = await asyncio.to_thread(manifest_of, stored.data)
            return await _joined(store, workspace, key, skeleton)
    except ValueError as exc:
        raise CorruptVersion(f"{key} cannot be read back ({exc})") from exc
    raise CorruptVersion(f"{key} is in a form this release cannot read ({form!r})")


async def _joined(store: Store, workspace: str, key: str, skeleton: list[str | Part]) -> bytes:
    wanted = {piece.sha256 for piece in skeleton if isinstance(piece, Part)}

    async def fetch(digest: str) -> tuple[str, bytes]:
        try:
            stored = await store.get(keys.part_key(workspace, digest))
        except ObjectNotFound as exc:
            raise CorruptVersion(f"{key} lacks its part {digest}") from exc
        return digest, await asyncio.to_thread(decompress, stored.data)

    parts = dict(await asyncio.gather(*(fetch(digest) for digest in wanted)))
    return join(skeleton, parts)
