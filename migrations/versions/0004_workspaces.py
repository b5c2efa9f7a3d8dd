"""A workspace per version, so many users can share one index.

Every version and reservation records the key prefix it lives under; version
numbers are unique per (workspace, path) instead of per path. Existing rows
take the workspace their store key already names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

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
    """The prefix before ``<encoded path>/@<stamp>`` in a version's key (keys.py, 0004)."""
    encoded = path.replace("%", "%25").replace("@", "%40")
    return store_key[: store_key.rfind(f"{encoded}/@")].strip("/")


def _fill_workspaces(table: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(f"SELECT store_key, path FROM {table}")).all()
    update = sa.text(f"UPDATE {table} SET workspace = :workspace WHERE store_key = :key")
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        bind.execute(update, [{"key": k, "workspace": _workspace_of(k, p)} for k, p in batch])


def _create_latency_view(columns: str) -> None:
    latency = _LATENCY_MS[op.get_bind().dialect.name]
    op.execute(
        f"CREATE VIEW archive_latency AS SELECT {columns}, {latency} AS latency_ms FROM versions"
    )


def upgrade() -> None:
    # SQLite rebuilds a table to change its constraints; the view must not watch it happen.
    op.execute("DROP VIEW archive_latency")
    for table, (old, new) in _UNIQUE.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("workspace", sa.String(1024), nullable=False, server_default="")
            )
        _fill_workspaces(table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("workspace", server_default=None)
            batch.drop_constraint(old, type_="unique")
            batch.create_unique_constraint(new, ["workspace", "path", "version"])
    _create_latency_view("workspace, path, version, queued_at, archived_at")


def downgrade() -> None:
    op.execute("DROP VIEW archive_latency")
    for table, (old, new) in _UNIQUE.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(new, type_="unique")
            batch.create_unique_constraint(old, ["path", "version"])
            batch.drop_column("workspace")
    _create_latency_view("path, version, queued_at, archived_at")
