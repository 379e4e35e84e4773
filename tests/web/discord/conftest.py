"""The bot's end-to-end fixtures (real bot, fake Discord, in-process worker), for the
`/gallery` command that switches the web gallery on and off."""

from tests.bot.conftest import (  # noqa: F401 - fixtures, used by name
    bot,
    database,
    fake,
    family_dir,
    settings,
    worker,
    world,
)
