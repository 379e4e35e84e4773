"""Collection builders on tiny made-up packages (no network): Fluent, clip art, artworks,
and license lookup in debian/copyright files."""

import json

import numpy as np
from PIL import Image, ImageDraw

from training.collections import license_for_file
from training.datasets.collections import (
    artwork_files,
    build_artworks_from,
    build_fluent_pairs,
    build_openclipart_pairs,
)

ICON = """<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
<circle cx="16" cy="16" r="12" fill="{a}"/><rect x="10" y="12" width="12" height="8" fill="{b}"/>
</svg>"""

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: toy

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: abstract/Silk.png
Copyright: 2008 Someone Else
License: CC-BY-SA-4.0

Files: debian/*
Copyright: 2021 Packager
License: MIT

License: GPL-2+
 This program is free software.
"""


def _records(root):
    return [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]


def test_fluent_pages_come_from_the_filter(tmp_path):
    pkg = tmp_path / "package"
    for style, (a, b) in {"flat": ("#f5b400", "#c00000"), "modern": ("#ffcc33", "#a02020"),
                          "high-contrast": ("#000", "#fff")}.items():
        (pkg / "icons" / style).mkdir(parents=True)
        (pkg / "icons" / style / "smile.svg").write_text(ICON.format(a=a, b=b))
    out = tmp_path / "fluent"
    stats = build_fluent_pairs(pkg, out, size=64, progress=False)
    assert stats.written == 2  # flat and modern; high-contrast is not a color style
    recs = _records(out)
    assert {r["source"] for r in recs} == {"fluent/flat/smile", "fluent/modern/smile"}
    assert len({r["split"] for r in recs}) == 1  # both styles of one emoji share a split
    page = np.asarray(Image.open(out / recs[0]["page"]))
    assert (page < 60).mean() > 0.02 and (page == 255).mean() > 0.6  # lines on paper
    assert all(r["license"] == "MIT" for r in recs)


def test_clipart_skips_broken_and_colorless_svgs(tmp_path):
    root = tmp_path / "svg"
    (root / "animals").mkdir(parents=True)
    (root / "animals" / "cat.svg").write_text(ICON.format(a="#e08030", b="#303030"))
    (root / "animals" / "bw.svg").write_text(ICON.format(a="#000", b="#fff"))
    (root / "broken.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><path d=")
    out = tmp_path / "clip"
    stats = build_openclipart_pairs(root, out, size=48, progress=False)
    assert (stats.written, stats.colorless, stats.failed) == (1, 1, 1)
    assert _records(out)[0]["source"] == "openclipart/animals/cat.svg"
    assert _records(out)[0]["license"] == "public-domain"


def test_license_lookup_in_debian_copyright():
    assert license_for_file(DEP5, "usr/share/backgrounds/mate/abstract/Silk.png") == "CC-BY-SA-4.0"
    assert license_for_file(DEP5, "usr/share/backgrounds/mate/nature/Dune.jpg") == "GPL-2+"
    free_form = ("Image Authors:\n - a.jpg\n   Licensed under Creative Commons "
                 "Attribution-ShareAlike 3.0 License.\n")
    assert license_for_file(free_form, "x/a.jpg") == (
        "mixed: Creative Commons Attribution-ShareAlike 3.0")


def _wallpaper(path, w, h, hue):
    im = Image.new("RGB", (w, h), (40, 90, 160))
    d = ImageDraw.Draw(im)
    for i in range(0, w, max(8, w // 12)):
        d.ellipse((i, h // 3, i + w // 10, h // 3 + h // 4), fill=hue)
        d.rectangle((i, 2 * h // 3, i + w // 20, h), fill=(30, 140, 40))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def test_artworks_pick_one_resolution_and_crop(tmp_path):
    root = tmp_path / "pkg"
    images = root / "usr/share/wallpapers/Hills/contents/images"
    _wallpaper(images / "1920x1080.png", 384, 216, (240, 200, 40))
    _wallpaper(images / "1080x1920.png", 216, 384, (240, 200, 40))  # portrait variant
    _wallpaper(images / "1280x720.png", 256, 144, (240, 200, 40))
    _wallpaper(root / "usr/share/backgrounds/toy/Sunset.jpg", 300, 200, (250, 90, 30))
    _wallpaper(root / "usr/share/wallpapers/Hills/contents/screenshot.png", 80, 45, (0, 0, 0))
    _wallpaper(root / "usr/share/plymouth/dot.png", 40, 40, (255, 0, 0))  # not a wallpaper
    (root / "usr/share/doc/toy-wallpapers").mkdir(parents=True)
    (root / "usr/share/doc/toy-wallpapers/copyright").write_text(DEP5)
    files = [p.relative_to(root).as_posix() for p in artwork_files(root)]
    assert files == ["usr/share/backgrounds/toy/Sunset.jpg",
                     "usr/share/wallpapers/Hills/contents/images/1920x1080.png"]
    out = tmp_path / "art"
    stats = build_artworks_from({"toy-wallpapers": root}, out, size=32, crops=4, progress=False)
    recs = _records(out)
    assert stats.failed == 0 and stats.written == len(recs) >= 6
    by_picture = {}
    for r in recs:
        by_picture.setdefault(r["source"].split("#")[0], []).append(r)
    assert len(by_picture) == 2
    for group in by_picture.values():
        assert len(group) <= 5  # the whole picture and up to 4 crops
        assert len({r["split"] for r in group}) == 1  # crops share the wallpaper's split
        assert any("#crop" in r["source"] for r in group)
        for r in group:
            if "#crop" in r["source"]:
                assert (r["width"], r["height"]) == (32, 32)
    assert all(r["license"] == "GPL-2+" for r in recs)
    assert (out / "licenses" / "toy-wallpapers.copyright").exists()
    again = build_artworks_from({"toy-wallpapers": root}, out, size=32, crops=4, progress=False)
    assert again.written == 0
