"""`/leaderboard`: favourite share from the votes, what it means, and the judge's board
stored by the latest retrain cycle (the bot reads it without torch)."""

from __future__ import annotations

from tests.bot.helpers import E2E, eventually, page_file
from tests.bot.test_commands import answer

pytestmark = E2E


async def test_leaderboard_shows_favourite_share_its_meaning_and_the_judges_board(
    world, bot, database
):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file(seed=11)])
    reply = await world.reply_to(page)
    await fake.react(world.alice, reply, "🌈")
    await fake.react(world.bob, reply, "🌈")
    await fake.react(world.carol, reply, "😀")
    await eventually(database.live_votes, lambda v: len(v) >= 3)

    interaction = await fake.slash(world.alice, world.general, "leaderboard")
    text = await fake.wait_until(lambda: answer(fake, interaction), 20)
    lines = text.splitlines()
    assert "favourite share" in lines[0]
    assert lines[1].startswith("1. 🌈 **fluent** - ") and "% favourite share" in lines[1]
    assert "picked in" in lines[1]
    assert any(line.startswith("-# Favourite share: the share of votes") for line in lines)
    assert "judge's board" not in text  # no retrain cycle yet

    # A finished cycle stores the judge's board with its training run.
    run = await database.start_training_run("retrain")
    rows = [
        {"rank": 1, "position": 1, "member": "clipart", "rating": 1080.0, "lower": 1040.0,
         "upper": 1120.0, "wins": 30, "games": 40, "emoji": "", "unit": "elo"},
        {"rank": 2, "position": 2, "member": "fluent", "rating": 920.0, "lower": 880.0,
         "upper": 960.0, "wins": 10, "games": 40, "emoji": "", "unit": "elo"},
    ]
    await database.finish_training_run(run.id, metrics={"judge_board": {
        "rows": rows, "pages": 12, "judge_heldout_accuracy": 0.74}})
    await database.add_member_version("clipart", training_run_id=run.id)

    interaction = await fake.slash(world.alice, world.general, "leaderboard")
    text = await fake.wait_until(lambda: answer(fake, interaction), 20)
    judge_part = text.split("**The judge's board**", 1)[1]
    assert "guessed 74% of held-out votes right" in judge_part
    assert "(12 pages)" in judge_part and "Elo scale" in judge_part
    assert "1. 📎 **clipart** - 1080 (1040–1120, 95%) · won 30 of 40 pairs" in judge_part
