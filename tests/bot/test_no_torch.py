"""The bot process stays small: importing it (and drawing a contact sheet) loads no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import bot.app, bot.cli, bot.coloring, bot.files, bot.sheet, bot.worker_client
from bot.app import COGS
import importlib
for name in COGS:
    importlib.import_module(name)
from tests.bot.helpers import page_png
from bot.sheet import contact_sheet_png
sheet = contact_sheet_png(page_png(), [("openmoji", "x", page_png(seed=1))])
assert sheet[:4] == b"\\x89PNG"
print("torch" in sys.modules)
"""


def test_importing_the_bot_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
