"""Loading a page someone posted: any common image file in, a clean RGB picture out.

`load_page` is the one door every page comes through (CLI, worker, bot), so it is
where input hygiene lives: EXIF orientation is applied, transparency lands on white
paper, palette / CMYK / 16-bit / grayscale modes become RGB, animations give their
first frame, and anything we should not or cannot decode is refused with a
`PageError` whose message is safe and kind to show to the person who posted it.

SVG policy: SVG is refused (with a message asking for a PNG or JPEG). Rendering
user-supplied SVG means running a second, much larger parser on untrusted input
(nested <use> bombs, huge canvases, external references), and Discord users post
raster images anyway; the training pipeline renders its own trusted SVG collections.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# 40 megapixels is a 7300 x 5500 page: more than any phone photo or scan we expect,
# far less than a decompression bomb. The color is predicted at ~256 px anyway.
DEFAULT_MAX_PIXELS = 40_000_000
# Discord's own upload limit for boosted servers is higher, but pages are small.
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
# Pages smaller than this carry too little to color.
MIN_SIDE = 8


class PageError(Exception):
    """A page we cannot color; `str(error)` is safe and kind to show to a user."""


# What a person is told, the same wherever the page is refused.
_BOMB = ("That image declares an enormous size (it may be a decompression bomb), "
         "so I won't open it.")
_NOT_AN_IMAGE = ("I can't read that file as an image. Please send a PNG, JPEG, WebP, GIF, "
                 "BMP or TIFF picture.")


def _sniff_svg(head: bytes) -> bool:
    text = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg"):
        return True
    return (text.startswith(b"<?xml") or text.startswith(b"<!doctype")) and b"<svg" in text


def _read_bytes(data: bytes | bytearray | memoryview | str | Path, max_bytes: int) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif isinstance(data, (str, Path)):
        path = Path(data)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise PageError(f"I can't find the file {path.name!r}.") from None
        except OSError:
            raise PageError(f"I can't read the file {path.name!r}.") from None
        if not path.is_file():
            raise PageError(f"{path.name!r} is not a file.")
        if size > max_bytes:
            raise PageError(_too_many_bytes(size, max_bytes))
        try:
            raw = path.read_bytes()
        except OSError:
            raise PageError(f"I can't read the file {path.name!r}.") from None
    else:
        raise TypeError(f"load_page takes bytes or a path, not {type(data).__name__}")
    if len(raw) > max_bytes:
        raise PageError(_too_many_bytes(len(raw), max_bytes))
    if not raw:
        raise PageError("That file is empty.")
    return raw


def _too_many_bytes(size: int, limit: int) -> str:
    return (
        f"That file is {size / 2**20:.1f} MB; I can take pages up to {limit / 2**20:.0f} MB. "
        "A smaller PNG or JPEG works fine."
    )


def _too_many_pixels(width: int, height: int, limit: int) -> str:
    return (
        f"That image is {width} x {height} pixels, more than I can color "
        f"(up to {limit / 1e6:.0f} megapixels). Please send a smaller version."
    )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, transparency composited on white paper."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit gray: Pillow's convert("L") clips at 255 instead of scaling.
        arr = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif arr.size and arr.max() > 255:
            arr = arr / (65535.0 if arr.max() <= 65535 else arr.max() / 255.0)
        elif mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    if mode == "RGB":
        return im
    return im.convert("RGB")


def load_page(
    data: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Decode a posted page into an RGB `PIL.Image` (EXIF-oriented, transparency on white).

    `data` is the file's bytes or a path. Raises `PageError` (a message for the user)
    for files that are empty, too large in bytes or pixels, not images, SVG,
    truncated or corrupt.
    """
    raw = _read_bytes(data, max_bytes)
    if _sniff_svg(raw):
        raise PageError(
            "That looks like an SVG drawing; I color PNG, JPEG, WebP, GIF, BMP and TIFF "
            "images. Please export it as a PNG (or send a screenshot)."
        )
    try:
        # Pillow's own bomb check (a warning past Image.MAX_IMAGE_PIXELS, an error past
        # twice that) is global; we keep it as a backstop, turned into an error here,
        # and apply our own, smaller limit from the header before decoding any pixel.
        # catch_warnings touches process-wide filter state for the few microseconds of
        # the header parse; it never changes what other code sees afterwards.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(raw))
            width, height = im.size
            if width * height > max_pixels:
                raise PageError(_too_many_pixels(width, height, max_pixels))
            if min(width, height) < MIN_SIDE:
                raise PageError(
                    f"That image is only {width} x {height} pixels; please send a bigger page."
                )
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)  # animations: color the first frame
            im.load()
    except PageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PageError(_BOMB) from None
    except UnidentifiedImageError:
        raise PageError(_NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        if "truncated" in str(exc).lower():
            raise PageError(
                "That image file is incomplete (it was cut off). Please send it again."
            ) from None
        raise PageError("That image file is damaged, so I can't read it.") from None
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the page
        pass
    try:
        return _to_rgb(im)
    except (OSError, ValueError) as exc:
        raise PageError(f"I can't use images of this kind ({im.mode} pixels).") from exc



def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """`image` scaled down (aspect kept) to at most `max_pixels`; as is when it fits.

    This is the memory budget of a page: everything after it (analysis, every member's
    compositing, PNG encoding) costs in proportion to the pixels, so a page bigger than
    the budget is colored at the budget's size and its coloring comes back at that size.
    """
    width, height = image.size
    if max_pixels <= 0 or width * height <= max_pixels:
        return image
    scale = (max_pixels / (width * height)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    # reducing_gap: a cheap integer box reduction first, then Lanczos on the smaller
    # picture (no full-size float copy).
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def page_size(data: bytes) -> tuple[int, int]:
    """A page's (width, height) from its header, without decoding a pixel.

    Raises `PageError` for what `load_page` would refuse at the header already.
    """
    if not data:
        raise PageError("That file is empty.")
    if _sniff_svg(data):
        return (0, 0)  # load_page refuses it with the SVG message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:
        raise PageError(_BOMB) from None
    except UnidentifiedImageError:
        raise PageError(_NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error):
        raise PageError("That image file is damaged, so I can't read it.") from None



def _srgb_to_linear_lut() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92).astype(np.float32)


_LINEAR = _srgb_to_linear_lut()
# Relative luminance Y (D65) of an sRGB gray level, and its CIE L*: same formula as
# models.colorspace.rgb_to_lab, tabulated because gray pages are the common case.
_Y_WEIGHTS = np.array([0.212671, 0.715160, 0.072169], dtype=np.float32)


def _y_to_lightness(y: np.ndarray) -> np.ndarray:
    return np.where(y > 0.008856, 116.0 * np.cbrt(y) - 16.0, 903.3 * y).astype(np.float32)


_GRAY_LIGHTNESS = _y_to_lightness(_LINEAR.astype(np.float64) * float(_Y_WEIGHTS.sum()))


def page_lightness(image: Image.Image) -> np.ndarray:
    """CIE L* in [0, 100] of an RGB page, (H, W) float32 — the L of `rgb_to_lab`."""
    rgb = np.asarray(image.convert("RGB"))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.array_equal(r, g) and np.array_equal(g, b):
        return np.asarray(_GRAY_LIGHTNESS[r])
    y = _LINEAR[r] * _Y_WEIGHTS[0] + _LINEAR[g] * _Y_WEIGHTS[1] + _LINEAR[b] * _Y_WEIGHTS[2]
    return _y_to_lightness(y)
