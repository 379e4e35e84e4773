"""The web process stays small: building the app, reading the family and drawing the
board load neither torch nor discord."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from colorbot.settings import Settings
from web.app import create_app
from web.family import FamilyPages
import web.cli
create_app(Settings())
members = FamilyPages().members()  # the bundled family, cards rendered
assert members and all(m.card for m in members), members
from training.leaderboard import chart_png, leaderboard
print(sorted(m for m in ("torch", "discord") if m in sys.modules))
"""


def test_the_web_page_imports_neither_torch_nor_discord():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
