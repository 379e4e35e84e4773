"""`colorbot` errors a person can read: one line on stderr and a non-zero exit, the
traceback only with -v; `.env` read by every command; `--version`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from colorbot.cli import describe_failure, main

MISSING_PG = "postgresql://postgres:hunter22@127.0.0.1:5432/colorbot_no_such_database"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and an environment the .env loader may write into."""
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for name in ("DATABASE_URL", "COLORBOT_DATA", "DISCORD_TOKEN"):
        os.environ.pop(name, None)
    os.environ["COLORBOT_DATA"] = str(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_db_upgrade_reads_database_url_from_dotenv(clean_env: Path, capsys) -> None:
    target = clean_env / "from-dotenv.sqlite3"
    (clean_env / ".env").write_text(f"# compose file\nDATABASE_URL=sqlite:///{target}\n")
    assert main(["db", "upgrade"]) == 0
    assert "from-dotenv.sqlite3" in capsys.readouterr().out
    assert target.exists()
    assert not (clean_env / "data" / "colorbot.sqlite3").exists()


def test_db_upgrade_on_a_missing_database_is_one_line(capsys) -> None:
    os.environ["DATABASE_URL"] = MISSING_PG
    assert main(["db", "upgrade"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorbot")
    assert "Traceback" not in captured.err and "hunter22" not in captured.err


def test_verbose_keeps_the_traceback(capsys) -> None:
    (Path.cwd() / "a-file").write_text("not a folder")
    os.environ["DATABASE_URL"] = f"sqlite:///{Path.cwd() / 'db.sqlite3'}"
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    out = Path.cwd() / "a-file" / "votes.jsonl"  # --out under a file
    assert main(["votes", "export", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "a-file" in err
    assert main(["-v", "votes", "export", "--out", str(out)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("colorbot ")


def test_describe_failure_is_one_line_without_secrets(monkeypatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "abcd.efgh.secret-token")
    monkeypatch.setenv("COLORBOT_TRAINING_WEBHOOK", "https://example/api/webhooks/1/hook-secret")
    error = RuntimeError("login failed with abcd.efgh.secret-token\n  File ...\n[SQL: ...]")
    assert describe_failure(error) == "login failed with ***"
    posted = RuntimeError("posting to https://example/api/webhooks/1/hook-secret failed")
    assert "hook-secret" not in describe_failure(posted)
    assert describe_failure(KeyError("x")) == "KeyError: 'x'"
    assert describe_failure(RuntimeError()) == "RuntimeError"
