"""Renames and copies, so a history follows its file.

``path_changes`` lists every rename (a file's or a folder's) and every copy made
through Jupyter. Versions saved under a name before it was renamed belong to the
file's new name; a copy records where its first version came from. Each change
is also kept in the store (``recorded``), so an index rebuilt from it replays
them. Versions are looked up by content once per new path (to recognise a file
moved outside Jupyter), hence the index on ``sha256``.

``leases`` lets one server of a workspace at a time run a scheduled job (thinning
the history): a row per job, held by a server until it expires.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "path_changes",
        sa.Column("record_key", sa.String(1024), primary_key=True),
        sa.Column("workspace", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_path", sa.String(4096), nullable=False),
        sa.Column("to_path", sa.String(4096), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("renumbered", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("recorded", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_path_changes_from", "path_changes", ["workspace", "from_path"])
    op.create_index("ix_path_changes_to", "path_changes", ["workspace", "to_path"])
    op.create_index("ix_versions_sha256", "versions", ["workspace", "sha256"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_versions_sha256", "versions")
    op.drop_table("path_changes")
