"""Settings from the environment, in one typed object.

Every process (bot, worker, trainer, CLI) reads the same variables; `.env.example`
documents them. The Discord token is kept out of `repr()` so it never reaches a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_dotenv(path: Path = Path(".env")) -> None:
    """KEY=VALUE lines of `.env` (as docker compose reads them) into the environment;
    variables already set win. Every `colorbot` command reads it, so `DATABASE_URL` in
    `.env` means the same database for `run`, `db upgrade`, `leaderboard` ..."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip().removeprefix("export ").strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def default_data_dir() -> Path:
    return Path(os.environ.get("COLORBOT_DATA", "data")).expanduser()


@dataclass(frozen=True)
class Settings:
    # Discord bot token; never logged (repr=False).
    discord_token: str = field(default="", repr=False)
    # SQLAlchemy async URL; empty means a SQLite file in the data directory.
    database_url: str = ""
    # Worker base URLs; empty means the in-process worker.
    worker_urls: tuple[str, ...] = ()
    # Bearer token the workers ask for on /v1/colorize (COLORBOT_WORKER_TOKEN); never logged.
    worker_token: str = field(default="", repr=False)
    # Bearer token for the workers' POST /v1/admin/reload (COLORBOT_WORKER_ADMIN_TOKEN):
    # promotions ask the workers to reload with it; never logged.
    worker_admin_token: str = field(default="", repr=False)
    # A page's colored size at most, in pixels; bigger pages are scaled down to it
    # (the in-process worker's memory budget; the worker services have their own).
    max_page_pixels: int = 4_000_000
    # Where pages, colorings and the SQLite file live.
    data_dir: Path = field(default_factory=default_data_dir)
    # Family manifest to serve; empty means the bundled family.
    family_path: str = ""
    # Channel names whose posted images are colored without `/channel enable`.
    default_channels: tuple[str, ...] = ("coloring",)
    # Per-user rate limit: at most `rate_limit_pages` pages every `rate_limit_seconds`.
    rate_limit_pages: int = 5
    rate_limit_seconds: float = 60.0
    # Discord REST API base and gateway URLs (a REST proxy in production, a fake in tests).
    discord_api_base: str = ""
    discord_gateway_url: str = ""
    # Largest upload the bot accepts, in bytes.
    max_upload_bytes: int = 20 * 1024 * 1024
    # Dataset folders that `colorbot evaluate` and the retrain gate look in
    # (COLORBOT_DATASETS); empty means <data_dir>/datasets.
    datasets_dir: str = ""
    # Downloaded packages the dataset builders reuse: <data_dir>/cache when
    # COLORBOT_DATA is set, else ~/.cache/colorbot.
    cache_dir: Path = field(default_factory=lambda: Path("~/.cache/colorbot").expanduser())
    # Discord webhook for training news (COLORBOT_TRAINING_WEBHOOK); it holds a token,
    # so it is never logged.
    training_webhook: str = field(default="", repr=False)
    # Memory files (comma-joined) the retraining judge recalls from
    # (COLORBOT_JUDGE_MEMORY): empty = the bundled shared memory, "none" = no memory.
    judge_memory: str = ""

    @property
    def datasets_root(self) -> Path:
        if self.datasets_dir:
            return Path(self.datasets_dir).expanduser()
        return self.data_dir / "datasets"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'colorbot.sqlite3').resolve()}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("COLORBOT_DATA", "data")).expanduser()
        return cls(
            discord_token=env.get("DISCORD_TOKEN", ""),
            database_url=env.get("DATABASE_URL", ""),
            worker_urls=_split(env.get("WORKER_URLS", "")),
            worker_token=env.get("COLORBOT_WORKER_TOKEN", ""),
            worker_admin_token=env.get("COLORBOT_WORKER_ADMIN_TOKEN", ""),
            max_page_pixels=int(env.get("COLORBOT_MAX_PAGE_PIXELS", "") or 4_000_000),
            data_dir=data_dir,
            family_path=env.get("COLORBOT_FAMILY", ""),
            default_channels=_split(env.get("COLORBOT_CHANNELS", "coloring")),
            rate_limit_pages=int(env.get("COLORBOT_RATE_LIMIT_PAGES", "5")),
            rate_limit_seconds=float(env.get("COLORBOT_RATE_LIMIT_SECONDS", "60")),
            discord_api_base=env.get("DISCORD_API_BASE", ""),
            discord_gateway_url=env.get("DISCORD_GATEWAY_URL", ""),
            max_upload_bytes=int(env.get("COLORBOT_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024))),
            datasets_dir=env.get("COLORBOT_DATASETS", ""),
            cache_dir=(data_dir / "cache" if env.get("COLORBOT_DATA")
                       else Path("~/.cache/colorbot").expanduser()),
            training_webhook=env.get("COLORBOT_TRAINING_WEBHOOK", ""),
            judge_memory=env.get("COLORBOT_JUDGE_MEMORY", "").strip(),
        )
