"""Guilds and their channels: where pages are colored, and the guild's settings knobs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import DatabaseCore, dialect_insert
from db.models import Guild, GuildChannel
from db.types import utcnow


async def ensure_guild_row(s: AsyncSession, guild_id: int, name: str | None) -> None:
    """The guild's row inside transaction `s`, created on first sight; `name` kept
    fresh when given."""
    now = utcnow()
    values = {"id": guild_id, "name": name or "", "settings": {}, "created_at": now,
              "updated_at": now}
    await s.execute(dialect_insert(s, Guild).values(**values).on_conflict_do_nothing())
    if name is not None:
        await s.execute(
            update(Guild)
            .where(Guild.id == guild_id, Guild.name != name)
            .values(name=name, updated_at=utcnow())
        )


class ChannelQueries(DatabaseCore):
    async def ensure_guild(self, guild_id: int, name: str | None = None) -> Guild:
        """The guild's record, created on first sight; `name` kept fresh when given."""

        async def tx(s: AsyncSession) -> Guild:
            await ensure_guild_row(s, guild_id, name)
            return (await s.execute(select(Guild).where(Guild.id == guild_id))).scalar_one()

        return await self.run(tx)

    async def update_guild_settings(self, guild_id: int, settings: dict[str, Any]) -> Guild:
        """Merge `settings` into the guild's settings, key by key (others stay)."""

        async def tx(s: AsyncSession) -> Guild:
            await ensure_guild_row(s, guild_id, None)
            guild = (
                await s.execute(select(Guild).where(Guild.id == guild_id).with_for_update())
            ).scalar_one()
            guild.settings = {**(guild.settings or {}), **settings}
            guild.updated_at = utcnow()
            return guild

        return await self.run(tx, retry_conflicts=True)

    async def set_channel_enabled(
        self, guild_id: int, channel_id: int, enabled: bool, *, changed_by: int | None = None
    ) -> None:
        """`/channel enable|disable`: an explicit choice, which wins over default names."""

        async def tx(s: AsyncSession) -> None:
            await ensure_guild_row(s, guild_id, None)
            changed = {
                "guild_id": guild_id,
                "enabled": enabled,
                "changed_by": changed_by,
                "updated_at": utcnow(),
            }
            stmt = dialect_insert(s, GuildChannel).values(channel_id=channel_id, **changed)
            await s.execute(
                stmt.on_conflict_do_update(index_elements=[GuildChannel.channel_id], set_=changed)
            )

        await self.run(tx, retry_conflicts=True)

    async def is_channel_enabled(
        self,
        guild_id: int | None,
        channel_id: int,
        channel_name: str | None = None,
        default_channels: Iterable[str] = (),
    ) -> bool:
        """Whether pages posted in this channel are colored.

        An explicit `/channel enable|disable` decides; otherwise the channel is enabled
        when its name is one of `default_channels` (Settings.default_channels).
        """

        async def tx(s: AsyncSession) -> bool | None:
            return (
                await s.execute(
                    select(GuildChannel.enabled).where(GuildChannel.channel_id == channel_id)
                )
            ).scalar_one_or_none()

        explicit = await self.run(tx, write=False)
        if explicit is not None:
            return bool(explicit)
        names = {n.lower().lstrip("#") for n in default_channels}
        return channel_name is not None and channel_name.lower() in names
