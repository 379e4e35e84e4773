"""`colorbot colorize`: a clean folder per page on re-runs, and a progress bar only on a TTY."""

from __future__ import annotations

import io
import sys

import pytest

from colorbot.cli import main

from .conftest import draw_lineart


def test_a_second_run_with_fewer_members_leaves_no_stale_colorings(tmp_path):
    draw_lineart((96, 72)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "p.png"), "--member", "fluent",
                 "--member", "clipart", "--out", str(out)]) == 0
    (out / "p" / "notes.txt").write_text("mine")  # not colorize's: must survive
    assert main(["colorize", str(tmp_path / "p.png"), "--member", "openmoji",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "p").iterdir()) == [
        "notes.txt", "openmoji.png", "sheet.png"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_progress_bar_with_eta_only_on_a_terminal(tmp_path, monkeypatch, tty):
    for name in ("a", "b"):
        draw_lineart((64, 48)).save(tmp_path / f"{name}.png")
    stream = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["colorize", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                 "--member", "fluent", "--batch", "1", "--out", str(tmp_path / "out")]) == 0
    err = stream.getvalue()
    assert "colored 2 of 2 page(s)" in err
    if tty:
        assert "2/2" in err and "page" in err
        assert "<" in err  # tqdm's [elapsed<remaining] ETA
    else:
        assert "2/2" not in err and "\r" not in err


def test_seed_reaches_the_colorize_options(tmp_path, monkeypatch):
    import models.pipeline

    seen = []

    class Spy(models.pipeline.Colorizer):
        def prepare(self, image, options):
            seen.append(options.seed)
            return super().prepare(image, options)

    monkeypatch.setattr(models.pipeline, "Colorizer", Spy)
    draw_lineart((64, 48)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "p.png"), "--member", "fluent", "--seed", "42",
                 "--out", str(out)]) == 0
    assert seen == [42]
    assert (out / "p" / "fluent.png").is_file()


def test_no_seed_is_none():
    from colorbot.cli import build_parser

    args = build_parser().parse_args(["colorize", "p.png", "--out", "o"])
    assert args.seed is None
    args = build_parser().parse_args(["colorize", "p.png", "--out", "o", "--seed", "0"])
    assert args.seed == 0


@pytest.mark.parametrize("seed", ["-1", "2147483648", "1.5", "x", ""])
def test_bad_seed_exits_2_with_the_rule(seed, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["colorize", "p.png", "--out", "o", "--seed", seed])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--seed" in err and ("0 to 2147483647" in err or "give a seed" in err)


def test_seed_help_says_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["colorize", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--seed N" in help_text and "(default: none, each member's most likely" in help_text
