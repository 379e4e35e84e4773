"""`colorbot dataset ...`: build (page, color) pair datasets.

The trainer's `training/cli.py` calls `register_dataset_commands(subparsers)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.options import PAGE_KINDS
from training.collections import ICONIFY_SETS


def _common(p: argparse.ArgumentParser, *, filter_options: bool = True) -> None:
    p.add_argument("--out", required=True, type=Path, help="dataset folder (created/resumed)")
    p.add_argument("--size", type=int, default=256, help="long side of stored pairs (px)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--mark-ready", action="store_true",
                   help="write OUT/READY when the build ends with pairs in the dataset")
    if filter_options:
        p.add_argument("--line-weight", type=float, default=3.0,
                       help="coloring-book filter: line width in px at the stored size")
        p.add_argument("--detail", type=float, default=0.5,
                       help="coloring-book filter: 0 strong outlines only .. 1 fine detail")


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="download cache (default $COLORBOT_DATA/cache or ~/.cache/colorbot)")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N pictures, for tests (default: all)")


def _own(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=PAGE_KINDS, default="lineart",
                   help="lineart: pages by the coloring-book filter; photo: grayscale L pages")
    p.add_argument("--name", default=None, help="collection name (default: the file/folder name)")
    p.add_argument("--license", default="unknown", help="license recorded for every pair")


def register_dataset_commands(subparsers) -> None:
    """Add `dataset {folder,video,openmoji,fluent,openclipart,artworks}` to a CLI."""
    parser = subparsers.add_parser(
        "dataset", help="build a (page, color) pair dataset",
        description="Build (coloring page, colored picture) pairs with a manifest. Builds "
        "stream and resume: running the same command again adds only what is missing.",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="SOURCE", required=True)

    p = sub.add_parser("folder", help="every color picture under a folder (recursive, SVGs too)")
    p.add_argument("folder", type=Path, help="folder of color pictures (searched recursively)")
    _own(p)
    _common(p)
    p.add_argument("--keep-colorless", action="store_true",
                   help="keep gray / black-and-white pictures (skipped by default)")
    p.set_defaults(handler=_folder)

    p = sub.add_parser("video", help="one frame every --every seconds of a video")
    p.add_argument("video", type=Path, help="video file (anything PyAV/FFmpeg reads)")
    p.add_argument("--every", type=float, default=0.5, help="seconds between frames")
    p.add_argument("--min-difference", type=float, default=3.0,
                   help="skip a frame this close (mean gray-level difference of a thumbnail, "
                   "0..255) to the last kept one")
    _own(p)
    _common(p)
    p.set_defaults(handler=_video)

    p = sub.add_parser("openmoji", help="OpenMoji (npm): real line-art/color pairs, CC BY-SA 4.0")
    _common(p, filter_options=False)
    _cache(p)
    p.add_argument("--keep-colorless", action="store_true",
                   help="keep black-and-white emoji (letters, signs; skipped by default)")
    p.set_defaults(handler=_openmoji)

    p = sub.add_parser("fluent", help="Fluent emoji (npm fluentui-emoji), MIT")
    _common(p)
    _cache(p)
    p.add_argument("--styles", default="flat,modern",
                   help="comma list of flat, modern, high-contrast")
    p.set_defaults(handler=_fluent)

    p = sub.add_parser("openclipart", help="Open Clip Art (Debian openclipart-svg), public domain")
    _common(p)
    _cache(p)
    p.set_defaults(handler=_openclipart)

    p = sub.add_parser("iconify", help="an Iconify emoji set from npm: noto, emojione, fxemoji, "
                       "streamline (its own outlines as pages: real pairs), noto-v1, "
                       "emojione-v1 (the first designs)")
    p.add_argument("set", choices=tuple(ICONIFY_SETS),
                   help="which emoji set")
    _common(p)
    _cache(p)
    p.set_defaults(handler=_iconify)

    p = sub.add_parser("paintings", help="paintings for artworks: GCompris masterpieces, "
                       "Wesnoth story art and portraits, Hedgewars Art theme (Debian)")
    _common(p)
    p.add_argument("--cache-dir", type=Path, default=None, help="download cache")
    p.set_defaults(handler=_packs, builder="build_paintings")

    p = sub.add_parser("cartoon", help="cartoon pictures: GCompris activities' pictures and "
                       "Tux Paint stamps (Debian)")
    _common(p)
    p.add_argument("--cache-dir", type=Path, default=None, help="download cache")
    p.set_defaults(handler=_packs, builder="build_cartoon")

    p = sub.add_parser("info", help="pairs per split and license of dataset folders; --verify")
    p.add_argument("folders", type=Path, nargs="+", help="dataset folders (with manifest.jsonl)")
    p.add_argument("--verify", action="store_true",
                   help="also check every pair's files, sizes and color hash")
    p.set_defaults(handler=_info)

    p = sub.add_parser("artworks", help="desktop wallpapers (Debian artwork packages)")
    _common(p)
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="download cache (default $COLORBOT_DATA/cache or ~/.cache/colorbot)")
    p.add_argument("--crops", type=int, default=30, help="random crops per wallpaper")
    p.add_argument("--packages", default=None,
                   help="comma list of Debian packages (default: all artwork packages)")
    p.set_defaults(handler=_artworks)

    from colorbot.clihelp import DefaultsHelpFormatter

    for each in (parser, *sub.choices.values()):
        each.formatter_class = DefaultsHelpFormatter


def _filter_kwargs(args) -> dict:
    return {"line_weight": args.line_weight, "detail": args.detail}


def _finish(args, stats) -> int:
    from training.datasets.manifest import read_manifest

    print(f"{args.out}: {stats.summary()}")
    for failure in stats.failures:
        print(f"  failed: {failure}")
    if stats.failed > len(stats.failures):
        print(f"  ... and {stats.failed - len(stats.failures)} more failures")
    total = sum(1 for _ in read_manifest(args.out))
    print(f"{args.out}: {total} pairs in the dataset")
    if args.mark_ready and total:
        (args.out / "READY").write_text(stats.summary() + "\n", encoding="utf-8")
    return 0 if total else 1


def _folder(args) -> int:
    from training.datasets.builders import build_folder

    stats = build_folder(args.folder, args.out, collection=args.name, license=args.license,
                         kind=args.kind, size=args.size, skip_colorless=not args.keep_colorless,
                         progress=not args.no_progress, **_filter_kwargs(args))
    return _finish(args, stats)


def _video(args) -> int:
    from training.datasets.builders import build_video

    stats = build_video(args.video, args.out, every=args.every, collection=args.name,
                        license=args.license, kind=args.kind, size=args.size,
                        min_difference=args.min_difference, progress=not args.no_progress,
                        **_filter_kwargs(args))
    return _finish(args, stats)


def _openmoji(args) -> int:
    from training.datasets.collections import build_openmoji

    stats = build_openmoji(args.out, size=args.size, cache_dir=args.cache_dir,
                           limit=args.limit, skip_colorless=not args.keep_colorless,
                           progress=not args.no_progress)
    return _finish(args, stats)


def _fluent(args) -> int:
    from training.datasets.collections import build_fluent

    styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
    stats = build_fluent(args.out, size=args.size, cache_dir=args.cache_dir, limit=args.limit,
                         styles=styles, progress=not args.no_progress, **_filter_kwargs(args))
    return _finish(args, stats)


def _openclipart(args) -> int:
    from training.datasets.collections import build_openclipart

    stats = build_openclipart(args.out, size=args.size, cache_dir=args.cache_dir,
                              limit=args.limit, progress=not args.no_progress,
                              **_filter_kwargs(args))
    return _finish(args, stats)


def _iconify(args) -> int:
    from training.datasets.collections import build_iconify

    stats = build_iconify(args.set, args.out, size=args.size, cache_dir=args.cache_dir,
                          limit=args.limit, progress=not args.no_progress,
                          **_filter_kwargs(args))
    return _finish(args, stats)


def _packs(args) -> int:
    from training.datasets import packs

    build = getattr(packs, args.builder)
    stats = build(args.out, size=args.size, cache_dir=args.cache_dir,
                  progress=not args.no_progress, **_filter_kwargs(args))
    return _finish(args, stats)


def _artworks(args) -> int:
    from training import collections as reg
    from training.datasets.collections import build_artworks

    packages = (tuple(p.strip() for p in args.packages.split(",") if p.strip())
                if args.packages else reg.ARTWORK_PACKAGES)
    stats = build_artworks(args.out, size=args.size, crops=args.crops, cache_dir=args.cache_dir,
                           packages=packages, progress=not args.no_progress,
                           **_filter_kwargs(args))
    return _finish(args, stats)


def _info(args) -> int:
    from training.datasets.manifest import dataset_summary, verify_dataset

    bad_total = 0
    for folder in args.folders:
        summary = dataset_summary(folder)
        splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        print(f"{folder}: {summary['pairs']} pairs ({splits})")
        for license, count in sorted(summary["licenses"].items(), key=lambda kv: -kv[1]):
            print(f"  license {license}: {count}")
        if args.verify:
            problems = verify_dataset(folder)
            bad_total += len(problems)
            for problem in problems[:20]:
                print(f"  problem: {problem}")
            print(f"  verified: {len(problems)} problems")
    return 1 if bad_total else 0
