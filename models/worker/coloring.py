"""One member's coloring of a page: what the engine makes, the HTTP API carries and the
bot's worker client returns. Plain data, no torch, so the bot can share it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberColoring:
    member: str  # family member name
    emoji: str  # its voting emoji
    version: int  # member version that colored it (what a Coloring row records)
    png: bytes  # the coloring, PNG, the page's size
    ms: float  # queue + network run + compositing + PNG encoding, as this request saw it
    batch_size: int = 1  # pages in the network call it was part of
    queue_ms: float = 0.0  # waiting for its batch
    run_ms: float = 0.0  # the whole batched call
