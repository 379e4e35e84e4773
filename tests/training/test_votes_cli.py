"""`colorbot leaderboard / promote / rollback` through the registered subcommands."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from db import Database
from models.family import Family
from tests.training.votes_helpers import fake_colorize, tiny_family
from training.promotion import save_candidate
from training.simulate import HiddenTaste, pages_for_simulation, simulate_votes
from training.votes_cli import register_vote_commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorbot")
    register_vote_commands(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.handler(args)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORBOT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COLORBOT_FAMILY", str(tmp_path / "family"))
    monkeypatch.delenv("WORKER_URLS", raising=False)
    family = tiny_family(tmp_path / "family")

    async def vote() -> None:
        db = Database(
            f"sqlite+aiosqlite:///{tmp_path / 'data' / 'colorbot.sqlite3'}",
            store_dir=tmp_path / "data" / "store",
        )
        await db.upgrade()
        pages = pages_for_simulation(10, None, seed=1, size=48)
        await simulate_votes(
            db,
            family,
            pages,
            taste=HiddenTaste(temperature=0.3),
            n_votes=40,
            n_voters=4,
            guilds=(7,),
            colorize=fake_colorize,
        )
        await db.close()

    asyncio.run(vote())
    return tmp_path


def test_all_commands_are_registered():
    parser = _parser()
    for argv in (
        ["leaderboard"],
        ["retrain"],
        ["promote", "x", "2"],
        ["rollback", "x"],
        ["simulate-votes"],
    ):
        assert callable(parser.parse_args(argv).handler)


def test_leaderboard_json_and_chart(data, capsys):
    assert _run(["leaderboard", "--json", "--rounds", "10", "--chart", str(data / "c.png")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["rank"] == 1 and {"member", "rating", "lower", "upper"} <= set(rows[0])
    assert (data / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _run(["leaderboard", "--guild", "7", "--rounds", "5"]) == 0
    out = capsys.readouterr().out
    assert "share %" in out and "(favourite share: the share of votes" in out
    assert _run(["leaderboard", "--guild", "999", "--rounds", "5"]) == 0
    assert "no votes yet" in capsys.readouterr().out


def test_promote_and_rollback_commands(data, capsys):
    family = Family.load(data / "family")
    save_candidate(family, "sunny", family.network("sunny"), 2, {})
    assert _run(["promote", "sunny", "2"]) == 0
    assert Family.load(data / "family").get("sunny").version == 2
    assert _run(["rollback", "sunny"]) == 0
    assert Family.load(data / "family").get("sunny").version == 1
    assert "rolled back to v1" in capsys.readouterr().out


class _Stop(Exception):
    pass


def test_scheduled_retrain_survives_a_failed_cycle(data, monkeypatch, capsys):
    import training.retrain

    calls = []

    async def failing_cycle(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("database went away")

    def sleep(seconds):
        assert seconds == 5 * 60
        raise _Stop  # end the schedule after the first wait

    monkeypatch.setattr(training.retrain, "run_cycle", failing_cycle)
    monkeypatch.setattr("time.sleep", sleep)
    with pytest.raises(_Stop):
        _run(["retrain", "--every", "5"])
    assert calls == [1]
    err = capsys.readouterr().err
    assert "database went away" in err and "next try in 5 minutes" in err
    # Run once (no schedule), the failure is the command's failure.
    with pytest.raises(RuntimeError, match="database went away"):
        _run(["retrain"])


def test_leaderboard_by_the_judge(data, capsys):
    from training.judge import Judge, JudgeConfig, save_judge

    assert _run(["leaderboard", "--judge"]) == 1
    assert "colorbot retrain" in capsys.readouterr().err
    torch_judge = Judge(JudgeConfig(size=16, base_channels=4, levels=2, hidden=8))
    save_judge(torch_judge, data / "data" / "judge")
    assert _run(["leaderboard", "--judge", "--json", "--rounds", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["member"] for r in rows} == {"sunny", "rosy", "leafy", "icy"}
    # 10 voted pages, four colorings each: six judged pairs a page, two players a pair.
    assert sum(r["games"] for r in rows) == 2 * 6 * 10
    assert _run(["leaderboard", "--judge", "--chart", str(data / "j.png"), "--rounds", "5"]) == 0
    assert "judge's head-to-head" in capsys.readouterr().out
    assert (data / "j.png").read_bytes()[:4] == b"\x89PNG"
