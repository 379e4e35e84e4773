"""Builders for the collections package registries carry (see `training.collections`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from training import collections as reg
from training.datasets.images import PictureError, render_svg
from training.datasets.manifest import BuildStats, DatasetWriter

# Skin-tone modifiers: variants of one emoji that differ only in skin tone share a split,
# so the test split never holds a recolored copy of a training picture.
_SKIN_TONES = re.compile(r"-?1F3F[B-F]", re.IGNORECASE)


def openmoji_group(stem: str) -> str:
    """The split group of an OpenMoji file name (hexcode without skin-tone parts)."""
    return "openmoji:" + _SKIN_TONES.sub("", stem).upper()


def _bar(items: Iterable, total: int, desc: str, progress: bool) -> Iterable:
    return tqdm(items, total=total, desc=desc, unit="pic", disable=not progress, smoothing=0.05)


def build_openmoji_pairs(
    package_dir: Path,
    out: Path,
    *,
    size: int = 256,
    limit: int | None = None,
    progress: bool = True,
) -> BuildStats:
    """Real pairs: OpenMoji ships each emoji as a color SVG and a black line-art SVG.

    `package_dir` is the npm package's folder (with color/svg and black/svg). The page is
    the black line art, the color the colored emoji, both rendered at `size` on white.
    """
    color_dir, black_dir = package_dir / "color" / "svg", package_dir / "black" / "svg"
    names = sorted(p.name for p in color_dir.glob("*.svg"))
    if limit is not None:
        names = names[:limit]
    info = {"attribution": reg.OPENMOJI.attribution, "packages": list(reg.OPENMOJI.packages),
            "size": size, "pages": "OpenMoji black line-art SVGs (real pairs)"}
    with DatasetWriter(out, "openmoji", reg.OPENMOJI.license, "lineart", info=info) as writer:
        stats = writer.stats
        for name in _bar(names, len(names), "openmoji", progress):
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
            writer.add(color, page, source, split_key=openmoji_group(stem))
    return stats


def build_openmoji(
    out: Path, *, size: int = 256, cache_dir: Path | None = None, limit: int | None = None,
    progress: bool = True,
) -> BuildStats:
    package = reg.fetch_npm("openmoji", reg.OPENMOJI_VERSION, cache_dir)
    return build_openmoji_pairs(package, out, size=size, limit=limit, progress=progress)


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
        for path in _bar(files, len(files), "fluent", progress):
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
