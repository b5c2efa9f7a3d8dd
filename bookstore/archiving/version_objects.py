"""Writing a version's object, with the parts it shares, and reading its bytes back.

The one place that knows version objects are not always the bytes as saved
(``core.version_format``): the archiver writes through ``put_version`` and every
reader (history, verify, prune) reads through ``read_version`` and
``read_manifest_of``. How parts are shared safely with a concurrent prune is in
``core.epochs`` and ``docs/storage.md``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from functools import partial
from typing import TypeVar
from weakref import WeakKeyDictionary

from bookstore.core import keys
from bookstore.core.epochs import DEFAULT_EPOCH_SECONDS, Epochs
from bookstore.core.errors import CorruptVersion, ObjectConflict, ObjectNotFound, StoreUnavailable
from bookstore.core.notebook import is_notebook_path
from bookstore.core.packing import Part, Split, inline, join
from bookstore.core.record import HashedRecord, sha256_of
from bookstore.core.version_format import (
    COMPRESSED,
    PACKED,
    Manifest,
    compress,
    cut,
    decompress,
    manifest_body,
    read_manifest,
)
from bookstore.store.base import Store, StoredObject

__all__ = [
    "PACK_AT_MOST",
    "bounded",
    "clock",
    "manifest_in",
    "put_version",
    "read_epochs",
    "read_manifest_of",
    "read_version",
    "repack_version",
]

PACK_AT_MOST = 64 * 1024 * 1024
"""Saves larger than this, which stay in their outbox file until the store streams them,
are kept whole: packing holds a save in memory."""
PARALLEL = 16
"""Requests one version, or one maintenance step, has in flight at once."""
_EPOCH_ATTEMPTS = 3
_KNOWN_AT_MOST = 200_000
"""Parts remembered per workspace: a few megabytes of digests."""
INLINE_AT_MOST = 16 * 1024
"""A new part this small stays in its version's manifest the first time it is seen, and
becomes a part only when a version repeats it: the cell being edited changes at every
save, and a request of its own for each of its drafts would double what a save costs."""

T = TypeVar("T")

clock: Callable[[], float] = time.time
"""Where writers and prune read the time that numbers epochs (tests move it)."""


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[None]], parallel: int = PARALLEL
) -> None:
    """Run ``work`` on every item, at most ``parallel`` at a time, from as many workers:
    tens of thousands of items never become as many tasks at once."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(parallel)))


class _KnownParts:
    """The parts of one epoch a process knows the store holds, so it writes each once."""

    def __init__(self, epoch: int, digests: set[str]) -> None:
        self.epoch = epoch
        self.digests = digests
        self.inlined: set[str] = set()
        """Small parts kept in a manifest of this epoch instead: written if seen again."""

    def first_seen(self, pieces: Split, missing: list[str]) -> set[str]:
        """The small ``missing`` parts not seen before, remembered as seen now."""
        new = {
            digest
            for digest in missing
            if len(pieces.parts[digest]) <= INLINE_AT_MOST and digest not in self.inlined
        }
        if len(self.inlined) + len(new) > _KNOWN_AT_MOST:
            self.inlined.clear()
        self.inlined.update(new)
        return new


_EPOCHS: WeakKeyDictionary[Store, dict[str, Epochs]] = WeakKeyDictionary()
_KNOWN: WeakKeyDictionary[Store, dict[str, _KnownParts]] = WeakKeyDictionary()


async def read_epochs(store: Store, workspace: str) -> Epochs | None:
    """The workspace's part epochs; ``None`` if no packed version was ever written to it."""
    cached = _EPOCHS.setdefault(store, {}).get(workspace)
    if cached is not None:
        return cached
    try:
        stored = await store.get(keys.epochs_key(workspace))
    except ObjectNotFound:
        return None
    try:
        epochs = Epochs.from_json(stored.data)
    except ValueError as exc:
        raise StoreUnavailable(
            f"{keys.epochs_key(workspace)} in {store.description} is damaged ({exc}); "
            f'it should read {{"seconds": {DEFAULT_EPOCH_SECONDS}}}'
        ) from exc
    _EPOCHS[store][workspace] = epochs
    return epochs


async def _epochs_for_writing(store: Store, workspace: str) -> Epochs:
    """The workspace's epochs, recorded with the default length by its first writer."""
    epochs = await read_epochs(store, workspace)
    if epochs is None:
        default = Epochs(DEFAULT_EPOCH_SECONDS).to_json()
        with suppress(ObjectConflict):  # another writer recorded its own first: theirs holds
            await store.put(keys.epochs_key(workspace), default, {})
        epochs = await read_epochs(store, workspace)
        assert epochs is not None
    return epochs


async def put_version(
    store: Store, workspace: str, key: str, hashed: HashedRecord, number: int
) -> int:
    """Write version ``number`` of a save at ``key``: its parts first, then the object
    naming them, so that a version in the store never lacks a part. How many bytes
    it added to the store: its object, and the parts no version had kept before."""
    body = hashed.body
    if not isinstance(body, bytes) or len(body) > PACK_AT_MOST:
        await store.put(key, body, keys.version_metadata(hashed, number))
        return hashed.size
    notebook = is_notebook_path(hashed.filepath)
    form, data, parts_size = await _encode(store, workspace, body, notebook)
    try:
        await store.put(key, data, keys.version_metadata(hashed, number, form))
    except ObjectConflict:
        # A replay after a crash finds the object it wrote, perhaps in another form (an
        # earlier release wrote it whole): the same sha256 is the same save.
        existing = await store.head(key)
        if keys.parse_version_metadata(existing.metadata).sha256 != hashed.sha256:
            raise
    return len(data) + parts_size


async def repack_version(store: Store, workspace: str, stored: StoredObject) -> int | None:
    """Rewrite a version kept as saved (by an earlier release) in the form this release
    writes, in place; how many bytes it costs now. ``None`` if it stays as it is:
    packed already, or too large to hold in memory. The caller has checked the bytes
    against the sha256 its index recorded."""
    recorded = keys.parse_version_metadata(stored.metadata)
    parsed = keys.parse_version_key(workspace, stored.key)
    if recorded.format is not None or parsed is None or len(stored.data) > PACK_AT_MOST:
        return None
    notebook = is_notebook_path(parsed.path)
    form, data, parts_size = await _encode(store, workspace, stored.data, notebook)
    metadata = keys.with_format(stored.metadata, form, len(stored.data))
    await store.put(stored.key, data, metadata, overwrite=True)
    return len(data) + parts_size


async def _encode(
    store: Store, workspace: str, body: bytes, notebook: bool
) -> tuple[str, bytes, int]:
    """The form, the object's bytes and the bytes of the parts written for a version
    holding ``body``: a notebook packed, its parts written first; anything else
    compressed."""
    pieces = await asyncio.to_thread(cut, body, notebook)
    if pieces is None:
        return COMPRESSED, await asyncio.to_thread(compress, body), 0
    data, parts_size = await _put_parts(store, workspace, pieces)
    return PACKED, data, parts_size


async def _put_parts(store: Store, workspace: str, pieces: Split) -> tuple[bytes, int]:
    """Make sure the store holds every part in the current epoch; the manifest naming
    them, and the bytes of the parts written.

    The manifest is returned only while the epoch the parts were checked in is still
    the current one, which leaves a whole epoch to write it before a prune may
    delete any of them. Small parts seen for the first time stay in the manifest.
    """
    epochs = await _epochs_for_writing(store, workspace)
    for _ in range(_EPOCH_ATTEMPTS):
        epoch = epochs.of(clock())
        known = await _known_parts(store, workspace, epoch)
        missing = [digest for digest in pieces.parts if digest not in known.digests]
        kept_inline = known.first_seen(pieces, missing)
        written: list[int] = []
        put = partial(_put_part, store, workspace, known, pieces, written)
        await bounded([digest for digest in missing if digest not in kept_inline], put)
        if epochs.of(clock()) == epoch:
            packed = inline(pieces, kept_inline) if kept_inline else pieces
            return await asyncio.to_thread(manifest_body, packed, epoch), sum(written)
    raise StoreUnavailable(
        f"epochs of {epochs.seconds} seconds in {keys.epochs_key(workspace)} are too short "
        "to write a version in"
    )


async def _put_part(
    store: Store, workspace: str, known: _KnownParts, pieces: Split, written: list[int], digest: str
) -> None:
    data = await asyncio.to_thread(compress, pieces.parts[digest])
    try:
        await store.put(keys.part_key(workspace, known.epoch, digest), data, {})
        written.append(len(data))
    except ObjectConflict:
        pass  # kept already, compressed by another zstd build: its key names what it holds
    if len(known.digests) >= _KNOWN_AT_MOST:
        known.digests.clear()
    known.digests.add(digest)


async def _known_parts(store: Store, workspace: str, epoch: int) -> _KnownParts:
    """The parts the store holds in ``epoch``, listed once per epoch: a part missing
    from the list is written (writing the same bytes again is a success)."""
    by_workspace = _KNOWN.setdefault(store, {})
    known = by_workspace.get(workspace)
    if known is None or known.epoch != epoch:
        prefix = keys.part_key(workspace, epoch, "")[: -len(".zst")]
        digests = set()
        async for info in store.list(prefix):
            parsed = keys.parse_part_key(workspace, info.key)
            if parsed is not None:
                digests.add(parsed[1])
        known = by_workspace[workspace] = _KnownParts(epoch, digests)
    return known


async def read_version(store: Store, workspace: str, key: str, size: int | None = None) -> bytes:
    """The bytes a version object holds, as they were saved (unchecked: callers compare
    them with the sha256 the index recorded). ``size``, the size the index recorded,
    bounds what a stored object may decompress to (its own metadata does otherwise).
    ``ObjectNotFound`` if the object is gone; ``CorruptVersion`` if it or a part
    cannot be read back."""
    stored = await store.get(key)
    recorded = keys.parse_version_metadata(stored.metadata)
    if recorded.format is None:
        return stored.data
    try:
        limit = _recorded_size(recorded) if size is None else size
        if recorded.format == COMPRESSED:
            return await asyncio.to_thread(decompress, stored.data, limit)
        if recorded.format == PACKED:
            manifest = await _manifest(stored, limit)
            return await _joined(store, workspace, key, manifest, limit)
        problem = f"it is in a form this release cannot read ({recorded.format!r})"
    except ValueError as exc:
        problem = f"it cannot be read back ({exc})"
    if await _holds_as_saved(stored, recorded):
        return stored.data
    raise CorruptVersion(f"{key}: {problem}")


async def read_manifest_of(store: Store, key: str) -> Manifest | None:
    """The manifest of the version at ``key``; ``None`` if it names no parts. Only a
    packed version is read whole (whole versions may be large).
    ``ObjectNotFound`` if it is gone; ``CorruptVersion`` if it cannot be read."""
    head = await store.head(key)
    if keys.parse_version_metadata(head.metadata).format != PACKED:
        return None
    return await manifest_in(await store.get(key))


async def manifest_in(stored: StoredObject) -> Manifest | None:
    """The manifest a version object read whole holds; ``None`` if it names no parts.
    ``CorruptVersion`` if it cannot be read."""
    recorded = keys.parse_version_metadata(stored.metadata)
    if recorded.format != PACKED:
        return None
    try:
        return await _manifest(stored, _recorded_size(recorded))
    except ValueError as exc:
        if await _holds_as_saved(stored, recorded):
            return None
        raise CorruptVersion(f"{stored.key} cannot be read back ({exc})") from exc


async def _holds_as_saved(stored: StoredObject, recorded: keys.RecordedVersion) -> bool:
    """Whether an object that does not read in the form its metadata names holds the
    bytes as saved: a repack interrupted in the local store, which replaces an
    object's metadata before its bytes."""
    return await asyncio.to_thread(sha256_of, stored.data) == recorded.sha256


def _recorded_size(recorded: keys.RecordedVersion) -> int:
    if recorded.size is None:
        raise ValueError("its metadata does not say how many bytes it holds")
    return recorded.size


async def _manifest(stored: StoredObject, size: int) -> Manifest:
    # A skeleton holds what the parts do not, plus one short reference per part.
    return await asyncio.to_thread(read_manifest, stored.data, 2 * size + 1024 * 1024)


async def _joined(store: Store, workspace: str, key: str, manifest: Manifest, size: int) -> bytes:
    """The version's bytes, if they come to no more than ``size``: every part appears in
    them, and a manifest naming a part a million times must not be obeyed."""
    parts: dict[str, bytes] = {}
    held = 0

    async def fetch(digest: str) -> None:
        nonlocal held
        try:
            stored = await store.get(keys.part_key(workspace, manifest.epoch, digest))
        except ObjectNotFound as exc:
            raise CorruptVersion(f"{key} lacks its part {digest}") from exc
        parts[digest] = await asyncio.to_thread(decompress, stored.data, size)
        held += len(parts[digest])
        if held > size:
            raise ValueError(f"its parts hold more than the {size} bytes saved")

    await bounded(manifest.parts(), fetch)
    joined_at_least = sum(
        len(parts[piece.sha256]) if isinstance(piece, Part) else len(piece)
        for piece in manifest.skeleton
    )
    if joined_at_least > size:
        raise ValueError(f"it would join to more than the {size} bytes saved")
    return await asyncio.to_thread(join, manifest.skeleton, parts)
