"""Builders for a user's own pictures: a folder of color pictures, and a video.

Both stream: one picture (or frame) is in memory at a time, each pair is appended to the
manifest as soon as it is written, and a second run skips what is already there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.datasets.images import SVG_SUFFIXES, PictureError, fit_long_side, load_picture
from training.datasets.manifest import BuildStats, DatasetWriter
from training.filters import make_page

# Extensions worth trying with Pillow (plus SVG through resvg). Other files in the
# folder (notes, sidecars) are ignored rather than counted as failures.
PICTURE_SUFFIXES = frozenset(Image.registered_extensions()) | frozenset(SVG_SUFFIXES)


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: survives resizing and re-encoding, not cropping."""
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def _thumbnail(image: Image.Image) -> np.ndarray:
    """(768,) int16: a 16x16 RGB box-filtered thumbnail."""
    small = image.convert("RGB").resize((16, 16), Image.Resampling.BOX)
    return np.asarray(small, np.int16).reshape(-1)


class NearDuplicates:
    """Remembers the pictures kept; `seen(image)` is True for a near-copy of one of them.

    A near-copy is the same picture resized, re-encoded or very slightly changed: its
    16x16 color thumbnail differs by less than `max_difference` gray levels on average.
    (A 64-bit dhash alone is far too coarse for flat art: distinct icons with the same
    layout share it; here it only preselects candidates.) Recolored variants differ in
    the thumbnail and are kept: they teach colors.

    `for_dataset` starts from the pictures already stored, so a resumed build skips the
    same near-copies as an uninterrupted one.
    """

    def __init__(self, max_difference: float = 3.5, max_hash_distance: int = 14) -> None:
        self.max_difference = max_difference
        self.max_hash_distance = max_hash_distance
        self._count = 0
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._thumbs = np.zeros((1024, 768), dtype=np.int16)

    @classmethod
    def for_dataset(cls, root: str | Path, **kwargs) -> NearDuplicates:
        """An index seeded with the whole pictures (not crops) already in `root`."""
        from training.datasets.manifest import read_manifest

        index = cls(**kwargs)
        for rec in read_manifest(root):
            if "#crop" in rec.source:
                continue
            try:
                with Image.open(Path(root) / rec.color) as im:
                    index._add(dhash(im), _thumbnail(im))
            except OSError:
                continue
        return index

    def _add(self, h: int, thumb: np.ndarray) -> None:
        if self._count == len(self._hashes):  # grow by doubling: appends stay O(1)
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._thumbs = np.concatenate([self._thumbs, np.zeros_like(self._thumbs)])
        self._hashes[self._count] = h
        self._thumbs[self._count] = thumb
        self._count += 1

    def seen(self, image: Image.Image) -> bool:
        """True for a near-copy of a picture seen before; otherwise remembers this one."""
        h, thumb = dhash(image), _thumbnail(image)
        hashes = self._hashes[: self._count]
        candidates = np.flatnonzero(np.bitwise_count(hashes ^ np.uint64(h))
                                    <= self.max_hash_distance)
        if candidates.size:
            diff = np.abs(self._thumbs[candidates] - thumb).mean(axis=1)
            if float(diff.min()) < self.max_difference:
                return True
        self._add(h, thumb)
        return False


def is_colorless(image: Image.Image, min_share: float = 0.01) -> bool:
    """True when (almost) no pixel has a visible color: gray or black-and-white art.

    Such a picture teaches a colorizer nothing but gray, so builders skip it.
    """
    thumb = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), np.int16)
    spread = thumb.max(axis=2) - thumb.min(axis=2)  # 0 for a gray pixel
    return float((spread > 24).mean()) < min_share


def skip_picture(
    image: Image.Image, stats: BuildStats, near: NearDuplicates, skip_colorless: bool = True
) -> bool:
    """True (and counted in `stats`) when a picture is colorless or a near-duplicate."""
    if skip_colorless and is_colorless(image):
        stats.colorless += 1
        return True
    if near.seen(image):
        stats.duplicates += 1
        return True
    return False


def picture_files(folder: str | Path) -> list[Path]:
    """Picture files under `folder` (recursive, hidden entries skipped), sorted."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in PICTURE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def build_folder(
    folder: str | Path,
    out: str | Path,
    *,
    collection: str | None = None,
    license: str = "unknown",
    kind: str = "lineart",
    size: int = 256,
    line_weight: float = 3.0,
    detail: float = 0.5,
    skip_colorless: bool = True,
    progress: bool = True,
) -> BuildStats:
    """Pairs from every picture under `folder` (recursive; anything Pillow opens, and SVGs).

    The page is made by the coloring-book filter (kind "lineart") or is the picture's
    lightness (kind "photo"). Unreadable files are skipped and counted in `failed`.
    """
    folder = Path(folder)
    files = picture_files(folder)
    name = collection or folder.resolve().name
    info = {"source_folder": str(folder.resolve()), "size": size,
            "pages": _page_note(kind, line_weight, detail)}
    with DatasetWriter(out, name, license, kind, info=info) as writer:
        stats = writer.stats
        near = NearDuplicates.for_dataset(out)
        for path in tqdm(files, desc=name, unit="pic", disable=not progress):
            source = path.relative_to(folder).as_posix()
            if writer.has_source(source):
                stats.skipped += 1
                continue
            try:
                color = load_picture(path, size)
            except PictureError as exc:
                stats.fail(source, str(exc))
                continue
            if skip_picture(color, stats, near, skip_colorless):
                continue
            page = make_page(color, kind, line_weight=line_weight, detail=detail)
            writer.add(color, page, source)
    return stats


def _page_note(kind: str, line_weight: float, detail: float) -> str:
    if kind == "photo":
        return "photo mode: CIE L* of the color picture"
    return f"coloring-book filter (line_weight={line_weight}, detail={detail})"


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0..255) of two small grayscale thumbnails."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((32, 18), Image.Resampling.BILINEAR))


def sample_frames(path: str | Path, every: float = 0.5) -> Iterator[tuple[float, Image.Image]]:
    """(time in s, RGB frame) every `every` seconds of a video, decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_time = 0.0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if frame.time + 1e-6 < next_time:
                continue
            yield frame.time, frame.to_image()
            # Step from the grid, not from this frame, so the rate stays `every` even
            # when frame times do not land exactly on the grid.
            next_time += every * max(1, int((frame.time - next_time) // every) + 1)


def _video_duration(path: Path) -> float | None:
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:  # a broken video fails later, with a message
        return None
    return None


def build_video(
    video: str | Path,
    out: str | Path,
    *,
    every: float = 0.5,
    collection: str | None = None,
    license: str = "unknown",
    kind: str = "lineart",
    size: int = 256,
    line_weight: float = 3.0,
    detail: float = 0.5,
    min_difference: float = 3.0,
    scene_seconds: float = 30.0,
    progress: bool = True,
) -> BuildStats:
    """Pairs from one frame every `every` seconds of a video.

    A frame whose 32x18 thumbnail differs from the last kept frame by less than
    `min_difference` (mean absolute gray level, 0..255) is a near-duplicate and skipped,
    so long static scenes do not dominate. Frames of the same `scene_seconds` block share
    a split: neighbouring frames in train and test would make the test split too easy.
    """
    video = Path(video)
    name = collection or video.stem
    info = {"source_video": str(video.resolve()), "every_seconds": every, "size": size,
            "min_difference": min_difference, "pages": _page_note(kind, line_weight, detail)}
    duration = _video_duration(video)
    total = int(duration / every) + 1 if duration else None
    video_key = f"{video.name}:{video.stat().st_size}"
    with DatasetWriter(out, name, license, kind, info=info) as writer:
        stats = writer.stats
        last: np.ndarray | None = None
        bar = tqdm(total=total, desc=name, unit="frame", disable=not progress)
        try:
            for time, frame in sample_frames(video, every):
                bar.update(1)
                source = f"{video.name}@{time:.3f}s"
                color = frame.convert("RGB")
                thumb = _thumb(color)
                if last is not None and frame_difference(thumb, last) < min_difference:
                    stats.duplicates += 1
                    continue
                last = thumb
                if writer.has_source(source):
                    stats.skipped += 1
                    continue
                color = fit_long_side(color, size)
                page = make_page(color, kind, line_weight=line_weight, detail=detail)
                writer.add(color, page, source,
                           split_key=f"{video_key}:{int(time // scene_seconds)}")
        except Exception as exc:  # PyAV raises its own error types for broken streams
            stats.fail(video.name, f"video decoding stopped: {type(exc).__name__}: {exc}"[:200])
        finally:
            bar.close()
    return stats
