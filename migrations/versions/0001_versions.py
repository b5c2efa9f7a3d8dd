"""The versions table and the archive_latency view.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bookstore.index.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LATENCY_MS = {
    "sqlite": "(julianday(archived_at) - julianday(queued_at)) * 86400000.0",
    "postgresql": (
        "CAST(EXTRACT(EPOCH FROM (archived_at - queued_at)) * 1000.0 AS DOUBLE PRECISION)"
    ),
}


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("store_key", sa.String(8192), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
        sa.Column("label", sa.String(1024), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("path", "version", name="uq_versions_path_version"),
        sa.UniqueConstraint("store_key", name="uq_versions_store_key"),
    )
    op.create_index("ix_versions_queued_at", "versions", ["queued_at"])
    latency = _LATENCY_MS[op.get_bind().dialect.name]
    op.execute(
        "CREATE VIEW archive_latency AS "
        f"SELECT path, version, queued_at, archived_at, {latency} AS latency_ms FROM versions"
    )


def downgrade() -> None:
    op.execute("DROP VIEW archive_latency")
    op.drop_index("ix_versions_queued_at", table_name="versions")
    op.drop_table("versions")
