"""Version numbers taken before upload, so metadata and index always agree.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reserved_versions",
        sa.Column("store_key", sa.String(8192), primary_key=True),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.UniqueConstraint("path", "version", name="uq_reserved_path_version"),
    )


def downgrade() -> None:
    op.drop_table("reserved_versions")
