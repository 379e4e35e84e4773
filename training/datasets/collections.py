"""Builders for the collections package registries carry (see `training.collections`)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from training import collections as reg
from training.datasets.common import keep_copyright, progress_bar
from training.datasets.images import PictureError, render_svg
from training.datasets.manifest import BuildStats, DatasetWriter

# Skin-tone modifiers: variants of one emoji that differ only in skin tone share a split,
# so the test split never holds a recolored copy of a training picture.
_SKIN_TONES = re.compile(r"-?1F3F[B-F]", re.IGNORECASE)


def openmoji_group(stem: str) -> str:
    """The split group of an OpenMoji file name (hexcode without skin-tone parts)."""
    return "openmoji:" + _SKIN_TONES.sub("", stem).upper()


def build_openmoji_pairs(
    package_dir: Path,
    out: Path,
    *,
    size: int = 256,
    limit: int | None = None,
    skip_colorless: bool = True,
    progress: bool = True,
) -> BuildStats:
    """Real pairs: OpenMoji ships each emoji as a color SVG and a black line-art SVG.

    `package_dir` is the npm package's folder (with color/svg and black/svg). The page is
    the black line art, the color the colored emoji, both rendered at `size` on white.
    About one emoji in nine (letters, symbols, signs) is black-and-white even in color;
    those are skipped (counted as colorless) unless `skip_colorless` is False.
    """
    from training.datasets.builders import is_colorless

    color_dir, black_dir = package_dir / "color" / "svg", package_dir / "black" / "svg"
    names = sorted(p.name for p in color_dir.glob("*.svg"))
    if limit is not None:
        names = names[:limit]
    info = {"attribution": reg.OPENMOJI.attribution, "packages": list(reg.OPENMOJI.packages),
            "size": size, "pages": "OpenMoji black line-art SVGs (real pairs)"}
    with DatasetWriter(out, "openmoji", reg.OPENMOJI.license, "lineart", info=info) as writer:
        stats = writer.stats
        for name in progress_bar(names, len(names), "openmoji", progress):
            stem = name[: -len(".svg")]
            source = f"openmoji/{stem}"
            if writer.has_source(source):
                stats.skipped += 1
                continue
            black = black_dir / name
            if not black.exists():
                stats.fail(source, "no black line-art SVG with this name")
                continue
            try:
                color = render_svg(color_dir / name, size)
                page = render_svg(black, size).convert("L")
            except PictureError as exc:
                stats.fail(source, str(exc))
                continue
            if page.size != color.size:
                stats.fail(source, f"line art {page.size} and color {color.size} differ")
                continue
            if skip_colorless and is_colorless(color):
                stats.colorless += 1
                continue
            writer.add(color, page, source, split_key=openmoji_group(stem))
    return stats


def build_openmoji(
    out: Path, *, size: int = 256, cache_dir: Path | None = None, limit: int | None = None,
    skip_colorless: bool = True, progress: bool = True,
) -> BuildStats:
    package = reg.fetch_npm("openmoji", reg.OPENMOJI_VERSION, cache_dir)
    return build_openmoji_pairs(package, out, size=size, limit=limit,
                                skip_colorless=skip_colorless, progress=progress)


FLUENT_COLOR_STYLES = ("flat", "modern")


def build_fluent_pairs(
    package_dir: Path,
    out: Path,
    *,
    size: int = 256,
    styles: tuple[str, ...] = FLUENT_COLOR_STYLES,
    line_weight: float = 3.0,
    detail: float = 0.5,
    limit: int | None = None,
    progress: bool = True,
) -> BuildStats:
    """Fluent emoji in the given color styles, pages made by the coloring-book filter.

    The "high-contrast" style is black-and-white, not a coloring; it is not a color source
    by default (pass it in `styles` to use it anyway). Both styles of one emoji share a split.
    """
    from training.filters import coloring_book

    files = sorted(
        p for style in styles for p in (package_dir / "icons" / style).glob("*.svg")
    )
    if limit is not None:
        files = files[:limit]
    info = {"attribution": reg.FLUENT.attribution, "packages": list(reg.FLUENT.packages),
            "size": size, "styles": list(styles),
            "pages": f"coloring-book filter (line_weight={line_weight}, detail={detail})"}
    with DatasetWriter(out, "fluent", reg.FLUENT.license, "lineart", info=info) as writer:
        stats = writer.stats
        for path in progress_bar(files, len(files), "fluent", progress):
            source = f"fluent/{path.parent.name}/{path.stem}"
            if writer.has_source(source):
                stats.skipped += 1
                continue
            try:
                color = render_svg(path, size)
            except PictureError as exc:
                stats.fail(source, str(exc))
                continue
            page = coloring_book(color, line_weight=line_weight, detail=detail)
            writer.add(color, page, source, split_key=f"fluent:{path.stem}")
    return stats


def build_fluent(
    out: Path, *, size: int = 256, cache_dir: Path | None = None, limit: int | None = None,
    styles: tuple[str, ...] = FLUENT_COLOR_STYLES, line_weight: float = 3.0,
    detail: float = 0.5, progress: bool = True,
) -> BuildStats:
    package = reg.fetch_npm("fluentui-emoji", reg.FLUENT_VERSION, cache_dir)
    return build_fluent_pairs(package, out, size=size, styles=styles, line_weight=line_weight,
                              detail=detail, limit=limit, progress=progress)


# Openclipart's categories that draw things (two thirds of the library is computer
# icons, buttons, shapes, signs and logos: nothing to learn "what color is a frog" from).
OPENCLIPART_FIGURATIVE = ("animals", "buildings", "food", "people", "plants", "recreation",
                          "transportation", "tools", "containers", "decorations")


def _figurative(rel: Path) -> bool:
    """Whether a clip art file (path under the svg root) is in a figurative category.

    Files outside any category folder (a flat test folder) are kept."""
    return len(rel.parts) < 2 or rel.parts[0] in OPENCLIPART_FIGURATIVE


def build_openclipart_pairs(
    root: Path,
    out: Path,
    *,
    size: int = 256,
    line_weight: float = 3.0,
    detail: float = 0.5,
    limit: int | None = None,
    max_svg_bytes: int = 5_000_000,
    progress: bool = True,
) -> BuildStats:
    """Clip art SVGs under `root`, pages by the coloring-book filter.

    Gray and black-and-white clip art is skipped (counted as colorless): it has no
    colors to learn. Near-copies (the library holds many variants) are skipped too.
    """
    from training.datasets.builders import NearDuplicates, skip_picture
    from training.filters import coloring_book

    # A fixed shuffle (by path hash, not by name): any prefix (a --limit, or a build
    # stopped early) is a fair sample of all categories, not just the first ones.
    files = sorted((p for p in root.rglob("*.svg") if _figurative(p.relative_to(root))),
                   key=lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).digest())
    if limit is not None:
        files = files[:limit]
    info = {"attribution": reg.OPENCLIPART.attribution,
            "packages": list(reg.OPENCLIPART.packages), "size": size,
            "pages": f"coloring-book filter (line_weight={line_weight}, detail={detail})"}
    with DatasetWriter(out, "clipart", reg.OPENCLIPART.license, "lineart", info=info) as writer:
        stats = writer.stats
        near = NearDuplicates.for_dataset(out)
        for path in progress_bar(files, len(files), "clipart", progress):
            source = "openclipart/" + path.relative_to(root).as_posix()
            if writer.has_source(source):
                stats.skipped += 1
                continue
            if path.stat().st_size > max_svg_bytes:
                stats.fail(source, "SVG larger than max_svg_bytes")
                continue
            try:
                color = render_svg(path, size)
            except PictureError as exc:
                stats.fail(source, str(exc))
                continue
            if skip_picture(color, stats, near):
                continue
            page = coloring_book(color, line_weight=line_weight, detail=detail)
            writer.add(color, page, source)
    return stats


def build_openclipart(
    out: Path, *, size: int = 256, cache_dir: Path | None = None, limit: int | None = None,
    line_weight: float = 3.0, detail: float = 0.5, progress: bool = True,
) -> BuildStats:
    root = reg.fetch_deb("openclipart-svg", cache_dir)
    svg_root = root / "usr/share/openclipart/svg"
    stats = build_openclipart_pairs(svg_root if svg_root.exists() else root, out, size=size,
                                    line_weight=line_weight, detail=detail, limit=limit,
                                    progress=progress)
    keep_copyright(root, "openclipart-svg", out)
    return stats


# Wallpapers are under these folders; everything else in the packages (boot splash
# dots, logos, screenshots, GRUB backgrounds) is not artwork worth learning from.
_ARTWORK_DIRS = ("usr/share/backgrounds/", "usr/share/wallpapers/", "/wallpaper/", "/login/")
_ARTWORK_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".svg")
_WXH = re.compile(r"^(\d+)x(\d+)$")


def artwork_files(root: Path) -> list[Path]:
    """The wallpapers of an unpacked artwork package, one file per picture.

    Packages ship one wallpaper at several resolutions (`contents/images/1920x1080.png`,
    `.../5120x2880.png`, portrait variants): only the largest landscape one is kept.
    """
    candidates = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (
            path.is_file()
            and path.suffix.lower() in _ARTWORK_SUFFIXES
            and any(d in "/" + rel for d in _ARTWORK_DIRS)
            and "screenshot" not in path.name.lower()
        ):
            candidates.append(path)
    best: dict[Path, tuple[tuple[int, int], Path]] = {}
    chosen = []
    for path in candidates:
        m = _WXH.match(path.stem)
        if not m:
            chosen.append(path)
            continue
        w, h = int(m.group(1)), int(m.group(2))
        rank = (int(w >= h), w * h)  # landscape first, then the largest
        if path.parent not in best or rank > best[path.parent][0]:
            best[path.parent] = (rank, path)
    chosen += [p for _, p in best.values()]
    return sorted(chosen)


def build_artworks_from(
    packages: dict[str, Path],
    out: Path,
    *,
    size: int = 256,
    crops: int = 30,
    line_weight: float = 3.0,
    detail: float = 0.5,
    progress: bool = True,
) -> BuildStats:
    """Wallpapers from unpacked packages ({package: root}): each one downscaled whole,
    plus up to `crops` random square crops (at random scales) so a few dozen wallpapers
    give a few thousand pairs. All pairs of one wallpaper share a split. Each pair's
    license is read from its package's debian/copyright (`packs.build_pictures`)."""
    from training.datasets.packs import build_pictures

    files = [(pkg, root, path) for pkg, root in packages.items() for path in artwork_files(root)]
    return build_pictures(files, out, "artworks", roots=packages, size=size, max_crops=crops,
                          line_weight=line_weight, detail=detail, progress=progress,
                          info={"crops_per_wallpaper": crops})


def build_artworks(
    out: Path, *, size: int = 256, crops: int = 30, cache_dir: Path | None = None,
    packages: tuple[str, ...] = reg.ARTWORK_PACKAGES, line_weight: float = 3.0,
    detail: float = 0.5, progress: bool = True,
) -> BuildStats:
    roots = {}
    for pkg in packages:
        roots[pkg] = reg.fetch_deb(pkg, cache_dir)
    return build_artworks_from(roots, out, size=size, crops=crops, line_weight=line_weight,
                               detail=detail, progress=progress)


# Skin-tone variants of one emoji differ only in one color; keep the default one.
_SKIN_TONE_NAME = re.compile(r"-(?:medium-light|medium-dark|light|medium|dark)-skin-tone")
_SHAPES = ("path", "circle", "ellipse", "rect", "polygon", "polyline", "line")


def iconify_icons(package_dir: Path) -> list[tuple[str, str]]:
    """`(name, standalone SVG)` of every visible icon of an Iconify JSON package.

    Aliases (the same art under another name), hidden icons and skin-tone variants are
    left out: they would only repeat pictures.
    """
    import json

    data = json.loads((package_dir / "icons.json").read_text(encoding="utf-8"))
    default_w, default_h = data.get("width", 16), data.get("height", 16)
    icons = []
    for name, icon in sorted(data["icons"].items()):
        if icon.get("hidden") or _SKIN_TONE_NAME.search(name):
            continue
        w, h = icon.get("width", default_w), icon.get("height", default_h)
        left, top = icon.get("left", 0), icon.get("top", 0)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
               f' width="{w}" height="{h}" viewBox="{left} {top} {w} {h}">{icon["body"]}</svg>')
        icons.append((name, svg))
    return icons


def strokes_only(svg: str) -> str | None:
    """The outline drawing of an SVG whose art has dark outline strokes: every stroked
    shape kept, black, unfilled; every fill-only shape dropped. None without strokes.

    Streamline's emoji draw each shape's outline as a stroke over its fill, so this
    is a real line-art page of the same picture (like OpenMoji's black set).
    """
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    ET.register_namespace("", "http://www.w3.org/2000/svg")
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    found = False

    def visit(node: ET.Element, stroked: bool) -> None:
        nonlocal found
        for child in list(node):
            tag = child.tag.removeprefix(ns)
            stroke = child.get("stroke")
            here = stroked if stroke is None else stroke not in ("none", "transparent")
            if tag in _SHAPES:
                if here and child.get("opacity") is None:
                    child.set("fill", "none")
                    child.set("stroke", "#000")
                    found = True
                else:
                    node.remove(child)
            elif tag in ("g", "svg"):
                child.attrib.pop("fill", None)
                if stroke is not None:
                    child.set("stroke", "#000" if here else "none")
                visit(child, here)
            elif tag in ("use",):
                node.remove(child)  # references fills in <defs>: not an outline
    visit(root, stroked=False)
    return ET.tostring(root, encoding="unicode") if found else None


def build_iconify_pairs(
    package_dir: Path,
    out: Path,
    set_name: str,
    *,
    size: int = 256,
    line_weight: float = 3.0,
    detail: float = 0.5,
    limit: int | None = None,
    progress: bool = True,
) -> BuildStats:
    """One Iconify emoji set as pairs. Streamline's pages are its own outlines
    (`strokes_only`: real pairs); the other sets' pages come from the coloring-book
    filter."""
    from training.datasets.builders import is_colorless
    from training.filters import coloring_book

    info_reg, _ = reg.ICONIFY_SETS[set_name]
    real_pairs = set_name == "streamline"
    icons = iconify_icons(package_dir)
    if limit is not None:
        icons = icons[:limit]
    pages = ("the set's own outline strokes (real pairs)" if real_pairs else
             f"coloring-book filter (line_weight={line_weight}, detail={detail})")
    info = {"attribution": info_reg.attribution, "packages": list(info_reg.packages),
            "size": size, "pages": pages}
    with DatasetWriter(out, set_name, info_reg.license, "lineart", info=info) as writer:
        stats = writer.stats
        for name, svg in progress_bar(icons, len(icons), set_name, progress):
            source = f"{set_name}/{name}"
            if writer.has_source(source):
                stats.skipped += 1
                continue
            try:
                color = render_svg(svg, size)
                if real_pairs:
                    lines = strokes_only(svg)
                    if lines is None:
                        stats.fail(source, "no outline strokes")
                        continue
                    page = render_svg(lines, size).convert("L")
                else:
                    page = None
            except (PictureError, ValueError) as exc:
                stats.fail(source, str(exc)[:200])
                continue
            if is_colorless(color):
                stats.colorless += 1
                continue
            if page is None:
                page = coloring_book(color, line_weight=line_weight, detail=detail)
            writer.add(color, page, source, split_key=f"{set_name}:{name}")
    return stats


def build_iconify(
    set_name: str, out: Path, *, size: int = 256, cache_dir: Path | None = None,
    limit: int | None = None, line_weight: float = 3.0, detail: float = 0.5,
    progress: bool = True,
) -> BuildStats:
    package = reg.fetch_iconify(set_name, cache_dir)
    return build_iconify_pairs(package, out, set_name, size=size, line_weight=line_weight,
                               detail=detail, limit=limit, progress=progress)
