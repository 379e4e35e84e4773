"""Initial schema: guilds, pages, colorings, votes, member versions, training runs, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types spelled out here, not imported from db/, so this revision never changes
# when the models do.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # auto-incrementing surrogate key
SNOWFLAKE = sa.BigInteger()  # a Discord id
TIME = sa.DateTime(timezone=True)  # UTC
SHA256 = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "guilds",
        sa.Column("id", SNOWFLAKE, autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("default_strength", sa.Float(), nullable=False),
        sa.Column("default_fill", sa.Boolean(), nullable=True),
        sa.Column("default_members", sa.JSON(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guilds")),
    )

    op.create_table(
        "guild_channels",
        sa.Column("channel_id", SNOWFLAKE, autoincrement=False, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_by", SNOWFLAKE, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["guild_id"],
            ["guilds.id"],
            name=op.f("fk_guild_channels_guild_id_guilds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_guild_channels")),
    )
    op.create_index(op.f("ix_guild_channels_guild_id"), "guild_channels", ["guild_id"])

    op.create_table(
        "training_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("member", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_training_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(op.f("ix_training_runs_member"), "training_runs", ["member"])

    op.create_table(
        "member_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("member", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("weights_sha256", SHA256, nullable=True),
        sa.Column("training_run_id", ID, nullable=True),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["member_versions.id"],
            name=op.f("fk_member_versions_parent_id_member_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name=op.f("fk_member_versions_training_run_id_training_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_versions")),
        sa.UniqueConstraint("member", "version", name=op.f("uq_member_versions_member_version")),
    )
    # At most one promoted (served) version per member.
    op.create_index(
        "uq_member_versions_promoted",
        "member_versions",
        ["member"],
        unique=True,
        sqlite_where=sa.text("promoted"),
        postgresql_where=sa.text("promoted"),
    )

    op.create_table(
        "pages",
        sa.Column("id", ID, nullable=False),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=True),
        sa.Column("channel_id", SNOWFLAKE, nullable=True),
        sa.Column("message_id", SNOWFLAKE, nullable=True),
        sa.Column("author_id", SNOWFLAKE, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["guild_id"], ["guilds.id"], name=op.f("fk_pages_guild_id_guilds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
        sa.UniqueConstraint("message_id", "sha256", name=op.f("uq_pages_message_id_sha256")),
    )
    op.create_index(op.f("ix_pages_sha256"), "pages", ["sha256"])
    op.create_index(op.f("ix_pages_guild_id"), "pages", ["guild_id"])
    op.create_index(op.f("ix_pages_author_id"), "pages", ["author_id"])

    op.create_table(
        "colorings",
        sa.Column("id", ID, nullable=False),
        sa.Column("page_id", ID, nullable=False),
        sa.Column("member_version_id", ID, nullable=False),
        sa.Column("emoji", sa.String(length=32), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("message_id", SNOWFLAKE, nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["page_id"], ["pages.id"], name=op.f("fk_colorings_page_id_pages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_version_id"],
            ["member_versions.id"],
            name=op.f("fk_colorings_member_version_id_member_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_colorings")),
        # How a reaction (message, emoji) finds its coloring.
        sa.UniqueConstraint("message_id", "emoji", name=op.f("uq_colorings_message_id_emoji")),
        # Target of votes' composite foreign key.
        sa.UniqueConstraint("id", "page_id", name=op.f("uq_colorings_id_page_id")),
    )
    op.create_index(op.f("ix_colorings_page_id"), "colorings", ["page_id"])
    op.create_index(op.f("ix_colorings_member_version_id"), "colorings", ["member_version_id"])
    op.create_index(op.f("ix_colorings_sha256"), "colorings", ["sha256"])

    op.create_table(
        "votes",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("page_id", ID, nullable=False),
        sa.Column("coloring_id", ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.Column("removed_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["page_id"], ["pages.id"], name=op.f("fk_votes_page_id_pages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["coloring_id", "page_id"],
            ["colorings.id", "colorings.page_id"],
            name=op.f("fk_votes_coloring_id_colorings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
    )
    op.create_index(op.f("ix_votes_user_id"), "votes", ["user_id"])
    op.create_index(op.f("ix_votes_page_id"), "votes", ["page_id"])
    op.create_index(op.f("ix_votes_coloring_id"), "votes", ["coloring_id"])
    # THE rule: at most one live vote per (user, page).
    op.create_index(
        "uq_votes_live_user_page",
        "votes",
        ["user_id", "page_id"],
        unique=True,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )

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


def downgrade() -> None:
    # Dependents first; a table's indexes go with it.
    for table in (
        "jobs",
        "votes",
        "colorings",
        "pages",
        "member_versions",
        "training_runs",
        "guild_channels",
        "guilds",
    ):
        op.drop_table(table)
