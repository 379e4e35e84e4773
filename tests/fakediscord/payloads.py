"""JSON payloads in the shapes Discord's API v10 sends, built from the fake's state.

Only the fields discord.py reads are filled in, with Discord's own defaults.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
_increment = itertools.count()

# Permission bits (https://discord.com/developers/docs/topics/permissions).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
ADD_REACTIONS = 1 << 6
MANAGE_CHANNELS = 1 << 4
USE_APPLICATION_COMMANDS = 1 << 31
MEMBER_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
)


def snowflake() -> int:
    """A fresh, increasing id with a real timestamp, like Discord's."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_increment) & 0x3FFFFF)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False
    # Guild-wide permissions this user has (what interactions report as member.permissions).
    permissions: int = MEMBER_PERMISSIONS

    def user(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    def member(self, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [],
            "joined_at": iso_now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
        }
        if with_user:
            data["user"] = self.user()
        return data


@dataclass
class FakeChannel:
    id: int
    guild_id: int
    name: str
    position: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 0,  # GUILD_TEXT
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeUser] = field(default_factory=dict)
    # Boost tier: 0 and 1 allow 10 MiB uploads, 2 allows 50 MiB, 3 allows 100 MiB.
    premium_tier: int = 0
    everyone_permissions: int = MEMBER_PERMISSIONS

    @property
    def filesize_limit(self) -> int:
        return {0: 10, 1: 10, 2: 50, 3: 100}[self.premium_tier] * 1024 * 1024

    def channel_named(self, name: str) -> FakeChannel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(name)

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [
                {
                    "id": str(self.id),  # @everyone shares the guild's id
                    "name": "@everyone",
                    "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "position": 0,
                    "permissions": str(self.everyone_permissions),
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            # GUILD_CREATE extras
            "joined_at": iso_now(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.member() for m in self.members.values()],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class StoredFile:
    filename: str
    data: bytes
    content_type: str


def attachment_payload(attachment_id: int, file: StoredFile, url: str) -> dict[str, Any]:
    width = height = None
    try:  # real Discord reports image dimensions; the bot may use them
        import io

        from PIL import Image

        with Image.open(io.BytesIO(file.data)) as im:
            width, height = im.size
    except Exception:
        pass
    return {
        "id": str(attachment_id),
        "filename": file.filename,
        "size": len(file.data),
        "url": url,
        "proxy_url": url,
        "content_type": file.content_type,
        "width": width,
        "height": height,
    }


def message_payload(
    *,
    message_id: int,
    channel: FakeChannel,
    author: FakeUser,
    content: str,
    attachments: list[dict[str, Any]],
    embeds: list[dict[str, Any]] | None = None,
    reference: dict[str, Any] | None = None,
    webhook_id: int | None = None,
    interaction: dict[str, Any] | None = None,
    flags: int = 0,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(message_id),
        "channel_id": str(channel.id),
        "guild_id": str(channel.guild_id),
        "author": author.user(),
        "member": author.member(with_user=False),
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": embeds or [],
        "pinned": False,
        "type": 19 if reference else 0,  # REPLY or DEFAULT
        "flags": flags,
        "components": [],
    }
    if reference:
        data["message_reference"] = reference
    if webhook_id:
        data["webhook_id"] = str(webhook_id)
    if interaction:
        data["interaction_metadata"] = interaction
    return data
