"""`/gallery enable|disable` on the (fake) Discord: Manage Server only, and the web
gallery follows it."""

from __future__ import annotations

from db.web_queries import gallery_guilds
from tests.bot.helpers import E2E
from tests.fakediscord.payloads import MEMBER_PERMISSIONS
from tests.fakediscord.server import CHANNEL_MESSAGE

pytestmark = E2E

MANAGE_GUILD = 1 << 5


async def said(fake, user, channel, subcommand: str) -> str:
    interaction = await fake.slash(user, channel, "gallery", subcommand=subcommand)

    def answer():
        for kind, data, _ in interaction.callbacks:
            if kind == CHANNEL_MESSAGE:
                return data.get("content", "")
        return None

    return await fake.wait_until(answer, 20)


async def test_gallery_enable_needs_manage_server_and_opens_the_gallery(world, bot, database):
    fake = world.fake
    refused = await said(fake, world.mod, world.general, "enable")  # Manage Channels only
    assert "permission" in refused
    assert await gallery_guilds(database) == []

    admin = fake.add_user("admin", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD)
    assert "now show in the public web gallery" in await said(fake, admin, world.general,
                                                              "enable")
    shown = await gallery_guilds(database)
    assert [(g.id, g.name) for g in shown] == [(world.guild.id, world.guild.name)]

    assert "no longer shown" in await said(fake, admin, world.general, "disable")
    assert await gallery_guilds(database) == []
