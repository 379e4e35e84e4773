"""`colorbot run` without a token, `.env` loading, and keeping the token out of sight."""

from __future__ import annotations

import os

from bot.cli import load_dotenv, run_bot
from tests.bot.helpers import TOKEN


def test_run_without_token_explains_and_fails(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert run_bot(None) != 0
    assert "DISCORD_TOKEN" in capsys.readouterr().err


def test_settings_repr_hides_the_token():
    from colorbot.settings import Settings

    settings = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert settings.discord_token == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)


def test_training_settings_and_their_defaults(tmp_path):
    from pathlib import Path

    from colorbot.settings import Settings

    hook = "https://discord.com/api/webhooks/1/secret-part"
    settings = Settings.from_env({"COLORBOT_DATA": str(tmp_path), "COLORBOT_TRAINING_WEBHOOK": hook,
                                  "COLORBOT_JUDGE_MEMORY": " none "})
    assert settings.datasets_root == tmp_path / "datasets"
    assert settings.cache_dir == tmp_path / "cache"
    assert settings.judge_memory == "none"
    assert settings.training_webhook == hook and "secret-part" not in repr(settings)
    given = Settings.from_env({"COLORBOT_DATASETS": str(tmp_path / "sets")})
    assert given.datasets_root == tmp_path / "sets"
    assert given.data_dir == Path("data") and given.datasets_root == Path(tmp_path / "sets")
    assert Settings.from_env({}).cache_dir == Path("~/.cache/colorbot").expanduser()


def test_redact_filter_masks_the_token_in_messages_and_tracebacks(caplog):
    import logging

    from bot.logs import MASK, RedactToken

    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactToken(TOKEN))
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("token is %s", TOKEN)
        try:
            raise RuntimeError(f"bad {TOKEN}")
        except RuntimeError:
            logger.exception("failed")
    assert TOKEN not in caplog.text
    assert MASK in caplog.text


def test_dotenv_fills_only_unset_variables(tmp_path, monkeypatch):

    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nCOLORBOT_T1='from file'\nexport COLORBOT_T2=x\n"
                        "COLORBOT_T3=\n\nnot a line\n", encoding="utf-8")
    monkeypatch.setenv("COLORBOT_T2", "from environment")
    monkeypatch.delenv("COLORBOT_T1", raising=False)
    monkeypatch.delenv("COLORBOT_T3", raising=False)
    load_dotenv(env_file)
    assert os.environ["COLORBOT_T1"] == "from file"
    assert os.environ["COLORBOT_T2"] == "from environment"
    assert os.environ["COLORBOT_T3"] == ""
    for key in ("COLORBOT_T1", "COLORBOT_T3"):
        monkeypatch.delenv(key)
