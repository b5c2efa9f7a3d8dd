"""A store that dies at a chosen write, as a process killed there would."""

from __future__ import annotations

from collections.abc import Mapping

from bookstore.core.body import Body
from bookstore.store.base import Store
from tests.support.delegating_store import DelegatingStore

__all__ = ["Killed", "KilledAt"]


class Killed(Exception):
    """The process dying at that moment: nothing after it runs."""


class KilledAt(DelegatingStore):
    """Dies at the ``at``-th call of ``method`` (``"put"`` or ``"delete"``, counting from
    0), before making it; counts the calls it made (``at=None``: never dies)."""

    def __init__(self, inner: Store, method: str, at: int | None) -> None:
        super().__init__(inner)
        self.method = method
        self.at = at
        self.calls = 0

    def _step(self, method: str, key: str) -> None:
        if method != self.method:
            return
        if self.calls == self.at:
            raise Killed(key)
        self.calls += 1

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        self._step("put", key)
        await super().put(key, data, metadata, overwrite=overwrite)

    async def delete(self, key: str) -> None:
        self._step("delete", key)
        await super().delete(key)
