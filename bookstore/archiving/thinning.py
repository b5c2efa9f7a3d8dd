"""Thinning on a schedule: ``bookstore-history prune`` with the configured rules, run
in the background of one server per workspace (or by the archive service, for
every user's workspace).

Every server of a workspace wakes up every ``interval`` seconds; the one that holds
the workspace's lease in the index (taken for twice the interval, renewed by its
holder) prunes, the others go back to sleep. A server that stops, or dies,
leaves the lease to expire, and another takes it. Labelled and pinned versions
are always kept (the policy's rules never remove them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone

from bookstore.archiving.maintenance import finish_interrupted_prunes, plan_prune, prune
from bookstore.archiving.part_collection import collect_parts
from bookstore.core import keys
from bookstore.core.retention import RetentionPolicy
from bookstore.index import IndexDatabase, queries
from bookstore.store.base import Store

__all__ = ["ScheduledThinning"]


class ScheduledThinning:
    """Prunes one workspace by ``policy`` every ``interval`` seconds, when it holds the
    lease; with ``every_workspace_of`` (a template naming ``{username}``), each workspace
    the template makes for a user."""

    def __init__(
        self,
        store: Store,
        index: IndexDatabase,
        workspace: str,
        policy: RetentionPolicy,
        *,
        interval: float,
        log: logging.Logger,
        every_workspace_of: str | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.workspace = workspace
        self.every_workspace_of = every_workspace_of
        self.policy = policy
        self.interval = interval
        self.log = log
        self.holder = uuid.uuid4().hex
        """Who this server is, to the lease."""
        self.removed = 0
        """Versions this server's thinnings removed."""
        self.last_run: datetime | None = None
        """When this server last thinned the workspace (``None``: it never held the lease)."""
        self.last_error: str | None = None
        """Why the latest thinning failed, until one succeeds."""
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Thin now and then until ``stop``; a failure is logged and tried at the next turn."""
        while not self._stopping.is_set():
            try:
                await self.once()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.log.exception("bookstore: the scheduled thinning failed; it runs again later")
            else:
                self.last_error = None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def stop(self) -> None:
        self._stopping.set()

    async def once(self) -> int | None:
        """Thin the workspaces whose lease this server holds: how many versions went,
        or ``None`` when other servers hold every lease."""
        now = datetime.now(timezone.utc)
        removed: int | None = None
        failed: list[str] = []
        for workspace in await self._workspaces():
            try:
                thinned = await self._thin(workspace, now)
            except Exception:
                # One workspace that cannot be thinned keeps none of the others waiting.
                self.log.exception("bookstore: the scheduled thinning of %s failed", workspace)
                failed.append(workspace)
                continue
            if thinned is not None:
                removed = (removed or 0) + thinned
        if removed is not None:
            self.removed += removed
            self.last_run = now
        if removed:
            self.log.info("bookstore: the scheduled thinning removed %d versions", removed)
        if failed:
            raise RuntimeError(f"the scheduled thinning of {', '.join(failed)} failed")
        return removed

    async def _workspaces(self) -> list[str]:
        """The workspace, or every workspace the template makes for a user."""
        template = self.every_workspace_of
        if template is None:
            return [self.workspace]
        before, _, after = template.strip("/").partition(keys.USERNAME_FIELD)
        one_user = re.compile(re.escape(before) + r"[^/]+" + re.escape(after) + r"\Z")
        async with self.index.reading() as session:
            found = await queries.workspaces_under(session, before)
        return [workspace for workspace in found if one_user.match(workspace)]

    async def _thin(self, workspace: str, now: datetime) -> int | None:
        """Thin ``workspace`` if this server holds its lease; ``None`` if another does."""
        async with self.index.writing() as session:
            held = await queries.take_lease(
                session,
                f"thinning {workspace}",
                self.holder,
                now,
                now + timedelta(seconds=2 * self.interval),
            )
        if not held:
            return None
        await finish_interrupted_prunes(self.store, self.index, workspace)
        plans = plan_prune(self.index, workspace, self.policy)
        removed = await prune(self.store, self.index, workspace, plans)
        freed = await collect_parts(self.store, workspace)
        if (blocked := freed.blocked()) is not None:
            self.log.warning("bookstore: the scheduled thinning of %s: %s", workspace, blocked)
        return removed
