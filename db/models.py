"""The records colorbot keeps: guilds, pages, colorings, votes, member versions,
training runs, duels and rate-limit windows.

Discord ids (snowflakes) are 64-bit: always `BigInteger`. Times are UTC-aware
(`UTCDateTime`). Relations are plain foreign keys with `ON DELETE` rules enforced by
the database; there are no ORM relationships, so nothing is ever lazy-loaded under
asyncio. Only Alembic creates this schema (`db/migrations/`); a test checks that the
migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import BigIntId, UTCDateTime, utcnow

RUN_STATUSES = ("running", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Guild(Base):
    """A Discord server and its settings."""

    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), default="")
    # What a guild can set (e.g. "gallery"), without a migration per knob.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GuildChannel(Base):
    """An explicit `/channel enable|disable`; it wins over the default channel names."""

    __tablename__ = "guild_channels"

    channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[int | None] = mapped_column(BigInteger)  # Discord user id
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Page(Base):
    """A coloring page someone posted; its image lives in the store under `sha256`.

    The same image in the same message is one page; the same image posted again in
    another message is a new page (its own votes) sharing the stored file.
    """

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("message_id", "sha256"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # content hash = store key
    guild_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    # The message carrying the attachment (None for pages from the CLI or a slash command).
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    author_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    source: Mapped[str] = mapped_column(String(16), default="discord")
    filename: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(16))  # lineart | photo, once known
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrainingRun(Base):
    """One training, fine-tuning or judge run and what it measured."""

    __tablename__ = "training_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # train | retrain | finetune | judge ...
    member: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MemberVersion(Base):
    """One version of a family member's weights; at most one promoted per member."""

    __tablename__ = "member_versions"
    __table_args__ = (
        UniqueConstraint("member", "version"),
        # The database, not a hope, keeps "the served version" unique per member.
        Index(
            "uq_member_versions_promoted",
            "member",
            unique=True,
            sqlite_where=text("promoted"),
            postgresql_where=text("promoted"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    member: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("member_versions.id", ondelete="SET NULL")
    )
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    training_run_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why it was promoted, kept back by the gate, or rolled back.
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coloring(Base):
    """One member version's coloring of a page, and the reply message showing it.

    `(message_id, emoji)` is how a raw reaction event finds the coloring it votes for,
    also for messages sent before a restart.
    """

    __tablename__ = "colorings"
    __table_args__ = (
        UniqueConstraint("message_id", "emoji"),
        # Target of the votes' composite foreign key (a vote's page is its coloring's).
        UniqueConstraint("id", "page_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    page_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("pages.id", ondelete="CASCADE"), index=True
    )
    member_version_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("member_versions.id", ondelete="RESTRICT"), index=True
    )
    emoji: Mapped[str] = mapped_column(String(32))  # the member's voting emoji
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # strength, fill ...
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # stored PNG
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the bot's reply
    duration_ms: Mapped[float | None] = mapped_column(Float)  # the member's own time
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # queue, batch, total ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Vote(Base):
    """A user's vote for one coloring of a page; `removed_at` set when taken back.

    History is kept (moved and removed votes stay with `removed_at`); the partial
    unique index allows exactly one *live* vote per (user, page).
    """

    __tablename__ = "votes"
    __table_args__ = (
        Index(
            "uq_votes_live_user_page",
            "user_id",
            "page_id",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        # A vote's page is always its coloring's page.
        ForeignKeyConstraint(
            ["coloring_id", "page_id"], ["colorings.id", "colorings.page_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    page_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("pages.id", ondelete="CASCADE"), index=True
    )
    coloring_id: Mapped[int] = mapped_column(BigIntId, index=True)
    source: Mapped[str] = mapped_column(String(16), default="discord")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Duel choices: the left coloring, the right one, or neither better.
DUEL_CHOICES = ("a", "b", "tie")


class Duel(Base):
    """Two colorings of one page shown side by side without names (A and B).

    A duel vote compares exactly these two: a clean head-to-head pair. The duel message
    carries buttons whose custom_id names the duel, so votes after a restart find it.
    """

    __tablename__ = "duels"
    __table_args__ = (
        CheckConstraint("coloring_a_id <> coloring_b_id", name="two_colorings"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    page_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("pages.id", ondelete="CASCADE"), index=True
    )
    coloring_a_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("colorings.id", ondelete="CASCADE"), index=True
    )
    coloring_b_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("colorings.id", ondelete="CASCADE"), index=True
    )
    guild_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the duel message, once sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuelVote(Base):
    """A person's vote in one duel; voting again replaces it (one per person per duel)."""

    __tablename__ = "duel_votes"
    __table_args__ = (
        UniqueConstraint("duel_id", "user_id"),
        CheckConstraint(_in("choice", DUEL_CHOICES), name="choice"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    duel_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("duels.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    choice: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16), default="discord")
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateLimitHit(Base):
    """One counted request in a user's sliding rate-limit window, shared by every bot
    process using this database. Rows older than the window are deleted as new hits
    come in."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (
        Index(None, "scope", "user_id", "at"),
        Index(None, "scope", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))  # what is limited: "pages"
    user_id: Mapped[int] = mapped_column(BigInteger)
    # Seconds since the epoch (wall clock): plain numbers compare and subtract the same
    # way on every database.
    at: Mapped[float] = mapped_column(Float)
