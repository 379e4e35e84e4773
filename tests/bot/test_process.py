"""`colorbot run` as a real process against the fake Discord; the token never shows."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.bot.helpers import E2E, TOKEN, page_file
from tests.fakediscord import StoredFile

pytestmark = E2E

ROOT = Path(__file__).resolve().parents[2]


async def test_colorbot_run_serves_pages_and_never_logs_the_token(world, tmp_path, family_dir):
    fake = world.fake
    env = dict(os.environ)
    env.update(
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        COLORBOT_DATA=str(tmp_path / "data"),
        COLORBOT_FAMILY=str(family_dir),
        WORKER_URLS="",
        DATABASE_URL="",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "bot.log"
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "colorbot", "--verbose", "run",
            cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await fake.wait_until(
                lambda: fake.identify_count and fake.commands or process.returncode is not None, 90)
            assert process.returncode is None, log_path.read_text()
            await asyncio.sleep(0.5)  # READY and GUILD_CREATE parsed
            page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
            reply = await world.reply_to(page, timeout=90)
            assert len(reply.files) == 5
            await fake.react(world.bob, reply, "😀")
            # A page that fails, so error paths log too.
            await fake.post_message(world.coloring, world.alice,
                                    files=[StoredFile("x.png", b"junk", "image/png")])
            await fake.wait_until(lambda: len(fake.messages_in(world.coloring.id,
                                                               fake.bot_user.id)) >= 2)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
    output = log_path.read_text(errors="replace")
    assert code == 0, output
    assert "DEBUG" in output and "discord" in output  # debug logging really was on
    assert TOKEN not in output
    # Nor any recognisable part of it (e.g. the first segment, the user-id part).
    assert TOKEN.split(".")[0] not in output
