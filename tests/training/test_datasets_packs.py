"""The newer collection builders on tiny made-up inputs: Iconify emoji sets (filtered
and real outline pairs), Qt .rcc bundles, painting/cartoon picture folders, and the
trainer's multi-folder datasets, collage views and start from given weights."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from training.datasets.collections import build_iconify_pairs, iconify_icons, strokes_only
from training.datasets.packs import build_pictures
from training.datasets.rcc import RccError, read_rcc
from training.train import PairCrops, TrainConfig, load_initial_weights, read_manifest, train

from .test_train import make_toy_dataset

FACE = ('<circle cx="8" cy="8" r="7" fill="#ffcc22" stroke="#333" stroke-width="1"/>'
        '<rect x="5" y="9" width="6" height="2" fill="#cc2222"/>')
TREE = ('<g stroke="#222"><rect x="7" y="9" width="2" height="6" fill="#885522"/>'
        '<circle cx="8" cy="6" r="5" fill="#22aa44"/></g>')


def _iconify_package(root: Path) -> Path:
    icons = {"face": {"body": FACE}, "tree": {"body": TREE},
             "face-medium-skin-tone": {"body": FACE}, "secret": {"body": FACE, "hidden": True},
             "wide": {"body": FACE, "width": 32}}
    root.mkdir(parents=True)
    (root / "icons.json").write_text(json.dumps(
        {"prefix": "toy", "icons": icons, "width": 16, "height": 16}))
    return root


def _records(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]


def test_iconify_icons_skip_hidden_and_skin_tone_variants(tmp_path):
    icons = dict(iconify_icons(_iconify_package(tmp_path / "pkg")))
    assert set(icons) == {"face", "tree", "wide"}
    assert 'viewBox="0 0 32 16"' in icons["wide"]


def test_strokes_only_keeps_outlines_black_and_unfilled():
    svg = dict(iconify_icons_from_body(TREE))["x"]
    lines = strokes_only(svg)
    assert lines is not None
    assert "#22aa44" not in lines and "#885522" not in lines
    assert 'stroke="#000"' in lines and 'fill="none"' in lines
    assert strokes_only(svg.replace('stroke="#222"', "")) is None  # no strokes: no page


def iconify_icons_from_body(body: str) -> list[tuple[str, str]]:
    return [("x", f'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" '
                  f'viewBox="0 0 16 16">{body}</svg>')]


@pytest.mark.parametrize("set_name", ["noto", "streamline"])
def test_iconify_builder_writes_pairs_on_paper(tmp_path, set_name):
    pkg = _iconify_package(tmp_path / "pkg")
    out = tmp_path / set_name
    stats = build_iconify_pairs(pkg, out, set_name, size=64, progress=False)
    assert stats.written == 3
    recs = _records(out)
    assert {r["collection"] for r in recs} == {set_name}
    for rec in recs:
        page = np.asarray(Image.open(out / rec["page"]))
        color = np.asarray(Image.open(out / rec["color"]))
        assert page.shape == color.shape[:2]
        assert (page < 100).mean() > 0.01 and (page > 240).mean() > 0.4  # lines on paper
        # The page has no color left in it (a real outline page or the filter's).
        assert Image.open(out / rec["page"]).mode == "L"


def write_rcc(path: Path, files: dict[str, bytes], compress: set[str] = frozenset()) -> None:
    """A minimal version-2 Qt resource bundle holding `files` under one folder."""
    names_blob, name_offsets = b"", {}
    for name in ["pics", *files]:
        name_offsets[name] = len(names_blob)
        names_blob += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    data_blob, data_offsets = b"", {}
    for name, payload in files.items():
        if name in compress:
            payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
        data_offsets[name] = len(data_blob)
        data_blob += struct.pack(">I", len(payload)) + payload
    nodes = [struct.pack(">IHII", 0, 2, 1, 1) + bytes(8),  # root: 1 child at index 1
             struct.pack(">IHII", name_offsets["pics"], 2, len(files), 2) + bytes(8)]
    for name in files:
        flags = 1 if name in compress else 0
        nodes.append(struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, data_offsets[name])
                     + bytes(8))
    tree = b"".join(nodes)
    header_size = 20
    tree_at, data_at = header_size, header_size + len(tree)
    names_at = data_at + len(data_blob)
    header = b"qres" + struct.pack(">IIII", 2, tree_at, data_at, names_at)
    path.write_bytes(header + tree + data_blob + names_blob)


def test_rcc_bundle_gives_back_its_files(tmp_path):
    path = tmp_path / "toy.rcc"
    write_rcc(path, {"a.txt": b"hello", "b.bin": b"x" * 1000}, compress={"b.bin"})
    assert dict(read_rcc(path)) == {"pics/a.txt": b"hello", "pics/b.bin": b"x" * 1000}
    (tmp_path / "bad.rcc").write_bytes(b"nope")
    with pytest.raises(RccError):
        list(read_rcc(tmp_path / "bad.rcc"))


def _picture(size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = rng.integers(0, size - 40, 2)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        d.ellipse((int(x), int(y), int(x) + 40, int(y) + 40), fill=color, outline="black",
                  width=3)
    return im


def test_picture_builder_reads_pictures_from_an_rcc_bundle_with_crops(tmp_path):
    import io

    from training.datasets.packs import unpack_rcc_pictures

    pngs = {}
    for i, size in enumerate((120, 600)):
        buf = io.BytesIO()
        _picture(size, i).save(buf, "PNG")
        pngs[f"pic{i}.png"] = buf.getvalue()
    pngs["notes.qml"] = b"Item {}"
    pkg = tmp_path / "pkg"
    (pkg / "usr/share/gcompris-qt/rcc").mkdir(parents=True)
    write_rcc(pkg / "usr/share/gcompris-qt/rcc/toy.rcc", pngs)
    cache = tmp_path / "cache"
    files = unpack_rcc_pictures(pkg, ["toy"], cache)
    assert sorted(p.name for p in files) == ["pic0.png", "pic1.png"]  # pictures only
    out = tmp_path / "ds"
    stats = build_pictures([("gcompris-qt-data", cache, p) for p in files], out, "toy",
                           roots={"gcompris-qt-data": pkg}, size=64, progress=False)
    recs = _records(out)
    assert stats.written == len(recs) > 2  # the big picture gives crops, the small one not
    by_picture = {}
    for rec in recs:
        by_picture.setdefault(rec["source"].split("#")[0], set()).add(rec["split"])
    assert len(by_picture) == 2 and all(len(s) == 1 for s in by_picture.values())
    # Building again adds nothing.
    again = build_pictures([("gcompris-qt-data", cache, p) for p in files], out, "toy",
                           roots={"gcompris-qt-data": pkg}, size=64, progress=False)
    assert again.written == 0


def test_training_reads_several_dataset_folders(tmp_path):
    a = make_toy_dataset(tmp_path / "a", n=12)
    b = make_toy_dataset(tmp_path / "b", n=12, seed=1)
    rows = read_manifest(f"{a},{b}", "train")
    assert {Path(r["_root"]) for r in rows} == {a, b}
    cfg = TrainConfig(dataset=f"{a},{b}", out_dir=str(tmp_path / "o"), load_size=48,
                      crop_size=32)
    page, color = PairCrops(cfg.dataset, rows, cfg)[(len(rows) - 1, 5)]
    assert page.shape == (1, 32, 32) and color.shape == (3, 32, 32)


def test_collage_puts_several_pictures_on_one_page(tmp_path):
    toy = make_toy_dataset(tmp_path / "toy", n=24, size=48)
    rows = read_manifest(toy, "train")
    cfg = TrainConfig(dataset=str(toy), out_dir=str(tmp_path / "o"), load_size=96,
                      crop_size=96, scale_min=1.0, scale_max=1.0, hflip=False, collage=1.0)
    data = PairCrops(toy, rows, cfg)
    plain = PairCrops(toy, rows, TrainConfig(**{**cfg.to_dict(), "collage": 0.0}))
    # The same item is the same view (resume stays exact) ...
    assert torch.equal(data[(3, 11)][1], data[(3, 11)][1])
    # ... and a collage has more separate drawn things than one picture has.
    from scipy import ndimage

    def things(color: torch.Tensor) -> int:
        drawn = (color < 235).any(0).numpy()
        return ndimage.label(ndimage.binary_closing(drawn, iterations=2))[1]

    collage_counts = [things(data[(i, 100 + i)][1]) for i in range(8)]
    plain_counts = [things(plain[(i, 100 + i)][1]) for i in range(8)]
    assert np.mean(collage_counts) > np.mean(plain_counts) + 0.5


def test_a_member_grows_from_given_weights(tmp_path):
    toy = make_toy_dataset(tmp_path / "toy")
    net = {"base_channels": 8, "depth": 2, "max_channels": 16, "ab_bins": 7}
    common = dict(dataset=str(toy), net=net, batch_size=4, load_size=48, crop_size=32,
                  warmup_steps=1, snapshot_every=100, checkpoint_every=100, val_pages=1,
                  snapshot_size=32, threads=1, progress=False)
    base = train(TrainConfig(out_dir=str(tmp_path / "base"), steps=3, **common))
    from training.train import build_network, load_checkpoint

    cfg = TrainConfig(out_dir=str(tmp_path / "m"), steps=1, **common)
    fresh = build_network(cfg)
    load_initial_weights(fresh, base.checkpoint)
    want = load_checkpoint(base.checkpoint)["trainer"]["model"]
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in want.items())
    # Wrong architecture: refused with a reason, not silently half-loaded.
    other = build_network(TrainConfig(out_dir="x", dataset="x", net={**net, "depth": 3}))
    with pytest.raises((ValueError, RuntimeError, KeyError)):
        load_initial_weights(other, base.checkpoint)
