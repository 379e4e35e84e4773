"""Duels (two anonymous colorings, A / B / tie votes) and rate-limit windows shared by
every bot process.

Revision ID: 0002_duels_rate_limits
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_duels_rate_limits"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types spelled out here, not imported from db/, so this revision never changes
# when the models do.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # auto-incrementing surrogate key
SNOWFLAKE = sa.BigInteger()  # a Discord id
TIME = sa.DateTime(timezone=True)  # UTC


def upgrade() -> None:
    op.create_table(
        "duels",
        sa.Column("id", ID, nullable=False),
        sa.Column("page_id", ID, nullable=False),
        sa.Column("coloring_a_id", ID, nullable=False),
        sa.Column("coloring_b_id", ID, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=True),
        sa.Column("channel_id", SNOWFLAKE, nullable=True),
        sa.Column("message_id", SNOWFLAKE, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint("coloring_a_id <> coloring_b_id",
                           name=op.f("ck_duels_two_colorings")),
        sa.ForeignKeyConstraint(
            ["page_id"], ["pages.id"], name=op.f("fk_duels_page_id_pages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["coloring_a_id"], ["colorings.id"], name=op.f("fk_duels_coloring_a_id_colorings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["coloring_b_id"], ["colorings.id"], name=op.f("fk_duels_coloring_b_id_colorings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duels")),
    )
    op.create_index(op.f("ix_duels_page_id"), "duels", ["page_id"])
    op.create_index(op.f("ix_duels_coloring_a_id"), "duels", ["coloring_a_id"])
    op.create_index(op.f("ix_duels_coloring_b_id"), "duels", ["coloring_b_id"])
    op.create_index(op.f("ix_duels_guild_id"), "duels", ["guild_id"])

    op.create_table(
        "duel_votes",
        sa.Column("id", ID, nullable=False),
        sa.Column("duel_id", ID, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("choice", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("voted_at", TIME, nullable=False),
        sa.CheckConstraint("choice IN ('a', 'b', 'tie')", name=op.f("ck_duel_votes_choice")),
        sa.ForeignKeyConstraint(
            ["duel_id"], ["duels.id"], name=op.f("fk_duel_votes_duel_id_duels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duel_votes")),
        # One vote per person per duel: voting again replaces it.
        sa.UniqueConstraint("duel_id", "user_id", name=op.f("uq_duel_votes_duel_id_user_id")),
    )
    op.create_index(op.f("ix_duel_votes_user_id"), "duel_votes", ["user_id"])

    op.create_table(
        "rate_limit_hits",
        sa.Column("id", ID, nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    op.create_index(op.f("ix_rate_limit_hits_scope_user_id_at"), "rate_limit_hits",
                    ["scope", "user_id", "at"])
    op.create_index(op.f("ix_rate_limit_hits_scope_at"), "rate_limit_hits", ["scope", "at"])


def downgrade() -> None:
    for table in ("rate_limit_hits", "duel_votes", "duels"):
        op.drop_table(table)
