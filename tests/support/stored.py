"""Store objects as a reader gets them back, whichever form the store holds them in."""

from __future__ import annotations

from collections.abc import Mapping

from bookstore.core import keys
from bookstore.core.packing import join
from bookstore.core.version_format import COMPRESSED, PACKED, decompress, manifest_of

__all__ = ["as_read"]


def as_read(found: Mapping[str, tuple[bytes, Mapping[str, str]]]) -> dict[str, bytes]:
    """``found`` (each key's stored bytes and metadata) as readers see it: a version gives
    the bytes that were saved. The parts packed versions share are left out: they are
    how versions are held, not objects of their own."""
    parts = {
        key.rsplit("/", 1)[1].removesuffix(".zst"): decompress(body)
        for key, (body, _) in found.items()
        if "/@parts/" in key
    }
    objects = {}
    for key, (body, metadata) in found.items():
        if "/@parts/" in key:
            continue
        form = keys.parse_version_metadata(metadata).format
        if form == PACKED:
            objects[key] = join(manifest_of(body), parts)
        elif form == COMPRESSED:
            objects[key] = decompress(body)
        else:
            objects[key] = body
    return objects
