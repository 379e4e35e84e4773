"""The bot: a `commands.AutoShardedBot` with one cog per feature.

Nothing connects at import. `ColorBot(settings)` builds the bot; `setup_hook` opens the
database and the worker client, loads the cogs and syncs the slash commands; `bot.start(
token)` (or `colorbot run`) connects. Collaborators (worker, store, leaderboard) can be
passed in, which is how tests give it a tiny family and a temporary database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.attachments import AttachmentFetcher
from bot.errors import report_interaction_error
from bot.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from colorbot.settings import Settings

if TYPE_CHECKING:
    from bot.leaderboard import LeaderboardSource
    from bot.worker_client import Worker
    from db import Database

log = logging.getLogger(__name__)

COGS = (
    "bot.cogs.pages",
    "bot.cogs.colorize",
    "bot.cogs.voting",
    "bot.cogs.family",
    "bot.cogs.leaderboard",
    "bot.cogs.channels",
    "bot.cogs.forget",
    "bot.cogs.gallery",
    "bot.cogs.duel",
)


def intents() -> discord.Intents:
    """Guilds, guild messages, reactions and the privileged Message Content intent
    (posted pages are attachments of ordinary messages)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.guild_reactions = True
    wanted.message_content = True
    return wanted


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at a REST proxy / gateway other than Discord's (or at the fake
    Discord in tests). discord.py keeps these process-wide."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class ColorTree(app_commands.CommandTree):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_interaction_error(interaction, error)


class ColorBot(commands.AutoShardedBot):
    """colorbot on Discord. `settings` say where Discord, the database and the workers
    are; `worker`, `store` (a `db.Database`) and `leaderboard` may be given ready-made
    (tests, benchmarks), otherwise `setup_hook` opens them from the settings and
    `close()` closes them. Extra keyword arguments go to discord.py."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker: Worker | None = None,
        store: Database | None = None,
        leaderboard: LeaderboardSource | None = None,
        **options: Any,
    ) -> None:
        configure_endpoints(settings)
        options.setdefault("intents", intents())
        options.setdefault("help_command", None)
        options.setdefault("tree_cls", ColorTree)
        # Replies never ping anyone by surprise.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(command_prefix=commands.when_mentioned, **options)
        self.settings = settings
        # None until setup_hook opens them, which happens before any cog runs.
        self.worker = cast("Worker", worker)
        self.store = cast("Database", store)
        self.leaderboard = cast("LeaderboardSource", leaderboard)
        # In this process's memory until setup_hook has the database; then in the
        # database, shared by every bot process using it.
        self.rate_limiter: Limiter = RateLimiter(settings.rate_limit_pages,
                                                 settings.rate_limit_seconds)
        self.attachments = AttachmentFetcher(settings.discord_api_base)
        self.family_members: list[dict[str, Any]] = []
        self._owns_worker = worker is None
        self._owns_store = store is None
        self._tasks: set[asyncio.Task[None]] = set()

    async def launch_shards(self) -> None:
        # Production may override the gateway URL (a gateway proxy); Discord's
        # answer to GET /gateway/bot is used otherwise.
        if self.settings.discord_gateway_url and self.shard_count is None:
            self.shard_count, _, _ = await self.http.get_bot_gateway()
        await super().launch_shards()

    async def setup_hook(self) -> None:
        from db import Database

        if self.store is None:
            self.store = Database.from_settings(self.settings)
            # `colorbot run` migrated already; refuse to start on an old schema.
            await self.store.check_schema()
        # The in-memory default gives way to windows in the database.
        if isinstance(self.store, Database) and isinstance(self.rate_limiter, RateLimiter):
            self.rate_limiter = SharedRateLimiter(
                self.store, self.settings.rate_limit_pages, self.settings.rate_limit_seconds)
        if self.worker is None:
            from bot.worker_client import make_worker

            self.worker = make_worker(self.settings)
        if self.leaderboard is None:
            # numpy + Pillow only: the bot still never imports torch.
            from training.leaderboard import VoteLeaderboard

            self.leaderboard = VoteLeaderboard(self.store)
        try:
            await self.refresh_family()
        except Exception as exc:  # the worker may start after us (compose, Kubernetes)
            log.warning("the family is not reachable yet (%s); retrying in the background", exc)
            self._background(self._wait_for_family())
        self._background(self._heartbeat())
        self._background(self._storage_upkeep())
        for name in COGS:
            await self.load_extension(name)
        # The 🎲 Another try button under every reply: registered by its custom_id
        # template, so clicks on replies sent before a restart still reach it.
        from bot.another_try import AnotherTryButton

        self.add_dynamic_items(AnotherTryButton)
        synced = await self.tree.sync()
        log.info("synced %d slash commands: %s", len(synced), ", ".join(c.name for c in synced))

    async def refresh_family(self) -> list[dict[str, Any]]:
        """The family as the worker serves it (name, emoji, description, version ...)."""
        self.family_members = list(await self.worker.family())
        return self.family_members

    async def _wait_for_family(self, every: float = 5.0) -> None:
        while not self.family_members and not self.is_closed():
            await asyncio.sleep(every)
            try:
                await self.refresh_family()
                log.info("the family is here: %s",
                         ", ".join(m["name"] for m in self.family_members))
            except Exception as exc:
                log.debug("family still unreachable: %s", exc)

    async def _heartbeat(self, every: float = 30.0) -> None:
        """Touch `<data>/bot.alive` while connected: the container healthcheck reads it."""
        path = Path(self.settings.data_dir) / "bot.alive"
        while not self.is_closed():
            if self.is_ready():
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                except OSError:
                    log.debug("could not touch %s", path, exc_info=True)
            await asyncio.sleep(every)

    async def _storage_upkeep(self, first_min_age_s: float = 120.0,
                              every_s: float = 3600.0) -> None:
        """`colorbot db check --repair` in the background: at start-up (what a crash left:
        orphan files, temporary files, pages without colorings), then every hour.

        At start-up files older than two minutes are junk (a write takes well under
        that); later passes use the longer default, as other processes may be writing.
        """
        from db import Database
        from db.check import DEFAULT_MIN_AGE_S, check_storage

        if not isinstance(self.store, Database):
            return
        min_age = first_min_age_s
        while not self.is_closed():
            try:
                report = await check_storage(self.store, repair=True, min_age_s=min_age)
                if report.problems:
                    log.info("storage check: %s", "; ".join(report.lines()))
            except Exception:  # noqa: BLE001 - upkeep must not take the bot down
                log.warning("storage check failed", exc_info=True)
            min_age = DEFAULT_MIN_AGE_S
            await asyncio.sleep(every_s)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def member_by_emoji(self, emoji: str) -> dict[str, Any] | None:
        for member in self.family_members:
            if member.get("emoji") == emoji:
                return member
        return None

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands (everything is a slash command); the cogs' listeners see
        every message. Not processing commands keeps "@colorbot hi" from logging a
        CommandNotFound error."""

    async def on_ready(self) -> None:
        log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        try:
            await super().close()
        finally:
            # What the bot opened itself, it closes (once: close() may run twice).
            worker, self._owns_worker = (self.worker if self._owns_worker else None), False
            store, self._owns_store = (self.store if self._owns_store else None), False
            await self.attachments.close()
            if worker is not None:
                await worker.close()
            if store is not None:
                await store.close()
