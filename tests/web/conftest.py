"""Fixtures: the web app on a seeded database (SQLite, and PostgreSQL when it can be
reached, as tests/db does) and a tiny family folder."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from colorbot.settings import Settings
from db import Database
from tests.db.conftest import _postgres_backend
from tests.web.seed import MEMBERS, seed
from web.app import create_app

CARD = """# 😀 {name} (version 2)

Grew up on {name} pictures.

## Data

- Collection: the **{name}** set, `npm {name}`
- License: CC0 <script>alert(1)</script>

## Growing up

![growing up]({name}_growing_up.gif)
![elsewhere](https://example.com/x.png)

```
{{"config": "<b>not bold</b>"}}
```
"""


@pytest.fixture
def family_dir(tmp_path: Path) -> Path:
    root = tmp_path / "family"
    root.mkdir()
    members = []
    for name, emoji in MEMBERS:
        (root / f"{name}.md").write_text(CARD.format(name=name), encoding="utf-8")
        frames = [Image.new("RGB", (64, 16), c) for c in ("red", "blue")]
        frames[0].save(root / f"{name}_growing_up.gif", save_all=True,
                       append_images=frames[1:], duration=300)
        (root / f"{name}.safetensors").write_bytes(b"weights")
        members.append({"name": name, "emoji": emoji, "description": f"{name} colors.",
                        "architecture": "unet", "config": {}, "weights": f"{name}.safetensors",
                        "version": 2, "trained_on": f"the {name} collection",
                        "license": "CC0", "card": f"{name}.md",
                        "growing_up": f"{name}_growing_up.gif"})
    (root / "manifest.json").write_text(json.dumps({"members": members}), encoding="utf-8")
    return root


@pytest_asyncio.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path):
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            db = Database(f"sqlite+aiosqlite:///{tmp_path / 'web.sqlite3'}",
                          store_dir=tmp_path / "store")
        else:
            backend = await stack.enter_async_context(_postgres_backend())
            db = backend.database(store_dir=tmp_path / "store")
        await db.upgrade()
        yield db
        await db.close()


@pytest_asyncio.fixture
async def seeded(database: Database):
    return await seed(database)


@pytest_asyncio.fixture
async def client(aiohttp_client, database: Database, family_dir: Path, tmp_path: Path):
    settings = Settings(data_dir=tmp_path, family_path=str(family_dir))
    app = create_app(settings, db=database, board_ttl_s=0, board_rounds=50)
    return await aiohttp_client(app)
