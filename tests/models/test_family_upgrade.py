"""Upgrades bring new bundled members into a served copy of the family (compose's
/data/family) without touching promoted or retrained members."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import models.family
import models.registry
from models.family import BUNDLED_STAMP_NAME, MANIFEST_NAME, Family, copy_bundled_family


@pytest.fixture
def bundled(tmp_path, monkeypatch) -> Path:
    """A private copy of the bundled family that the test can 'upgrade'."""
    folder = tmp_path / "package" / "family"
    shutil.copytree(models.family.BUNDLED_FAMILY_DIR, folder)
    monkeypatch.setattr(models.family, "BUNDLED_FAMILY_DIR", folder)
    monkeypatch.setattr(models.registry, "BUNDLED_FAMILY_DIR", folder)  # the copy's home
    return folder


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))


def _save(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))


def _entry(manifest: dict, name: str) -> dict:
    return next(m for m in manifest["members"] if m["name"] == name)


def _release_a_new_bundled_family(bundled: Path) -> None:
    """The next image: a new member, and openmoji retrained (new weights)."""
    manifest = _manifest(bundled)
    newbie = dict(_entry(manifest, "openmoji"), name="newbie", emoji="🦊",
                  weights="newbie.safetensors", card="", growing_up="")
    shutil.copy2(bundled / "openmoji.safetensors", bundled / "newbie.safetensors")
    manifest["members"].append(newbie)
    openmoji = _entry(manifest, "openmoji")
    openmoji["version"] += 1
    # Stands in for new weights: a different recorded sha (none: not checked on load).
    openmoji["weights_sha256"] = ""
    openmoji["description"] = "the new, better openmoji"
    _save(bundled, manifest)


def test_a_fresh_copy_is_stamped_and_left_alone_next_time(bundled, tmp_path):
    root = tmp_path / "data" / "family"
    assert copy_bundled_family(root) is True
    stamp = json.loads((root / BUNDLED_STAMP_NAME).read_text())
    assert set(stamp["members"]) == {"openmoji", "fluent", "clipart", "artworks", "cartoon"}
    before = (root / MANIFEST_NAME).read_bytes()
    assert copy_bundled_family(root) is False
    assert (root / MANIFEST_NAME).read_bytes() == before


def test_an_upgrade_adds_new_members_and_keeps_promoted_ones(bundled, tmp_path):
    root = tmp_path / "data" / "family"
    copy_bundled_family(root)
    # The deployment retrained: clipart v7 promoted (its own weights), fluent has an
    # unpromoted candidate under versions/.
    served = _manifest(root)
    clipart = _entry(served, "clipart")
    clipart.update(version=7, weights="versions/clipart.v7.safetensors",
                   weights_sha256="")
    (root / "versions").mkdir()
    shutil.copy2(root / "clipart.safetensors", root / "versions" / "clipart.v7.safetensors")
    (root / "versions" / "fluent.v3.json").write_text("{}")
    _save(root, served)
    _release_a_new_bundled_family(bundled)
    # fluent's bundled entry changes too, but it has versions of its own: kept.
    manifest = _manifest(bundled)
    _entry(manifest, "fluent")["weights_sha256"] = ""
    _entry(manifest, "fluent")["description"] = "bundled fluent, newer"
    _save(bundled, manifest)

    assert copy_bundled_family(root) is False  # not a fresh copy
    after = _manifest(root)
    names = [m["name"] for m in after["members"]]
    assert names == ["openmoji", "fluent", "clipart", "artworks", "cartoon", "newbie"]
    assert (root / "newbie.safetensors").is_file()
    assert _entry(after, "clipart")["version"] == 7  # promoted: untouched
    assert _entry(after, "fluent")["description"] != "bundled fluent, newer"
    assert _entry(after, "openmoji")["description"] == "the new, better openmoji"
    stamp = json.loads((root / BUNDLED_STAMP_NAME).read_text())
    assert stamp["bundled_manifest_sha256"] == models.family.file_sha256(bundled / MANIFEST_NAME)
    family = Family.load(root)
    assert family.get("newbie").emoji == "🦊"
    family.network("newbie")  # its weights load


def test_a_copy_made_before_stamps_gets_new_members_only(bundled, tmp_path):
    root = tmp_path / "data" / "family"
    copy_bundled_family(root)
    (root / BUNDLED_STAMP_NAME).unlink()  # as the copies made before this existed
    _release_a_new_bundled_family(bundled)
    copy_bundled_family(root)
    after = _manifest(root)
    assert "newbie" in [m["name"] for m in after["members"]]
    # Without a stamp nobody knows whether openmoji was changed here: left alone.
    assert _entry(after, "openmoji")["description"] != "the new, better openmoji"
    assert (root / BUNDLED_STAMP_NAME).is_file()
