"""Plain values the repository returns where a single ORM row would not do.

Frozen dataclasses, detached from any session: safe to pass around, log, or hand to
another task. Snowflakes are ints here; `to_json()` turns them into strings the way
Discord's API does (JavaScript numbers cannot hold 64-bit ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from db.models import Coloring, Page


def _sf(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class NewColoring:
    """One member's coloring of a page, as the worker returned it, to be recorded."""

    member: str
    version: int
    emoji: str
    image: bytes  # PNG
    parameters: dict[str, Any] = field(default_factory=dict)  # strength, fill, kind ...
    duration_ms: float | None = None
    timings: dict[str, Any] | None = None
    weights_sha256: str | None = None


@dataclass(frozen=True)
class RecordedPage:
    page: Page
    created: bool  # False: this image in this message was recorded before


@dataclass(frozen=True)
class ReplyTarget:
    """A reply message the bot sent: the page it shows and the coloring per emoji."""

    message_id: int
    page: Page
    colorings: dict[str, Coloring]  # emoji -> coloring
    members: dict[str, str]  # emoji -> member name


VoteStatus = Literal["added", "moved", "unchanged", "ignored"]


@dataclass(frozen=True)
class VoteResult:
    """What `cast_vote` did.

    status: "added" (first live vote of this user on this page), "moved" (the live vote
    moved here from `previous_emoji`), "unchanged" (it already was here), "ignored"
    (the message/emoji pair is not a coloring: not our message, or not a member's emoji).
    """

    status: VoteStatus
    page_id: int | None = None
    coloring_id: int | None = None
    member: str | None = None
    vote_id: int | None = None
    previous_coloring_id: int | None = None
    previous_emoji: str | None = None

    @property
    def counted(self) -> bool:
        return self.status != "ignored"


@dataclass(frozen=True)
class VoteExportRow:
    """One live vote, as `colorbot votes export` writes it."""

    guild_id: int | None
    channel_id: int | None
    message_id: int | None  # the reply message the vote was cast on
    page_id: int
    page_sha256: str
    page_message_id: int | None  # the message that carried the page
    user_id: int
    member: str
    member_version: int
    emoji: str
    coloring_id: int
    voted_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "guild_id": _sf(self.guild_id),
            "channel_id": _sf(self.channel_id),
            "message_id": _sf(self.message_id),
            "page_id": self.page_id,
            "page_sha256": self.page_sha256,
            "page_message_id": _sf(self.page_message_id),
            "user_id": _sf(self.user_id),
            "member": self.member,
            "member_version": self.member_version,
            "emoji": self.emoji,
            "coloring_id": self.coloring_id,
            "voted_at": self.voted_at.isoformat(),
        }


@dataclass(frozen=True)
class ColoringRef:
    coloring_id: int
    member: str
    version: int
    member_version_id: int
    emoji: str
    sha256: str  # the stored PNG
    parameters: dict[str, Any]


@dataclass(frozen=True)
class VotedPage:
    """A live vote with what the voter saw: the basis of pairwise preferences.

    `others` are the other colorings shown in the same reply message; the voter
    preferred `voted` over each of them.
    """

    vote_id: int
    user_id: int
    guild_id: int | None
    page_id: int
    page_sha256: str
    page_kind: str | None
    voted: ColoringRef
    others: tuple[ColoringRef, ...]
    voted_at: datetime
    source: str


@dataclass(frozen=True)
class ForgetResult:
    pages: int
    colorings: int
    votes: int
    files: int  # stored images deleted because nothing refers to them any more
