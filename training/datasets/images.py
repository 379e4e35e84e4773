"""Reading color pictures for the builders: rasters through Pillow, SVGs through resvg.

Every picture comes out RGB, transparency composited on white paper (a coloring page is
white where nothing is drawn), EXIF-oriented, and no larger than `size` on its long side.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

# Pillow refuses gigantic images by default (decompression bombs); wallpapers can be
# 8K, so allow up to ~200 MP but no more.
Image.MAX_IMAGE_PIXELS = 200_000_000

SVG_SUFFIXES = (".svg", ".svgz")


class PictureError(Exception):
    """A picture that cannot be read or rendered; builders skip it and count it."""


def on_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def fit_long_side(image: Image.Image, size: int, *, upscale: bool = False) -> Image.Image:
    """Resize so the long side is `size` (never up, unless `upscale`), keeping the aspect."""
    long_side = max(image.size)
    if long_side == size or (long_side < size and not upscale):
        return image
    scale = size / long_side
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _render_resvg(kwargs: dict, size: int) -> Image.Image:
    import resvg_py

    # A tiny first render tells the aspect ratio (resvg keeps it when only one side is
    # given); the second renders the long side at exactly `size`.
    probe = Image.open(io.BytesIO(bytes(resvg_py.svg_to_bytes(**kwargs, width=64))))
    w, h = probe.size
    if not w or not h:
        raise PictureError("empty SVG")
    side = {"width": size} if w >= h else {"height": size}
    image = Image.open(io.BytesIO(bytes(resvg_py.svg_to_bytes(**kwargs, **side))))
    image.load()
    return image


def _render_cairosvg(kwargs: dict, size: int) -> Image.Image:
    import cairosvg

    src = {"url": kwargs["svg_path"]} if "svg_path" in kwargs else {
        "bytestring": kwargs["svg_string"].encode()}
    probe = Image.open(io.BytesIO(cairosvg.svg2png(**src, output_width=64)))
    w, h = probe.size
    side = {"output_width": size} if w >= h else {"output_height": size}
    image = Image.open(io.BytesIO(cairosvg.svg2png(**src, **side)))
    image.load()
    return image


def render_svg(svg: str | Path | bytes, size: int) -> Image.Image:
    """Render an SVG (path or markup) so its long side is `size` px; RGB on white.

    resvg first; files it refuses (old Inkscape files with sizes in pt and no viewBox,
    for example) get a second chance with cairosvg when that is installed.
    """
    kwargs: dict = {}
    if isinstance(svg, bytes):
        kwargs["svg_string"] = svg.decode("utf-8", errors="replace")
    elif isinstance(svg, Path) or (isinstance(svg, str) and not svg.lstrip().startswith("<")):
        kwargs["svg_path"] = str(svg)
        kwargs["resources_dir"] = str(Path(svg).parent)
    else:
        kwargs["svg_string"] = svg
    try:
        image = _render_resvg(kwargs, size)
    except Exception as exc:  # resvg raises plain ValueError/RuntimeError/panics
        first = f"SVG does not render: {exc}".splitlines()[0][:200]
        try:
            kwargs.pop("resources_dir", None)
            image = _render_cairosvg(kwargs, size)
        except Exception:  # cairosvg missing, or the file is broken for it too
            raise PictureError(first) from exc
    if max(image.size) != size:
        image = fit_long_side(image, size, upscale=True)
    return on_white(image)


def load_picture(path: str | Path, size: int) -> Image.Image:
    """A color picture (anything Pillow opens, or an SVG), RGB on white, long side <= size.

    Raises PictureError when the file cannot be read; animated pictures give their
    first frame.
    """
    path = Path(path)
    if path.suffix.lower() in SVG_SUFFIXES:
        return render_svg(path, size)
    try:
        with Image.open(path) as im:
            im.seek(0)
            # draft() lets JPEG decode at 1/2..1/8 scale: big wallpapers load fast.
            if im.format == "JPEG":
                im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)
            im.load()
            picture = on_white(im)
    except Exception as exc:  # Pillow raises many kinds for broken files
        raise PictureError(f"unreadable picture: {type(exc).__name__}: {exc}"[:200]) from exc
    return fit_long_side(picture, size)
