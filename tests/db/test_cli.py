"""`colorbot votes export`: the live votes as JSON lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from colorbot.cli import main
from colorbot.settings import Settings
from db import Database
from tests.db.helpers import posted_page


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLORBOT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


async def test_votes_export_writes_the_live_votes(data_dir: Path, tmp_path: Path, capsys) -> None:
    async with Database.from_settings(Settings(data_dir=data_dir)) as db:
        await db.upgrade()
        await posted_page(db, message_id=10, reply_id=11, guild_id=1, channel_id=2)
        await posted_page(db, message_id=20, reply_id=21, guild_id=5, channel_id=6)
        await db.cast_vote(11, "😀", 100)
        await db.cast_vote(11, "🎨", 100)  # moved
        await db.cast_vote(21, "📎", 200)
        await db.cast_vote(21, "🌈", 300)
        await db.remove_vote(21, "🌈", 300)  # removed: not live

    out = tmp_path / "exports" / "votes.jsonl"
    assert await asyncio.to_thread(main, ["votes", "export", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["user_id"], r["member"], r["emoji"]) for r in rows] == [
        ("100", "artworks", "🎨"),
        ("200", "clipart", "📎"),
    ]
    first = rows[0]
    assert set(first) >= {
        "guild_id",
        "channel_id",
        "message_id",
        "page_sha256",
        "user_id",
        "member",
        "member_version",
        "voted_at",
    }
    assert (first["guild_id"], first["channel_id"], first["message_id"]) == ("1", "2", "11")
    assert first["member_version"] == 1

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["votes", "export", "--guild", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["guild_id"] for line in lines] == ["5"]


async def test_votes_export_refuses_an_unmigrated_database(data_dir: Path, capsys) -> None:
    assert await asyncio.to_thread(main, ["votes", "export"]) == 1
    assert "run `colorbot db upgrade`" in capsys.readouterr().err


def test_upgrade_of_an_unreachable_database_says_so(monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/test")
    assert main(["db", "upgrade"]) == 1
    assert "colorbot:" in capsys.readouterr().err
