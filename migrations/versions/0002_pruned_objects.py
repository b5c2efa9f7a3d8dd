"""Objects whose versions were pruned, until they are deleted from the store.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bookstore.index.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pruned_objects",
        sa.Column("store_key", sa.String(8192), primary_key=True),
        sa.Column("pruned_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pruned_objects")
