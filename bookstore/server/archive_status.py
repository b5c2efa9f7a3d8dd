"""The ``archive`` part of ``GET /api/bookstore``: what the outbox's drain is doing,
the same whether the server archives itself or pushes to the archive service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bookstore.archiving.draining import Drain
from bookstore.server.save_hooks import SaveHooks

__all__ = ["archive_status"]

_LATEST_SET_ASIDE = 5


def archive_status(drain: Drain, hooks: SaveHooks, name: Callable[[str], str]) -> dict[str, Any]:
    """The backlog, the outbox's fill and the saves set aside; ``name`` shows a stored
    path as the server's users know it."""
    return {
        "workspace": drain.workspace,
        "ready": drain.ready,
        "backlog": drain.backlog,
        "archived": drain.archived,
        "last_error": drain.last_error,
        "outbox": _outbox_status(drain, hooks),
        "set_aside": _set_aside_status(drain, name),
    }


def _outbox_status(drain: Drain, hooks: SaveHooks) -> dict[str, Any]:
    """How full the outbox is, and whether saves went unkept, in words."""
    outbox, not_kept = drain.outbox, hooks.not_kept
    return {
        "bytes": outbox.used_bytes,
        "max_bytes": outbox.limits.max_bytes,
        "not_kept": not_kept.saves if not_kept else 0,
        "warning": str(not_kept) if not_kept else outbox.warning(),
    }


def _set_aside_status(drain: Drain, name: Callable[[str], str]) -> dict[str, Any]:
    """Saves that can never be archived as they are: how many, and the latest few."""
    set_aside = drain.set_aside
    return {
        "count": len(set_aside),
        "latest": [
            {
                "path": None if item.path is None else name(item.path),
                "queued_at": item.queued_time.isoformat() if item.queued_time else None,
                "set_aside_at": item.set_aside_at.isoformat(),
                "reason": item.reason,
            }
            for item in reversed(set_aside[-_LATEST_SET_ASIDE:])
        ],
    }
