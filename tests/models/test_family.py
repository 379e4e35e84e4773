"""The family registry and the bundled family."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from models.family import (
    BUNDLED_FAMILY_DIR,
    Family,
    FamilyError,
    FamilyMember,
    build_network,
    copy_bundled_family,
    save_weights,
)
from models.unet import UNet, UNetConfig

DEFAULT_MEMBERS = {"openmoji": "😀", "fluent": "🌈", "clipart": "📎", "artworks": "🎨",
                   "cartoon": "🧸"}


def test_bundled_family_has_the_default_members(family):
    assert {m.name: m.emoji for m in family.members} == DEFAULT_MEMBERS
    for member in family.members:
        assert "\ufe0f" not in member.emoji  # vote keys must not need a variation selector
        assert member.architecture in ("unet", "pix2pix")
        assert member.license and member.trained_on and member.description
        assert (BUNDLED_FAMILY_DIR / member.weights).is_file()
        assert member.weights_sha256
        assert member.kind == "lineart" and member.config["out_channels"] == 3


def test_bundled_networks_load_in_eval_mode(family):
    for name in family.names:
        net = family.network(name)
        assert not net.training
        assert family.network(name) is net  # loaded once
        with torch.inference_mode():
            assert net(torch.zeros(1, 1, 32, 48)).shape == (1, 3, 32, 48)


def test_lookup(family):
    assert family.get("clipart").emoji == "📎"
    assert family.by_emoji("🌈").name == "fluent"
    assert family.by_emoji("👍") is None
    with pytest.raises(FamilyError, match="no family member named 'nobody'"):
        family.get("nobody")


def _member(name="m", emoji="🙂", **kw) -> FamilyMember:
    base = dict(
        name=name, emoji=emoji, description="d", architecture="unet",
        config={"base_channels": 4, "depth": 2}, weights=f"{name}.safetensors",
    )
    base.update(kw)
    return FamilyMember(**base)


def _write(tmp_path, members: list[FamilyMember]) -> Family:
    family = Family(tmp_path, members)
    for m in members:
        if m.architecture == "unet":
            m.weights_sha256 = save_weights(build_network(m), tmp_path / m.weights)
    family.save_manifest()
    return family


def test_manifest_roundtrip(tmp_path):
    _write(tmp_path, [_member("a", "🙂"), _member("b", "🐱")])
    loaded = Family.load(tmp_path)
    assert loaded.names == ["a", "b"]
    assert isinstance(loaded.network("b"), UNet)
    assert Family.load(tmp_path / "manifest.json").names == ["a", "b"]


def test_missing_manifest(tmp_path):
    with pytest.raises(FamilyError, match="no family manifest"):
        Family.load(tmp_path)


def test_bad_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(FamilyError, match="not valid JSON"):
        Family.load(tmp_path)


def test_bad_member_entry(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"members": [{"name": "x"}]}))
    with pytest.raises(FamilyError, match="bad member entry"):
        Family.load(tmp_path)


def test_duplicate_names_and_emojis(tmp_path):
    with pytest.raises(FamilyError, match="names must be unique"):
        Family(tmp_path, [_member("a", "🙂"), _member("a", "🐱")])
    with pytest.raises(FamilyError, match="emojis must be unique"):
        Family(tmp_path, [_member("a", "🙂"), _member("b", "🙂")])


def test_unknown_architecture(tmp_path):
    family = Family(tmp_path, [_member(architecture="transformer")])
    with pytest.raises(FamilyError, match="unknown architecture 'transformer'"):
        family.network("m")


def test_missing_weights(tmp_path):
    family = Family(tmp_path, [_member()])
    with pytest.raises(FamilyError, match="weights file .* is missing"):
        family.network("m")


def test_weights_that_do_not_match_their_sha256(tmp_path):
    _write(tmp_path, [_member()])
    save_weights(UNet(UNetConfig(base_channels=4, depth=2)), tmp_path / "m.safetensors")
    with pytest.raises(FamilyError, match="does not match its sha256"):
        Family.load(tmp_path).network("m")


def test_weights_of_another_architecture(tmp_path):
    _write(tmp_path, [_member()])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["members"][0]["config"] = {"base_channels": 8, "depth": 3}
    manifest["members"][0]["weights_sha256"] = ""
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises((FamilyError, RuntimeError)):
        Family.load(tmp_path).network("m")


def test_bundled_family_copies_cleanly(tmp_path):
    shutil.copytree(BUNDLED_FAMILY_DIR, tmp_path / "fam")
    assert Family.load(tmp_path / "fam").names == list(DEFAULT_MEMBERS)


def test_copy_bundled_family_makes_a_served_copy_once(tmp_path):
    root = tmp_path / "data" / "family"
    assert copy_bundled_family(root) is True
    copied = Family.load(root)
    assert [m.name for m in copied.members] == [m.name for m in Family.load().members]
    assert not list(root.parent.glob(".family.copy-*"))  # no scratch copy left behind
    (root / "marker").write_text("retrained versions live here")
    assert copy_bundled_family(root) is False  # a family already: left alone
    assert (root / "marker").exists()


def test_copy_bundled_family_fills_an_empty_folder_and_refuses_a_foreign_one(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert copy_bundled_family(empty) is True
    assert (empty / "manifest.json").exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"not a family")
    with pytest.raises(FamilyError, match="not a family"):
        copy_bundled_family(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]
    assert copy_bundled_family(tmp_path / "mine" / "manifest.json") is False
    assert not (tmp_path / "mine").exists()

