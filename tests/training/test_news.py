"""Training news: posts received by the fake Discord's webhook, and failures that
never stop training."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import pytest
from PIL import Image

from tests.fakediscord import FakeDiscord
from tests.training.test_train import _cfg, make_toy_dataset
from tests.training.votes_helpers import one_thread  # noqa: F401 - fixture
from training.news import TrainingNews, post, post_cycle, webhook_url
from training.retrain import CycleReport, MemberOutcome
from training.train import train


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n=12)


def _train_with_news(cfg, url: str) -> tuple:
    news = TrainingNews(url, "toy", total_steps=cfg.steps, timeout=3)
    result = train(cfg, on_snapshot=news.snapshot, on_finish=news.finished)
    news.close(timeout=20)
    return result, news


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_training_posts_each_snapshot_and_the_final_card(toy, tmp_path):
    async with FakeDiscord() as fake:
        url = f"{fake.base_url}/api/webhooks/123/secret-token"
        cfg = _cfg(toy, tmp_path / "run")  # 8 steps, a snapshot every 4
        result, news = await asyncio.to_thread(_train_with_news, cfg, url)
        posts = fake.webhook_posts
    assert result.finished and news.posted == 4 and news.failed == 0
    snapshots, final = posts[:3], posts[3]
    assert [p[0] for p in posts] == ["123"] * 4
    for (_, payload, files), step in zip(snapshots, (0, 4, 8), strict=True):
        assert ("is born" in payload["content"]) if step == 0 else (
            f"step {step} of 8" in payload["content"])
        assert [f.filename for f in files] == [f"sheet_{step:07d}.png"]
        assert Image.open(io.BytesIO(files[0].data)).format == "PNG"
    _, payload, files = final
    assert "finished growing up at step 8" in payload["content"]
    assert [f.filename for f in files] == ["growing_up.gif", "loss_curves.png"]
    assert payload["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize("failure", ["500", "unreachable"])
async def test_a_failing_webhook_does_not_stop_training(toy, tmp_path, failure, caplog):
    async with FakeDiscord() as fake:
        fake.webhook_status = 500
        url = (f"{fake.base_url}/api/webhooks/1/secret-token" if failure == "500"
               else f"http://127.0.0.1:{_closed_port()}/api/webhooks/1/secret-token")
        cfg = _cfg(toy, tmp_path / "run")
        result, news = await asyncio.to_thread(_train_with_news, cfg, url)
    assert result.finished and result.growing_up is not None
    assert news.posted == 0 and news.failed == 4
    assert "secret-token" not in caplog.text  # the token never reaches a log


def test_a_raising_callback_does_not_stop_training(toy, tmp_path):
    def boom(*args):
        raise RuntimeError("no news today")

    result = train(_cfg(toy, tmp_path / "run"), on_snapshot=boom, on_finish=boom)
    assert result.finished


async def test_cycle_result_names_promotions_and_the_new_board(tmp_path):
    from db import Database
    from tests.web.seed import seed

    report = CycleReport(votes=40, pairs=120, pages=8, judge={"heldout_accuracy": 0.82},
                         members=[
        MemberOutcome("openmoji", 2, 3, True, "judge prefers it on 78% of 9 held-out pages",
                      gate={"judge_win_rate": 0.78, "pages": 9}),
        MemberOutcome("artworks", 1, 2, False, "evaluation regressed: CIEDE2000 9.1 -> 10.8"),
    ])
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", store_dir=tmp_path / "s")
    await db.upgrade()
    await seed(db, pages_per_guild=2)
    try:
        async with FakeDiscord() as fake:
            url = f"{fake.base_url}/api/webhooks/9/token"
            assert await post_cycle(url, report, db, emojis={"openmoji": "😀"})
            (_, payload, files), = fake.webhook_posts
    finally:
        await db.close()
    text = payload["content"]
    assert "40 votes" in text and "82%" in text
    assert "**openmoji** v2 → v3 promoted: preferred over v2 on 78% of 9" in text
    assert "**artworks** stays v1: evaluation regressed" in text
    board = text.split("The board now")[1]
    assert "1. 😀 openmoji" in board and "artworks" in board
    assert [f.filename for f in files] == ["leaderboard.png"]


def test_post_is_refused_quietly_and_rate_limits_wait_once(monkeypatch):
    import urllib.error

    calls = []

    def fake_urlopen(request, timeout):
        calls.append(timeout)
        raise urllib.error.HTTPError(request.full_url, 429, "slow down", {},
                                     io.BytesIO(b'{"retry_after": 0.01}'))

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    assert post("http://discord.invalid/api/webhooks/1/t", "hi", timeout=2) is False
    assert calls == [2, 2]  # one retry after the short wait, then give up


def test_webhook_url_flag_wins_over_the_setting():
    env = {"COLORBOT_TRAINING_WEBHOOK": "https://example/api/webhooks/1/a"}
    assert webhook_url(None, env) == env["COLORBOT_TRAINING_WEBHOOK"]
    assert webhook_url("https://example/api/webhooks/2/b", env).endswith("/2/b")
    assert webhook_url(None, {}) == ""


async def test_colorbot_train_posts_to_the_webhook_setting(toy, tmp_path, monkeypatch):
    from colorbot.cli import main

    async with FakeDiscord() as fake:
        monkeypatch.setenv("COLORBOT_TRAINING_WEBHOOK", f"{fake.base_url}/api/webhooks/7/t")
        argv = ["train", "--dataset", str(toy), "--out", str(tmp_path / "cli-run"),
                "--steps", "4", "--batch-size", "4", "--crop", "32", "--load-size", "48",
                "--base-channels", "8", "--depth", "2", "--ab-bins", "7",
                "--snapshot-every", "4", "--threads", "1", "--no-progress"]
        assert await asyncio.to_thread(main, argv) == 0
        posts = fake.webhook_posts
    assert len(posts) == 3  # born, step 4, the final card
    assert "cli-run" in posts[-1][1]["content"] and "step 4" in posts[-1][1]["content"]


async def test_a_retrain_cycle_posts_its_result(tmp_path, one_thread):  # noqa: F811
    from db import Database
    from tests.training.votes_helpers import fake_colorize, tiny_family
    from training.retrain import CycleConfig, FinetuneConfig, run_cycle
    from training.simulate import HiddenTaste, pages_for_simulation, simulate_votes

    root = tmp_path / "family"
    family = tiny_family(root, names=("sunny", "icy"))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", store_dir=tmp_path / "s")
    await db.upgrade()
    try:
        def colorize(images):
            return [{m: c[m] for m in ("sunny", "icy")} for c in fake_colorize(images)]

        await simulate_votes(db, family, pages_for_simulation(12, None, seed=5, size=48),
                             taste=HiddenTaste(temperature=0.3), n_votes=24, n_voters=4,
                             colorize=colorize)
        cfg = CycleConfig(finetune=FinetuneConfig(size=48, steps=2, batch=4), judge_size=32,
                          judge_steps=10, heldout_share=0.25, gate_pages=8)
        async with FakeDiscord() as fake:
            url = f"{fake.base_url}/api/webhooks/5/token"
            report = await run_cycle(db, root, cfg,
                                     on_finish=lambda r: post_cycle(url, r, db))
            posts = fake.webhook_posts
    finally:
        await db.close()
    (_, payload, files), = posts
    text = payload["content"]
    assert f"learned from {report.votes} votes" in text
    for outcome in report.members:
        said = (f"**{outcome.member}** v1 → v2 promoted" if outcome.promoted
                else f"**{outcome.member}** stays v1: {outcome.reason}")
        assert said in text
    assert "The board now" in text and [f.filename for f in files] == ["leaderboard.png"]
