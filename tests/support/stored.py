"""Store objects as a reader gets them back, whichever form the store holds them in."""

from __future__ import annotations

from collections.abc import Mapping

from bookstore.core import keys
from bookstore.core.packing import join
from bookstore.core.version_format import COMPRESSED, PACKED, decompress, read_manifest

__all__ = ["as_read", "is_part_object"]

_LIMIT = 1 << 30


def is_part_object(key: str) -> bool:
    """Whether ``key`` keeps a part packed versions share, or the epochs they are kept by."""
    return "/@parts/" in key or key.startswith("@parts/")


def as_read(found: Mapping[str, tuple[bytes, Mapping[str, str]]]) -> dict[str, bytes]:
    """``found`` (each key's stored bytes and metadata) as readers see it: a version gives
    the bytes that were saved. The parts packed versions share are left out: they are
    how versions are held, not objects of their own."""
    parts = {
        tuple(key.rsplit("/", 2)[1:]): body
        for key, (body, _) in found.items()
        if is_part_object(key) and key.endswith(".zst")
    }
    objects = {}
    for key, (body, metadata) in found.items():
        if is_part_object(key):
            continue
        form = keys.parse_version_metadata(metadata).format
        if form == PACKED:
            manifest = read_manifest(body, _LIMIT)
            held = {
                digest: decompress(parts[str(manifest.epoch), f"{digest}.zst"], _LIMIT)
                for digest in manifest.parts()
            }
            objects[key] = join(manifest.skeleton, held)
        elif form == COMPRESSED:
            objects[key] = decompress(body, _LIMIT)
        else:
            objects[key] = body
    return objects
