"""What each version costs in the store, beside the bytes that were saved.

``versions.stored_size`` is the bytes a version added to the store when it was
written: its object, and the parts it was the first to keep (``docs/storage.md``).
Every version written before this revision is one whole object, so its stored
size is its size. ``storage_by_path`` sums both per path, with their ratio.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORAGE_BY_PATH = """
CREATE VIEW storage_by_path AS
SELECT workspace, path, count(*) AS versions,
       sum(size) AS logical_bytes,
       sum(coalesce(stored_size, size)) AS stored_bytes,
       1.0 * sum(coalesce(stored_size, size)) / nullif(sum(size), 0) AS ratio
FROM versions
GROUP BY workspace, path
"""


def upgrade() -> None:
    op.add_column("versions", sa.Column("stored_size", sa.BigInteger(), nullable=True))
    op.execute("UPDATE versions SET stored_size = size")
    op.execute(STORAGE_BY_PATH)


def downgrade() -> None:
    op.execute("DROP VIEW storage_by_path")
    op.drop_column("versions", "stored_size")  # in place: archive_latency keeps its table
