"""Paintings and cartoon pictures from Debian's game and education packages.

- **paintings** (the `artworks` member, the write-up's "best artworks of all time"):
  GCompris' public-domain masterpieces (jigsaw tiles inside Qt `.rcc` bundles) and its
  painting details, Battle for Wesnoth's painted story art and portraits, and
  Hedgewars' "Art" theme (famous paintings redrawn). Large pictures give several
  random crops, so a few dozen paintings make a few thousand pairs; all views of one
  picture share a split.
- **cartoon**: GCompris' cartoon pictures (from its activities' bundles; maps, UI,
  letters and photos left out) and Tux Paint's stamps (cartoon objects, animals,
  people, vehicles).

Pages come from the coloring-book filter; each pair's license is read from its
package's debian/copyright.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from training import collections as reg
from training.datasets.common import crop_boxes, keep_copyright, progress_bar
from training.datasets.images import PictureError, fit_long_side, load_picture
from training.datasets.manifest import BuildStats, DatasetWriter
from training.datasets.rcc import RccError, read_rcc

_PICTURE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg", ".svg", ".svgz")
GCOMPRIS = "gcompris-qt-data"
_GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
# GCompris bundles whose pictures are paintings, and bundles that are not cartoons
# (maps, user interface, letters and digits, circuit parts, photos).
GCOMPRIS_PAINTINGS = ("paintings", "details")
GCOMPRIS_NOT_CARTOON = (
    "paintings", "details", "geo-country", "geography", "core", "menu", "lang",
    "digital_electricity", "analog_electricity", "piano_composition", "photo_hunter",
    "chess", "sudoku", "drawletters", "drawnumbers", "braille_alphabets", "braille_fun",
    "louis-braille", "mosaic", "explore_monuments", "money", "money_cents", "money_back",
    "money_back_cents",
)


def unpack_rcc_pictures(root: Path, bundles: list[str], cache: Path) -> list[Path]:
    """Write the pictures of GCompris bundles under `cache` (once); their paths.

    The files keep their in-bundle paths (`src/activities/<name>/...`), which is what
    the package's debian/copyright patterns name.
    """
    out = []
    for bundle in bundles:
        done = cache / f".{bundle}.unpacked"
        folder = cache / bundle
        if not done.exists():
            try:
                for inner, data in read_rcc(root / _GCOMPRIS_RCC / f"{bundle}.rcc"):
                    if Path(inner).suffix.lower() in _PICTURE_SUFFIXES:
                        target = folder / inner
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
            except (RccError, FileNotFoundError):
                continue
            done.touch()
        out += sorted(p for p in folder.rglob("*") if p.suffix.lower() in _PICTURE_SUFFIXES)
    return out


def gcompris_bundles(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / _GCOMPRIS_RCC).glob("*.rcc"))


def _license_path(path: Path) -> str:
    """The path debian/copyright patterns match: from `src/` for GCompris pictures."""
    parts = path.as_posix().split("/gcompris/", 1)
    return parts[1] if len(parts) == 2 else path.as_posix()


def build_pictures(
    files: list[tuple[str, Path, Path]],
    out: Path,
    collection: str,
    *,
    roots: dict[str, Path],
    size: int = 256,
    max_crops: int = 12,
    min_side: int = 64,
    line_weight: float = 3.0,
    detail: float = 0.5,
    progress: bool = True,
    info: dict | None = None,
) -> BuildStats:
    """Pairs from `(package, license root, file)`: each picture whole, plus random
    square crops in proportion to its size (up to `max_crops`)."""
    from training.datasets.builders import NearDuplicates, is_colorless, skip_picture
    from training.filters import coloring_book

    licenses = {pkg: reg.deb_copyright(root, pkg) for pkg, root in roots.items()}
    info = {**(info or {}), "size": size, "max_crops": max_crops,
            "packages": [f"deb:{p}" for p in roots],
            "pages": f"coloring-book filter (line_weight={line_weight}, detail={detail})"}
    with DatasetWriter(out, collection, "mixed (per pair)", "lineart", info=info) as writer:
        stats = writer.stats
        near = NearDuplicates.for_dataset(out)
        for pkg, base, path in progress_bar(files, len(files), collection, progress):
            rel = path.relative_to(base).as_posix()
            source = f"{pkg}/{rel}"
            if writer.has_source(source):
                stats.skipped += 1
                continue
            license = reg.license_for_file(licenses[pkg], _license_path(path))
            try:
                work = load_picture(path, size * 4)
            except (PictureError, OSError) as exc:
                stats.fail(source, str(exc)[:200])
                continue
            if min(work.size) < min_side or skip_picture(work, stats, near):
                continue
            digest = hashlib.sha256(source.encode()).hexdigest()
            rng = np.random.default_rng(int(digest[:8], 16))
            crops = min(max_crops, int(work.width * work.height / (size * size) * 1.5))
            boxes = crop_boxes(work.width, work.height, crops * 2, rng) if crops else []
            kept = 0
            for box in [*boxes, None]:  # the whole picture last: resume checks it
                if box is None:
                    view_source, view = source, fit_long_side(work, size)
                elif kept >= crops:
                    continue
                else:
                    view_source = f"{source}#crop{kept}"
                    view = work.crop(box).resize((size, size), Image.Resampling.LANCZOS)
                if writer.has_source(view_source):
                    kept += 1
                    continue
                if is_colorless(view):
                    stats.colorless += 1
                    continue
                page = coloring_book(view, line_weight=line_weight, detail=detail)
                if box is not None and (np.asarray(page) < 128).mean() < 0.006:
                    continue  # next to no lines: nothing to color inside
                writer.add(view, page, view_source, split_key=f"{collection}:{digest}",
                           license=license)
                kept += 1
        for pkg, root in roots.items():
            keep_copyright(root, pkg, out)
    return stats


def painting_files(roots: dict[str, Path], cache: Path) -> list[tuple[str, Path, Path]]:
    files = []
    if GCOMPRIS in roots:
        for p in unpack_rcc_pictures(roots[GCOMPRIS], list(GCOMPRIS_PAINTINGS), cache):
            files.append((GCOMPRIS, cache, p))
    wesnoth = roots.get("wesnoth-1.16-data")
    if wesnoth:
        images = wesnoth / "usr/share/games/wesnoth/1.16/data/core/images"
        for sub in ("story", "portraits"):
            for p in sorted((images / sub).rglob("*")):
                if p.suffix.lower() in _PICTURE_SUFFIXES and "transparent" not in p.parts:
                    files.append(("wesnoth-1.16-data", wesnoth, p))
    hedgewars = roots.get("hedgewars-data")
    if hedgewars:
        art = hedgewars / "usr/share/games/hedgewars/Data/Themes/Art"
        for name in ("Mona.png", "Schrei.png", "Zeit.png", "Soup.png", "horizont.png",
                     "Sky.png", "LandTex.png"):
            if (art / name).exists():
                files.append(("hedgewars-data", hedgewars, art / name))
    return files


def cartoon_files(roots: dict[str, Path], cache: Path) -> list[tuple[str, Path, Path]]:
    files = []
    if GCOMPRIS in roots:
        bundles = [b for b in gcompris_bundles(roots[GCOMPRIS])
                   if b not in GCOMPRIS_NOT_CARTOON and "memory" not in b]
        for p in unpack_rcc_pictures(roots[GCOMPRIS], bundles, cache):
            files.append((GCOMPRIS, cache, p))
    stamps = roots.get("tuxpaint-stamps-default")
    if stamps:
        for p in sorted((stamps / "usr/share/tuxpaint/stamps").rglob("*")):
            if p.suffix.lower() in (".png", ".svg") and not p.stem.endswith(("_mirror",
                                                                                "_flip")):
                if p.suffix == ".png" and p.with_suffix(".svg").exists():
                    continue  # the same stamp as a vector: render that one
                files.append(("tuxpaint-stamps-default", stamps, p))
    return files


def build_paintings(out: Path, *, size: int = 256, cache_dir: Path | None = None,
                    progress: bool = True, **kwargs) -> BuildStats:
    roots = {p: reg.fetch_deb(p, cache_dir)
             for p in (GCOMPRIS, "wesnoth-1.16-data", "hedgewars-data")}
    cache = (cache_dir or reg.default_cache_dir()) / "gcompris"
    files = painting_files(roots, cache)
    info = {"attribution": "GCompris (public-domain masterpieces via WebMuseum), Battle for "
            "Wesnoth story art and portraits (GPL-2+), Hedgewars Art theme (GPL-2)"}
    return build_pictures(files, out, "artworks", roots=roots, size=size, max_crops=20,
                          progress=progress, info=info, **kwargs)


def build_cartoon(out: Path, *, size: int = 256, cache_dir: Path | None = None,
                  progress: bool = True, **kwargs) -> BuildStats:
    roots = {p: reg.fetch_deb(p, cache_dir) for p in (GCOMPRIS, "tuxpaint-stamps-default")}
    cache = (cache_dir or reg.default_cache_dir()) / "gcompris"
    files = cartoon_files(roots, cache)
    info = {"attribution": "GCompris pictures (GPL-3+/CC BY-SA, per file), Tux Paint stamps "
            "(GPL-2)"}
    return build_pictures(files, out, "cartoon", roots=roots, size=size, max_crops=2,
                          progress=progress, info=info, **kwargs)
