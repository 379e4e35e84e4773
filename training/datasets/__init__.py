"""Dataset builders: (coloring page, colored picture) pairs on disk, with a manifest.

Format (the trainer relies on it, see NOTES.md): a folder with `manifest.jsonl`, one JSON
object per pair, and the images under `pairs/<first two hex of id>/<id>.page.png` (mode L)
and `<id>.color.png` (RGB, same size). Builders stream: one picture at a time is in
memory and each pair is appended to the manifest as soon as its files are on disk, so a
build can be interrupted and run again (pairs already there are skipped by id/source).
"""

from training.datasets.manifest import (
    SPLITS,
    BuildStats,
    DatasetWriter,
    PairRecord,
    read_manifest,
    split_for,
)

__all__ = [
    "SPLITS",
    "BuildStats",
    "DatasetWriter",
    "PairRecord",
    "read_manifest",
    "split_for",
]
