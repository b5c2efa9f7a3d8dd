"""A workspace per version, so many users can share one index.

Every version, reservation and pruned object records the key prefix it lives
under; version numbers are unique per (workspace, path) instead of per path.
Existing rows take the workspace their store key already names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIQUE = {
    "versions": ("uq_versions_path_version", "uq_versions_workspace_path_version"),
    "reserved_versions": ("uq_reserved_path_version", "uq_reserved_workspace_path_version"),
}
_LATENCY_MS = {
    "sqlite": "(julianday(archived_at) - julianday(queued_at)) * 86400000.0",
    "postgresql": (
        "CAST(EXTRACT(EPOCH FROM (archived_at - queued_at)) * 1000.0 AS DOUBLE PRECISION)"
    ),
}
_BATCH = 10_000


def _workspace_of(store_key: str, path: str) -> str:
    """The prefix before ``<path>/@<stamp>`` in a version's key.

    Keys encode ``%`` and ``@`` in the path (keys.py at 0004); a key written by
    hand may not, so the path as it is is tried too.
    """
    for written in (path.replace("%", "%25").replace("@", "%40"), path):
        cut = store_key.rfind(f"{written}/@")
        if cut >= 0:
            return store_key[:cut].strip("/")
    return ""


def _batches(table: str) -> Iterator[list[sa.Row[Any]]]:
    """The table's (store_key, path) rows in key order, a batch at a time, so a large
    index fits in memory; a table without paths gives store_key alone."""
    bind = op.get_bind()
    columns = "store_key" if table == "pruned_objects" else "store_key, path"
    query = sa.text(
        f"SELECT {columns} FROM {table} WHERE store_key > :after ORDER BY store_key LIMIT {_BATCH}"
    )
    after = ""
    while rows := bind.execute(query, {"after": after}).all():
        yield list(rows)
        after = rows[-1][0]


def _fill(table: str, workspace_of: Callable[[sa.Row[Any]], str]) -> None:
    update = sa.text(f"UPDATE {table} SET workspace = :workspace WHERE store_key = :key")
    for rows in _batches(table):
        op.get_bind().execute(
            update, [{"key": row[0], "workspace": workspace_of(row)} for row in rows]
        )


def _add_workspace(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("workspace", sa.String(1024), nullable=False, server_default=""))


def _create_latency_view(columns: str) -> None:
    latency = _LATENCY_MS[op.get_bind().dialect.name]
    op.execute(
        f"CREATE VIEW archive_latency AS SELECT {columns}, {latency} AS latency_ms FROM versions"
    )


def upgrade() -> None:
    # SQLite rebuilds a table to change its constraints; the view must not watch it happen.
    op.execute("DROP VIEW archive_latency")
    for table, (old, new) in _UNIQUE.items():
        _add_workspace(table)
        _fill(table, lambda row: _workspace_of(row[0], row[1]))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("workspace", server_default=None)
            batch.drop_constraint(old, type_="unique")
            batch.create_unique_constraint(new, ["workspace", "path", "version"])
    # A pruned object's path is gone with its row: it belongs to the longest
    # workspace its key starts with.
    known = sorted(
        op.get_bind().execute(sa.text("SELECT DISTINCT workspace FROM versions")).scalars(),
        key=len,
        reverse=True,
    )
    _add_workspace("pruned_objects")
    _fill("pruned_objects", lambda row: next((w for w in known if row[0].startswith(f"{w}/")), ""))
    with op.batch_alter_table("pruned_objects") as batch:
        batch.alter_column("workspace", server_default=None)
    _create_latency_view("workspace, path, version, queued_at, archived_at")


def downgrade() -> None:
    workspaces = op.get_bind().execute(sa.text("SELECT count(DISTINCT workspace) FROM versions"))
    if workspaces.scalar_one() > 1:
        raise RuntimeError(
            "the index holds the versions of several workspaces; before 0004 they would "
            "collide and every user would see every other's, so it cannot be downgraded"
        )
    op.execute("DROP VIEW archive_latency")
    with op.batch_alter_table("pruned_objects") as batch:
        batch.drop_column("workspace")
    for table, (old, new) in _UNIQUE.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(new, type_="unique")
            batch.create_unique_constraint(old, ["path", "version"])
            batch.drop_column("workspace")
    _create_latency_view("path, version, queued_at, archived_at")
