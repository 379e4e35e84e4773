"""Dataset builders: manifest format, split by hash, folder/SVG/OpenMoji builds, the CLI."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from training.datasets.builders import build_folder
from training.datasets.collections import build_openmoji_pairs, openmoji_group
from training.datasets.images import PictureError, render_svg
from training.datasets.manifest import SPLITS, DatasetWriter, read_manifest, split_for

FIELDS = {"id", "page", "color", "collection", "source", "license", "split", "kind",
          "width", "height"}

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
<rect x="4" y="4" width="{rw}" height="{rh}" fill="{fill}" stroke="{stroke}" stroke-width="3"/>
<circle cx="{cx}" cy="{cy}" r="8" fill="{fill2}" stroke="{stroke}" stroke-width="3"/></svg>"""


def _svg(fill="#e03030", fill2="#30a0e0", stroke="#000", w=72, h=72) -> str:
    return SVG.format(w=w, h=h, rw=w - 8, rh=h - 8, fill=fill, fill2=fill2, stroke=stroke,
                      cx=w // 2, cy=h // 2)


def _check_dataset(root, n=None, kind="lineart"):
    """Every manifest line has the contract's fields and matching files."""
    lines = (root / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    if n is not None:
        assert len(recs) == n
    for rec in recs:
        assert set(rec) == FIELDS
        assert rec["split"] in SPLITS and rec["kind"] == kind
        assert rec["page"] == f"pairs/{rec['id'][:2]}/{rec['id']}.page.png"
        assert rec["color"] == f"pairs/{rec['id'][:2]}/{rec['id']}.color.png"
        color_bytes = (root / rec["color"]).read_bytes()
        assert hashlib.sha256(color_bytes).hexdigest() == rec["id"]
        page, color = Image.open(root / rec["page"]), Image.open(root / rec["color"])
        assert page.mode == "L" and color.mode == "RGB"
        assert page.size == color.size == (rec["width"], rec["height"])
    return recs


def test_split_is_fixed_by_hash_and_roughly_90_5_5():
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    splits = [split_for(i) for i in ids]
    assert splits == [split_for(i) for i in ids]  # stable
    share = {s: splits.count(s) / len(ids) for s in SPLITS}
    assert 0.87 < share["train"] < 0.93
    assert 0.03 < share["val"] < 0.07 and 0.03 < share["test"] < 0.07
    # Known values pin the rule itself (a change would reshuffle every dataset).
    # first 16 hex digits as an integer, mod 1000: <900 train, <950 val, else test.
    assert split_for("0" * 64) == "train"
    assert split_for(ids[1]) == "val"  # bucket 913
    assert split_for(ids[26]) == "test"  # bucket 991
    # Any other key (a group name) is hashed first.
    assert split_for("some group") == split_for(hashlib.sha256(b"some group").hexdigest())


def test_writer_appends_resumes_and_skips_duplicates(tmp_path):
    color = Image.new("RGB", (20, 10), (200, 30, 30))
    page = Image.new("L", (20, 10), 255)
    with DatasetWriter(tmp_path, "toy", "CC0-1.0") as w:
        rec = w.add(color, page, "a.png")
        assert rec is not None and w.add(color, page, "copy-of-a.png") is None
        assert w.stats.written == 1 and w.stats.duplicates == 1
    # A torn last line (killed build) is ignored and repaired on the next open.
    with (tmp_path / "manifest.jsonl").open("a") as fh:
        fh.write('{"id": "trunc')
    with DatasetWriter(tmp_path, "toy", "CC0-1.0") as w:
        assert w.has_source("a.png")
        w.add(Image.new("RGB", (20, 10), (0, 90, 0)), page, "b.png")
    recs = _check_dataset_lenient(tmp_path)
    assert [r.source for r in recs] == ["a.png", "b.png"]
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["pairs"] == 2 and info["license"] == "CC0-1.0"


def _check_dataset_lenient(root):
    return list(read_manifest(root))


def test_writer_rejects_mismatched_sizes(tmp_path):
    with DatasetWriter(tmp_path, "toy", "x") as w, pytest.raises(ValueError):
        w.add(Image.new("RGB", (8, 8)), Image.new("L", (8, 9)), "bad")


def test_render_svg_long_side_and_broken_svg(tmp_path):
    wide = render_svg(_svg(w=144, h=72), 64)
    assert wide.size == (64, 32) and wide.mode == "RGB"
    broken = tmp_path / "broken.svg"
    broken.write_text("<svg xmlns='http://www.w3.org/2000/svg'><rect")
    with pytest.raises(PictureError):
        render_svg(broken, 64)


@pytest.fixture
def picture_folder(tmp_path):
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    im = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(im).ellipse((40, 40, 200, 180), fill=(240, 120, 20))
    im.save(folder / "orange.jpg", quality=95)
    im.resize((150, 100)).save(folder / "sub" / "orange-small.png")  # a near-duplicate
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent background
    ImageDraw.Draw(rgba).rectangle((16, 16, 48, 48), fill=(30, 60, 200, 255))
    rgba.save(folder / "sub" / "transparent.png")
    Image.new("RGB", (50, 50), (128, 128, 128)).save(folder / "gray.png")  # colorless
    (folder / "unreadable.png").write_bytes(b"not a png at all")
    (folder / "icon.svg").write_text(_svg())
    (folder / "broken.svg").write_text("<svg><g>")
    (folder / "notes.txt").write_text("not a picture: ignored, not a failure")
    (folder / ".hidden.png").write_bytes(b"junk")
    return folder


def test_folder_builder(picture_folder, tmp_path):
    out = tmp_path / "ds"
    stats = build_folder(picture_folder, out, size=128, license="CC0-1.0", progress=False)
    assert stats.written == 3  # orange.jpg, transparent.png, icon.svg
    assert stats.duplicates == 1 and stats.colorless == 1
    assert stats.failed == 2  # unreadable.png and broken.svg, counted, not fatal
    recs = {r["source"]: r for r in _check_dataset(out, 3)}
    assert set(recs) == {"orange.jpg", "sub/transparent.png", "icon.svg"}
    assert (recs["orange.jpg"]["width"], recs["orange.jpg"]["height"]) == (128, 85)
    # Transparency composited on white: the corner is white paper in color and page.
    tr = recs["sub/transparent.png"]
    assert Image.open(out / tr["color"]).getpixel((1, 1)) == (255, 255, 255)
    assert Image.open(out / tr["page"]).getpixel((1, 1)) == 255
    assert tr["width"] == 64  # small pictures are not upscaled
    # The SVG is rendered at the stored size.
    assert recs["icon.svg"]["width"] == 128
    # Idempotent: a second run writes nothing new.
    again = build_folder(picture_folder, out, size=128, progress=False)
    assert again.written == 0 and again.skipped == 3
    assert len(list(read_manifest(out))) == 3


def test_folder_builder_photo_mode(picture_folder, tmp_path):
    out = tmp_path / "photos"
    build_folder(picture_folder, out, kind="photo", size=96, progress=False)
    recs = _check_dataset(out, kind="photo")
    rec = next(r for r in recs if r["source"] == "orange.jpg")
    page = np.asarray(Image.open(out / rec["page"]), dtype=np.float32)
    # Inside the orange disc the page is the orange's lightness, not a white paper.
    assert 150 < page[rec["height"] // 2, rec["width"] // 2] < 200


def _openmoji_package(root):
    """Two tiny made-up emoji pairs in OpenMoji's layout, plus one without line art."""
    (root / "color" / "svg").mkdir(parents=True)
    (root / "black" / "svg").mkdir(parents=True)
    for name, fill in (("1F600", "#fcea2b"), ("1F44B-1F3FB", "#e0a070")):
        (root / "color" / "svg" / f"{name}.svg").write_text(_svg(fill=fill, fill2="#d22f27"))
        (root / "black" / "svg" / f"{name}.svg").write_text(_svg(fill="none", fill2="none"))
    (root / "color" / "svg" / "E000.svg").write_text(_svg(fill="#00ff00"))
    # A letter-like emoji that is black-and-white even in color: skipped as colorless.
    (root / "color" / "svg" / "1F1E6.svg").write_text(_svg(fill="#fff", fill2="#000"))
    (root / "black" / "svg" / "1F1E6.svg").write_text(_svg(fill="none", fill2="none"))
    return root


def test_openmoji_pairs_color_with_its_line_art(tmp_path):
    pkg = _openmoji_package(tmp_path / "package")
    out = tmp_path / "om"
    stats = build_openmoji_pairs(pkg, out, size=64, progress=False)
    assert stats.written == 2 and stats.failed == 1  # E000 has no line art
    assert stats.colorless == 1  # 1F1E6
    recs = _check_dataset(out, 2)
    for rec in recs:
        assert rec["collection"] == "openmoji" and rec["license"] == "CC-BY-SA-4.0"
        page = np.asarray(Image.open(out / rec["page"]))
        color = np.asarray(Image.open(out / rec["color"]))
        assert page[32, 20] == 255  # line art: white inside the shapes
        assert page[4, 32] < 80  # the black outline on the rectangle's top edge
        assert color[32, 20].tolist() != [255, 255, 255]  # the color fills the shape
    assert {r["source"] for r in recs} == {"openmoji/1F600", "openmoji/1F44B-1F3FB"}


def test_openmoji_skin_tones_share_a_split():
    assert openmoji_group("1F44B-1F3FB") == openmoji_group("1F44B") == "openmoji:1F44B"
    assert openmoji_group("1F9D1-1F3FD-200D-1F4BB") == openmoji_group("1F9D1-200D-1F4BB")


def test_cli_folder_build(picture_folder, tmp_path, capsys):
    from colorbot.cli import main

    out = tmp_path / "cli"
    code = main(["dataset", "folder", str(picture_folder), "--out", str(out), "--size", "96",
                 "--no-progress", "--license", "CC0-1.0", "--mark-ready"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "pairs written 3" in printed and "failed 2" in printed
    assert (out / "READY").exists()
    assert all(r["license"] == "CC0-1.0" for r in _check_dataset(out, 3))


def test_second_writer_on_same_dataset_is_refused(tmp_path):
    from training.datasets.manifest import DatasetBusyError

    with DatasetWriter(tmp_path, "toy", "x"), pytest.raises(DatasetBusyError):
        DatasetWriter(tmp_path, "toy", "x")
    DatasetWriter(tmp_path, "toy", "x").close()  # free again once the first one closed


def test_cli_info_verifies_a_dataset(picture_folder, tmp_path, capsys):
    from colorbot.cli import main

    out = tmp_path / "ds"
    build_folder(picture_folder, out, size=64, license="CC0-1.0", progress=False)
    assert main(["dataset", "info", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "3 pairs" in printed and "license CC0-1.0: 3" in printed and "0 problems" in printed
    rec = next(read_manifest(out))
    (out / rec.color).write_bytes((out / rec.color).read_bytes() + b"tampered")
    assert main(["dataset", "info", str(out), "--verify"]) == 1
