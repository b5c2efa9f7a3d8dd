"""Labels and pins, kept in the store as well as the index.

The index is rebuilt from the store after it is lost or damaged; labels and
pins protect versions from pruning, so they must survive that rebuild. Each
path with any has one small JSON object beside its versions, rewritten
whenever they change.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from bookstore.core import keys
from bookstore.core.errors import ObjectNotFound
from bookstore.index import queries
from bookstore.store.base import Store

__all__ = ["Annotation", "load_annotations", "save_annotations"]


class Annotation(NamedTuple):
    """What a person said about one version."""

    label: str | None
    pinned: bool


async def save_annotations(store: Store, session: AsyncSession, workspace: str, path: str) -> None:
    """Write the store's copy of ``path``'s labels and pins, as ``session`` sees them.

    Call it inside the write transaction that changed them: writers then take
    turns, and a store that refuses the write rolls the change back.
    """
    rows = await queries.annotated_versions(session, workspace, path)
    annotated = {str(row.number): {"label": row.label, "pinned": row.pinned} for row in rows}
    key = keys.annotations_key(workspace, path)
    if not annotated:
        await store.delete(key)
        return
    document = json.dumps({"path": path, "versions": annotated}, sort_keys=True).encode()
    await store.put(key, document, {}, overwrite=True)


async def load_annotations(store: Store, key: str) -> dict[int, Annotation]:
    """The labels and pins stored at ``key``, by version number."""
    try:
        document = json.loads((await store.get(key)).data)
    except (ObjectNotFound, ValueError):
        return {}
    return {
        int(number): Annotation(item.get("label"), bool(item.get("pinned")))
        for number, item in document.get("versions", {}).items()
        if str(number).isdigit()
    }
