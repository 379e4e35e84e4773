"""A protocol-level fake Discord (REST + gateway) for end-to-end tests of the bot."""

from tests.fakediscord.payloads import FakeChannel, FakeGuild, FakeUser, StoredFile
from tests.fakediscord.server import FakeDiscord, FakeInteraction, FakeMessage

__all__ = [
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMessage",
    "FakeUser",
    "StoredFile",
]
