"""What the bot tells people when something goes wrong, in one place.

Every failure a user can cause or see ends up here: `user_message(exc)` turns an
exception into one short, kind sentence, and the details go to the log. Nothing in a
user-facing message comes from an exception's text unless the exception says it is
safe to show (`UserError`, `PageError`, `WorkerError`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import discord

log = logging.getLogger(__name__)


class UserError(Exception):
    """A problem whose message is written for the user who caused it."""


class NotAnImage(UserError):
    def __init__(self, filename: str) -> None:
        super().__init__(
            f"I can only color pictures, and **{filename}** doesn't look like one. "
            "Try a PNG or JPEG of a coloring page."
        )


class TooLarge(UserError):
    def __init__(self, filename: str, size: int, limit: int) -> None:
        super().__init__(
            f"**{filename}** is {size / 1e6:.1f} MB; I can take pages up to "
            f"{limit / 1e6:.0f} MB. A smaller scan or a JPEG will do."
        )


class SlowDown(UserError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Slow down a little! You can send another page in {max(1, round(retry_after))} s."
        )


GENERIC_MESSAGE = "Something went wrong on my side. Please try again in a moment."
WORKER_DOWN_MESSAGE = "My colorists are taking a break right now. Please try again in a minute."


def user_message(exc: BaseException) -> str:
    """The sentence to show a user for `exc`; unknown errors get a generic apology."""
    # Unwrap discord.py's wrappers (CommandInvokeError, TransformerError ...).
    seen = 0
    while isinstance(original := getattr(exc, "original", None), BaseException) and seen < 5:
        exc = original
        seen += 1
    if isinstance(exc, UserError):
        return str(exc)
    # db.errors.DatabaseUnavailable carries a message written for people.
    safe = getattr(type(exc), "user_message", None)
    if isinstance(safe, str) and safe:
        return safe
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if name == "PageError" and module.startswith("models"):
        return f"I couldn't read that picture: {exc}"
    if name == "WorkerError" and module.startswith("bot"):
        return str(exc) or WORKER_DOWN_MESSAGE
    if module.startswith("sqlalchemy") or name in {"OperationalError", "InterfaceError"}:
        from db.errors import DatabaseUnavailable

        return DatabaseUnavailable.user_message
    from discord import app_commands

    if isinstance(exc, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in exc.missing_permissions)
        return f"You need the **{needed}** permission for that."
    if isinstance(exc, app_commands.CommandOnCooldown):
        return str(SlowDown(exc.retry_after))
    if isinstance(exc, app_commands.CheckFailure):
        return "You can't use that command here."
    return GENERIC_MESSAGE


async def report_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The one place slash-command and button failures end: a kind message to the user,
    the details in the log."""
    import discord

    message = user_message(error)
    command = interaction.command.qualified_name if interaction.command else "?"
    if message == GENERIC_MESSAGE:  # unexpected: the traceback belongs in the log
        log.error("/%s failed", command, exc_info=error)
    else:
        log.info("/%s: %s (%s)", command, message, type(error).__name__)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about the error", exc_info=True)
