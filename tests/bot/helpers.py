"""Shared pieces of the bot's end-to-end tests: a tiny family, pages, a running bot."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.fakediscord import FakeDiscord, FakeGuild, FakeUser, StoredFile

# End-to-end tests share the session's event loop (and so one in-process worker).
E2E = pytest.mark.asyncio(loop_scope="session")

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.fake.token-for-tests-only"
# The default members' names and voting emoji (the vote keys), tiny networks.
MEMBERS = (("openmoji", "😀"), ("fluent", "🌈"), ("clipart", "📎"), ("artworks", "🎨"))
TINY = {"base_channels": 4, "depth": 2, "max_channels": 8}


def build_tiny_family(root: Path) -> Path:
    """Four tiny U-Net members with the default names and emoji; returns the folder."""
    import torch

    from models.family import Family, FamilyMember, save_weights
    from models.unet import UNet, UNetConfig

    root.mkdir(parents=True, exist_ok=True)
    # artworks has a growing-up picture (a two-frame GIF), as trained members do.
    frames = [Image.new("RGB", (16, 16), color) for color in ("white", "orange")]
    frames[0].save(root / "artworks-growing-up.gif", save_all=True, append_images=frames[1:])
    members = []
    for index, (name, emoji) in enumerate(MEMBERS):
        torch.manual_seed(index)
        config = UNetConfig(**TINY)
        weights = f"{name}-v1.safetensors"
        sha = save_weights(UNet(config), root / weights)
        members.append(FamilyMember(
            name=name, emoji=emoji, description=f"tiny {name}", architecture="unet",
            config=config.to_dict(), weights=weights, version=1, work_size=32,
            trained_on=f"{name} test pictures", weights_sha256=sha,
            growing_up="artworks-growing-up.gif" if name == "artworks" else "",
        ))
    Family(root, members).save_manifest()
    return root


def page_png(size: tuple[int, int] = (96, 80), seed: int = 0) -> bytes:
    """A small black-on-white line drawing (a coloring page), as PNG."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((8 + seed % 7, 8, w // 2, h // 2 + seed % 5), outline="black", width=2)
    draw.rectangle((w // 2, h // 3, w - 8, h - 8), outline="black", width=2)
    draw.line((0, h - 20, w, h - 25), fill="black", width=2)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def page_file(name: str = "page.png", seed: int = 0) -> StoredFile:
    return StoredFile(name, page_png(seed=seed), "image/png")


@dataclass
class World:
    """A fake Discord with one guild, a `#coloring` and a `#general` channel, users."""

    fake: FakeDiscord
    guild: FakeGuild
    alice: FakeUser
    bob: FakeUser
    carol: FakeUser
    mod: FakeUser

    @property
    def coloring(self):
        return self.guild.channel_named("coloring")

    @property
    def general(self):
        return self.guild.channel_named("general")

    async def reply_to(self, message, timeout: float = 60.0):
        """The bot's reply to `message`, once it has all its reactions (or is text)."""
        def done():
            replies = self.fake.replies_to(message.id)
            if not replies:
                return None
            reply = replies[0]
            legend = [line for line in reply.content.splitlines() if line.startswith("Vote")]
            members = legend[0].count(" **") if legend else 0
            if len(self.fake.reactions_on(reply.id, self.fake.bot_user.id)) < members:
                return None  # reactions still being added
            return reply
        return await self.fake.wait_until(done, timeout)


async def eventually(fetch, predicate=bool, timeout: float = 15.0):
    """Poll the coroutine function `fetch` until `predicate(value)`; return the value
    (the bot handles gateway events asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if predicate(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def start_bot(bot, fake: FakeDiscord) -> asyncio.Task:
    task = asyncio.create_task(bot.start(TOKEN))
    await fake.wait_until(lambda: task.done() or bot.is_ready(), 60)
    if task.done():
        task.result()  # raises what went wrong
    await fake.wait_until(lambda: fake.commands, 10)
    return task


async def stop_bot(bot, task: asyncio.Task) -> None:
    await bot.close()
    await asyncio.wait_for(task, 10)
