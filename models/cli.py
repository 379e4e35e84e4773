"""`colorbot colorize` and `colorbot family`: the colorizing core from the shell.

Heavy imports (torch, the pipeline) happen inside the handlers so `colorbot --help`
stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.options import KINDS, MAX_STRENGTH

if TYPE_CHECKING:
    from models.family import Family

log = logging.getLogger(__name__)


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= MAX_STRENGTH:
        raise argparse.ArgumentTypeError(f"strength must be between 0 and {MAX_STRENGTH:g}")
    return value


def _seed(text: str) -> int:
    # The worker's rule, so a seed tried here colors the same through the bot.
    from models.worker.engine import BadRequest, parse_seed

    try:
        value = parse_seed(text)
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    if value is None:
        raise argparse.ArgumentTypeError("give a seed, or leave --seed out")
    return value


def register(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter

    p = subparsers.add_parser(
        "colorize", formatter_class=DefaultsHelpFormatter,
        help="color page files with the family, offline",
        description=(
            "Color each PAGE with every family member (or the ones named with --member). "
            "Writes OUT/<page stem>/<member>.png and OUT/<page stem>/sheet.png; a page's "
            "earlier colorings there are removed first, so the folder holds this run's only. "
            "A progress bar with ETA shows on a terminal."
        ),
    )
    p.add_argument("pages", nargs="+", metavar="PAGE", type=Path, help="image files")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (one subfolder per page)")
    p.add_argument(
        "--member", action="append", default=None, metavar="NAME",
        help="only this member (repeat for several); default: the whole family",
    )
    p.add_argument(
        "--strength", type=_strength, default=1.0,
        help="chroma multiplier, 0..4 (default 1; colors stay inside sRGB)",
    )
    p.add_argument(
        "--no-fill", dest="fill", action="store_false", default=None,
        help="don't flatten each region enclosed by lines to one color "
        "(default: flatten on line art, not on photos)",
    )
    p.add_argument(
        "--kind", choices=KINDS, default="auto",
        help="page kind; auto detects line art vs grayscale photo (default)",
    )
    p.add_argument(
        "--seed", type=_seed, default=None, metavar="N",
        help="0..2147483647: another plausible coloring, the same for the same N "
        "(default: none, each member's most likely coloring)",
    )
    p.add_argument("--family", default=None,
                   help="family folder or manifest (default: $COLORBOT_FAMILY or the bundled one)")
    p.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--batch", type=int, default=4, help="pages per network call (default 4)")
    p.set_defaults(handler=colorize_command)

    f = subparsers.add_parser("family", help="list the family members",
                              formatter_class=DefaultsHelpFormatter)
    f.add_argument("--json", action="store_true", help="machine-readable output (JSON list)")
    f.add_argument("--family", default=None,
                   help="family folder or manifest (default: $COLORBOT_FAMILY or the bundled one)")
    f.set_defaults(handler=family_command)

    from models.worker.cli import register_worker_command  # `colorbot worker` (issue 3)
    register_worker_command(subparsers)


def _family_path(arg: str | None) -> str | None:
    if arg:
        return arg
    from colorbot.settings import Settings

    return Settings.from_env().family_path or None


def _load_family(arg: str | None) -> Family | None:
    from models.family import Family
    from models.registry import FamilyError

    try:
        return Family.load(_family_path(arg))
    except FamilyError as exc:
        print(f"colorbot: {exc}", file=sys.stderr)
        return None


def _unique_stems(pages: list[Path]) -> list[str]:
    """Output folder names: page stems, made unique when two pages share one."""
    seen: dict[str, int] = {}
    stems = []
    for page in pages:
        stem = page.stem or "page"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}-{n + 1}")
    return stems


def _remove_earlier_outputs(folder: Path, member_names: list[str]) -> None:
    """Delete what an earlier run wrote for this page (any member's PNG, the sheet), so a
    run with fewer --member leaves no stale colorings; other files are left alone."""
    for name in (*member_names, "sheet"):
        (folder / f"{name}.png").unlink(missing_ok=True)


def colorize_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.images import PageError, load_page
    from models.pipeline import ColorizeOptions, Colorizer
    from models.registry import FamilyError
    from models.sheet import contact_sheet

    family = _load_family(args.family)
    if family is None:
        return 2
    try:
        names = list(dict.fromkeys(args.member)) if args.member else family.names
        members = [family.get(name) for name in names]
    except FamilyError as exc:
        print(f"colorbot: {exc}", file=sys.stderr)
        return 2
    options = ColorizeOptions(strength=args.strength, fill=args.fill, kind=args.kind,
                              seed=args.seed)
    colorizer = Colorizer(family, device=args.device)
    failures = 0
    stems = _unique_stems(args.pages)
    batch = max(1, args.batch)
    with tqdm(total=len(args.pages), unit="page", disable=None, file=sys.stderr) as bar:
        for start in range(0, len(args.pages), batch):
            loaded = []  # (page path, stem, image, prepared)
            end = start + batch
            chunk = zip(args.pages[start:end], stems[start:end], strict=True)
            for path, stem in chunk:
                try:
                    image = load_page(path)
                    loaded.append((path, stem, image, colorizer.prepare(image, options)))
                except PageError as exc:
                    failures += 1
                    bar.write(f"colorbot: {path}: {exc}", file=sys.stderr)
                    bar.update(1)
            if not loaded:
                continue
            prepared_pages = [p for *_, p in loaded]
            colorings = {m.name: colorizer.run_member(m.name, prepared_pages) for m in members}
            for i, (path, stem, image, prepared) in enumerate(loaded):
                folder = args.out / stem
                folder.mkdir(parents=True, exist_ok=True)
                _remove_earlier_outputs(folder, family.names)
                row = [(m, colorings[m.name][i]) for m in members]
                for member, coloring in row:
                    coloring.save(folder / f"{member.name}.png")
                contact_sheet(image, row).save(folder / "sheet.png")
                log.debug("%s: %s", path, prepared.info())
                bar.update(1)
    done = len(args.pages) - failures
    print(
        f"colored {done} of {len(args.pages)} page(s) with {len(members)} member(s) -> {args.out}",
        file=sys.stderr,
    )
    return 1 if failures else 0


def family_rows(family: Family) -> list[dict[str, Any]]:
    from models.family import build_network, parameter_count

    rows = []
    for m in family.members:
        rows.append(
            {
                "name": m.name,
                "emoji": m.emoji,
                "version": m.version,
                "architecture": m.architecture,
                "parameters": parameter_count(build_network(m)),
                "kind": m.kind,
                "work_size": m.work_size,
                "description": m.description,
                "trained_on": m.trained_on,
                "license": m.license,
            }
        )
    return rows


def family_command(args: argparse.Namespace) -> int:
    family = _load_family(args.family)
    if family is None:
        return 2
    rows = family_rows(family)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    header = f"{'member':<12} {'emoji':<5} {'ver':>3}  {'architecture':<12} {'params':>10}  about"
    print(header)
    for r in rows:
        print(
            f"{r['name']:<12} {r['emoji']:<5} {r['version']:>3}  {r['architecture']:<12} "
            f"{r['parameters']:>10,}  {r['description']}"
        )
    return 0
