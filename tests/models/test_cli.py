"""`colorbot colorize` and `colorbot family` end to end, on files in tmp."""

from __future__ import annotations

import json

from PIL import Image

from colorbot.cli import main
from models.family import Family

from .conftest import draw_lineart, draw_photo


def test_colorize_writes_every_member_and_a_sheet_and_survives_a_bad_file(tmp_path, capsys):
    draw_lineart((160, 120)).save(tmp_path / "cat.png")
    draw_photo((90, 140)).save(tmp_path / "dog.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is no image")
    out = tmp_path / "out"
    rc = main(["colorize", str(tmp_path / "cat.png"), str(tmp_path / "broken.png"),
               str(tmp_path / "dog.jpg"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "broken.png" in err and ("damaged" in err or "can't read" in err)
    assert "Traceback" not in err
    for stem, size in (("cat", (160, 120)), ("dog", (90, 140))):
        files = sorted(p.name for p in (out / stem).iterdir())
        assert files == sorted([f"{name}.png" for name in Family.load().names] + ["sheet.png"])
        assert Image.open(out / stem / "clipart.png").size == size
    assert not (out / "broken").exists()


def test_colorize_options_and_member_choice(tmp_path):
    draw_lineart((100, 80)).save(tmp_path / "p.png")
    rc = main(["colorize", str(tmp_path / "p.png"), "--member", "fluent", "--member", "clipart",
               "--strength", "2", "--no-fill", "--kind", "lineart", "--out", str(tmp_path / "o")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "o" / "p").iterdir()) == [
        "clipart.png", "fluent.png", "sheet.png"]


def test_colorize_unknown_member(tmp_path, capsys):
    draw_lineart((100, 80)).save(tmp_path / "p.png")
    rc = main(["colorize", str(tmp_path / "p.png"), "--member", "grandpa", "--out", str(tmp_path)])
    assert rc == 2 and "no family member named 'grandpa'" in capsys.readouterr().err


def test_family_json(capsys):
    assert main(["family", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["emoji"]) for r in rows] == [
        ("openmoji", "😀"), ("fluent", "🌈"), ("clipart", "📎"), ("artworks", "🎨"),
        ("cartoon", "🧸")]
    for r in rows:
        assert r["parameters"] > 10_000 and r["version"] >= 1
        assert r["architecture"] in ("unet", "pix2pix")


def test_family_table(capsys):
    assert main(["family"]) == 0
    out = capsys.readouterr().out
    assert "openmoji" in out and "🎨" in out and "params" in out
