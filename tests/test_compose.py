"""docker-compose.yml: the bot waits for a healthy worker, the token reaches the bot
only, the default profile needs no GPU, and docker-compose validates every variant."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


def _service(name: str, text: str = COMPOSE) -> str:
    """The lines of one service block (two-space indented key up to the next one)."""
    match = re.search(rf"^  {name}:\n(.*?)(?=^  [a-z-]+:\n|^[a-z]|\Z)", text,
                      flags=re.MULTILINE | re.DOTALL)
    assert match, name
    return match.group(1)


def test_the_bot_waits_for_a_healthy_worker():
    bot = _service("bot")
    assert re.search(r"depends_on:.*worker:\n\s+condition: service_healthy", bot, re.DOTALL)
    worker = _service("worker")
    assert "healthcheck:" in worker and "profiles:" not in worker  # always there


def test_the_discord_token_goes_to_the_bot_only():
    assert "env_file" not in COMPOSE
    holders = [name for name in re.findall(r"^  ([a-z-]+):\n", COMPOSE, re.MULTILINE)
               if "DISCORD_TOKEN" in _service(name)]
    assert holders == ["bot"]


def test_the_default_runs_without_a_gpu():
    env = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=cpu$", env, re.MULTILINE)
    assert not re.search(r"^COMPOSE_FILE=", env, re.MULTILINE)  # the GPU override is opt-in
    assert "nvidia" not in COMPOSE
    assert "nvidia" in (ROOT / "docker-compose.gpu.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "extra",
    [{}, {"COMPOSE_PROFILES": "gpu,train,retrain"},
     {"COMPOSE_FILE": "docker-compose.yml:docker-compose.gpu.yml",
      "COMPOSE_PROFILES": "train,retrain"}],
    ids=["default", "all-profiles", "gpu-override"],
)
def test_docker_compose_config_validates(tmp_path, extra):
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    for name in ("docker-compose.yml", "docker-compose.gpu.yml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copy2(ROOT / ".env.example", tmp_path / ".env")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    result = subprocess.run([tool, "config", "-q"], cwd=tmp_path, env={**env, **extra},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
