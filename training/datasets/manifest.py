"""The on-disk dataset format: a streaming, resumable manifest writer and its reader.

No rotation augmentation is ever stored or applied in this package: a horizontal line
means something else than a vertical one (the sky sits above the horizon, ground below,
faces are upright), so a rotated picture teaches wrong colors. Crops, scale changes and
horizontal flips (a mirror keeps "up" up) belong to the training loader
(`training.train.PairCrops`), not to the stored pairs. `read_manifest` is the one reader
of the format; the trainer reads through it too.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from models.options import PAGE_KINDS

MANIFEST = "manifest.jsonl"
INFO = "dataset.json"
SPLITS = ("train", "val", "test")
# Per-mille thresholds of the split: 90 % train, 5 % val, 5 % test.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SPLIT_EDGES = ((900, "train"), (950, "val"), (1000, "test"))


class DatasetBusyError(RuntimeError):
    """Another process is writing to the same dataset folder."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_for(key: str) -> str:
    """The fixed split of a content hash (hex) or any group key.

    A hex sha256 is used directly; any other string is hashed first. The split depends
    only on the key, so it never changes between builds, machines or Python versions.
    """
    digest = key if _HEX64.fullmatch(key) else sha256_hex(key.encode())
    bucket = int(digest[:16], 16) % 1000
    for edge, name in _SPLIT_EDGES:
        if bucket < edge:
            return name
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PairRecord:
    """One line of `manifest.jsonl` (field names are the contract in NOTES.md)."""

    id: str  # sha256 of the stored color PNG's bytes
    page: str  # path relative to the dataset folder, mode L PNG
    color: str  # path relative to the dataset folder, RGB PNG of the same size
    collection: str
    source: str  # where the picture came from (file, frame time, emoji code ...)
    license: str
    split: str  # train | val | test, fixed by hash
    kind: str  # lineart | photo
    width: int
    height: int


@dataclass
class BuildStats:
    """What a build did; `failed` counts inputs that could not be read or rendered."""

    written: int = 0
    skipped: int = 0  # already in the dataset (resumed build)
    duplicates: int = 0  # same or nearly the same picture as one already kept
    colorless: int = 0  # gray or black-and-white pictures: nothing to learn colors from
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # first few, for the summary
    split_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))

    def fail(self, source: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append(f"{source}: {reason}")

    def summary(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.split_counts.items())
        return (
            f"pairs written {self.written} ({splits}), skipped (already there) {self.skipped},"
            f" near-duplicates {self.duplicates}, colorless {self.colorless}, failed {self.failed}"
        )


def read_manifest(root: str | Path) -> Iterator[PairRecord]:
    """Yield the records of a dataset folder; a torn last line (interrupted build) is ignored."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield PairRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # compress_level 6 is deterministic across runs (same zlib), so ids are stable.
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class DatasetWriter:
    """Appends pairs to a dataset folder, one at a time.

    Resumable and idempotent: on open it reads the manifest that is already there; a pair
    whose id (or source) is known is not written again. Image files go to disk before the
    manifest line, so a crash leaves at most an orphan file that the next run rewrites.
    """

    def __init__(
        self,
        root: str | Path,
        collection: str,
        license: str,
        kind: str = "lineart",
        *,
        info: dict[str, Any] | None = None,
    ) -> None:
        if kind not in PAGE_KINDS:
            raise ValueError(f"kind must be lineart or photo, not {kind!r}")
        self.root = Path(root)
        self.collection = collection
        self.license = license
        self.kind = kind
        self.info = dict(info or {})
        self.stats = BuildStats()
        self.root.mkdir(parents=True, exist_ok=True)
        self._ids: set[str] = set()
        self._sources: set[str] = set()
        self._existing = dict.fromkeys(SPLITS, 0)
        for rec in read_manifest(self.root):
            self._ids.add(rec.id)
            self._sources.add(rec.source)
            self._existing[rec.split] = self._existing.get(rec.split, 0) + 1
        path = self.root / MANIFEST
        # Repair a torn last line so the next append starts on a line of its own.
        if path.exists() and path.stat().st_size:
            with path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    with path.open("ab") as out:
                        out.write(b"\n")
        self._manifest = path.open("a", encoding="utf-8")
        # One writer per dataset: two builds appending to one manifest would interleave.
        try:
            fcntl.flock(self._manifest.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._manifest.close()
            raise DatasetBusyError(f"{self.root} is being built by another process") from None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_source(self, source: str) -> bool:
        """True when a pair from this source is already in the dataset (resume by source)."""
        return source in self._sources

    def add(
        self,
        color: Image.Image,
        page: Image.Image,
        source: str,
        *,
        split_key: str | None = None,
        license: str | None = None,
    ) -> PairRecord | None:
        """Store one pair; returns its record, or None when the same picture is already there.

        `split_key` groups pairs that must share a split (crops of one wallpaper, frames
        of one scene, skin-tone variants of one emoji); by default the pair's own id.
        """
        color = color.convert("RGB")
        page = page.convert("L")
        if page.size != color.size:
            raise ValueError(f"page {page.size} and color {color.size} differ in size")
        color_png = encode_png(color)
        pair_id = sha256_hex(color_png)
        if pair_id in self._ids:
            self.stats.duplicates += 1
            return None
        folder = self.root / "pairs" / pair_id[:2]
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / f"{pair_id}.color.png", color_png)
        _write_atomic(folder / f"{pair_id}.page.png", encode_png(page))
        rec = PairRecord(
            id=pair_id,
            page=f"pairs/{pair_id[:2]}/{pair_id}.page.png",
            color=f"pairs/{pair_id[:2]}/{pair_id}.color.png",
            collection=self.collection,
            source=source,
            license=license or self.license,
            split=split_for(split_key or pair_id),
            kind=self.kind,
            width=color.width,
            height=color.height,
        )
        self._manifest.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")
        self._manifest.flush()
        self._ids.add(pair_id)
        self._sources.add(source)
        self.stats.written += 1
        self.stats.split_counts[rec.split] += 1
        return rec

    def close(self) -> None:
        if self._manifest.closed:
            return
        self._manifest.close()
        totals = dict.fromkeys(SPLITS, 0)
        for rec in read_manifest(self.root):
            totals[rec.split] = totals.get(rec.split, 0) + 1
        info = {
            "collection": self.collection,
            "license": self.license,
            "kind": self.kind,
            "pairs": sum(totals.values()),
            "splits": totals,
            "last_build": {
                "written": self.stats.written,
                "skipped": self.stats.skipped,
                "duplicates": self.stats.duplicates,
                "colorless": self.stats.colorless,
                "failed": self.stats.failed,
                "failures": self.stats.failures,
            },
            **self.info,
        }
        _write_atomic(
            self.root / INFO, (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()
        )


def dataset_summary(root: str | Path) -> dict[str, Any]:
    """Pairs per split and per license of a dataset folder."""
    splits = dict.fromkeys(SPLITS, 0)
    licenses: dict[str, int] = {}
    for rec in read_manifest(root):
        splits[rec.split] = splits.get(rec.split, 0) + 1
        licenses[rec.license] = licenses.get(rec.license, 0) + 1
    return {"pairs": sum(splits.values()), "splits": splits, "licenses": licenses}


def verify_dataset(root: str | Path) -> list[str]:
    """Problems with a dataset folder's pairs (missing files, wrong modes or sizes, a color
    file whose sha256 is not its id, duplicate ids); an empty list when all is well."""
    root = Path(root)
    problems: list[str] = []
    seen: set[str] = set()
    for rec in read_manifest(root):
        if rec.id in seen:
            problems.append(f"{rec.id}: listed twice")
        seen.add(rec.id)
        try:
            color_bytes = (root / rec.color).read_bytes()
            with Image.open(root / rec.page) as page, Image.open(io.BytesIO(color_bytes)) as color:
                if page.mode != "L" or color.mode != "RGB":
                    problems.append(f"{rec.id}: modes {page.mode}/{color.mode}")
                if page.size != color.size or color.size != (rec.width, rec.height):
                    problems.append(f"{rec.id}: sizes {page.size}/{color.size}")
        except OSError as exc:
            problems.append(f"{rec.id}: {exc}")
            continue
        if sha256_hex(color_bytes) != rec.id:
            problems.append(f"{rec.id}: color file hash differs from id")
        if rec.split not in SPLITS:
            problems.append(f"{rec.id}: unknown split {rec.split}")
    return problems
