"""`colorbot export` and the placeholder maker never write into the bundled family
(models/family/) unless told so with --into-bundled."""

from __future__ import annotations

from pathlib import Path

import pytest

from colorbot.cli import main
from models.family import BUNDLED_FAMILY_DIR


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def bundled_unchanged():
    before = _snapshot(BUNDLED_FAMILY_DIR)
    yield
    assert _snapshot(BUNDLED_FAMILY_DIR) == before


EXPORT = ["export", "RUN", "--name", "mine", "--emoji", "🦊", "--description", "a fox"]


def test_export_without_a_family_says_where_and_writes_nothing(
    monkeypatch, capsys, bundled_unchanged
):
    monkeypatch.delenv("COLORBOT_FAMILY", raising=False)
    assert main(EXPORT) == 2
    err = capsys.readouterr().err
    assert "--family DIR" in err and "--into-bundled" in err


def test_export_into_the_bundled_folder_is_refused_without_the_flag(
    monkeypatch, capsys, tmp_path, bundled_unchanged
):
    monkeypatch.delenv("COLORBOT_FAMILY", raising=False)
    run = tmp_path / "run"  # never read: the refusal comes first
    assert main([*EXPORT[:1], str(run), *EXPORT[2:], "--family", str(BUNDLED_FAMILY_DIR)]) == 2
    assert "bundled family" in capsys.readouterr().err


def test_export_library_refuses_the_bundled_family(tmp_path, bundled_unchanged):
    from training.export import BundledFamilyRefused, export_member

    with pytest.raises(BundledFamilyRefused):
        export_member(tmp_path / "run", BUNDLED_FAMILY_DIR, "mine", "🦊", "a fox", 128)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--into-bundled"], None, (BUNDLED_FAMILY_DIR, True)),
        ([], "FAM", ("FAM", False)),
        ([], "FAM/manifest.json", ("FAM", False)),
        (["--family", "OTHER"], "FAM", ("OTHER", False)),
    ],
    ids=["flag", "env", "env-manifest", "family-wins"],
)
def test_export_chooses_the_family(monkeypatch, tmp_path, args, env, expected):
    import training.export

    calls = []

    def fake_export(run, family, *rest, into_bundled=False, **kwargs):
        calls.append((Path(family), into_bundled))
        raise training.export.BundledFamilyRefused("stop here")

    monkeypatch.setattr(training.export, "export_member", fake_export)
    if env is None:
        monkeypatch.delenv("COLORBOT_FAMILY", raising=False)
    else:
        monkeypatch.setenv("COLORBOT_FAMILY", str(tmp_path / env))
    args = [a if a != "OTHER" else str(tmp_path / "OTHER") for a in args]
    main([*EXPORT, *args])
    family, flag = expected
    family = family if isinstance(family, Path) else tmp_path / family
    assert calls == [(family, flag)]


def test_placeholder_maker_needs_out_or_the_flag(capsys, bundled_unchanged):
    from models.make_placeholder_family import main as make_main

    with pytest.raises(SystemExit):
        make_main(["--steps", "0"])
    assert "--into-bundled" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_main(["--steps", "0", "--out", str(BUNDLED_FAMILY_DIR)])
    assert "bundled family" in capsys.readouterr().err


def test_placeholder_maker_writes_where_told(tmp_path, bundled_unchanged):
    from models.make_placeholder_family import main as make_main

    assert make_main(["--steps", "0", "--out", str(tmp_path / "fam")]) == 0
    assert (tmp_path / "fam" / "manifest.json").exists()
