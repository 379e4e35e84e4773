"""Drop what nothing reads: the jobs table (no worker ever queued a job; colorings are
requested over HTTP and retried on another worker) and the guilds' default_strength,
default_fill and default_members columns (no command sets them, nothing reads them;
guild knobs live in `guilds.settings`).

Revision ID: 0003_drop_unused
Revises: 0002_duels_rate_limits
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_drop_unused"
down_revision: str | Sequence[str] | None = "0002_duels_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types spelled out here, not imported from db/, so this revision never changes
# when the models do.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # auto-incrementing surrogate key
TIME = sa.DateTime(timezone=True)  # UTC


def upgrade() -> None:
    op.drop_table("jobs")  # its indexes go with it
    # On SQLite this rebuilds the table; migrations run with foreign keys off, so the
    # pages and channels pointing at a guild are kept (db/engine.py, MIGRATION).
    with op.batch_alter_table("guilds") as batch:
        batch.drop_column("default_members")
        batch.drop_column("default_fill")
        batch.drop_column("default_strength")


def downgrade() -> None:
    with op.batch_alter_table("guilds") as batch:
        batch.add_column(
            sa.Column("default_strength", sa.Float(), nullable=False, server_default="1.0")
        )
        batch.add_column(sa.Column("default_fill", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("default_members", sa.JSON(), nullable=True))
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("page_id", ID, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("available_at", TIME, nullable=False),
        sa.Column("claimed_at", TIME, nullable=True),
        sa.Column("lease_expires_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_status")
        ),
        sa.ForeignKeyConstraint(
            ["page_id"], ["pages.id"], name=op.f("fk_jobs_page_id_pages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_page_id"), "jobs", ["page_id"])
    op.create_index(op.f("ix_jobs_status_available_at"), "jobs", ["status", "available_at"])
