"""`colorbot` subcommands for learning from votes.

    colorbot leaderboard [--guild ID] [--json] [--chart FILE] [--judge]
    colorbot retrain [--members a,b] [--no-promote] [--every MINUTES]
    colorbot promote MEMBER VERSION
    colorbot rollback MEMBER
    colorbot simulate-votes [--votes 2000] [--taste warm]

`training/cli.py` calls `register_vote_commands(subparsers)`. Heavy imports (torch)
happen inside the handlers, so `colorbot --help` stays fast.

The family these commands change is `COLORBOT_FAMILY` (or `--family`). The bundled
family inside the package is never modified: without `COLORBOT_FAMILY`, the first
retrain copies it to `<COLORBOT_DATA>/family` — point the worker there
(`COLORBOT_FAMILY`) to serve promoted versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.worker_client import WorkerClient
    from colorbot.settings import Settings
    from db import Database
    from training.leaderboard import LeaderboardRow
    from training.retrain import CycleReport

log = logging.getLogger(__name__)


def register_vote_commands(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter as fmt

    p = subparsers.add_parser(
        "leaderboard", help="rank the family by votes (favourite share)", formatter_class=fmt,
        description="Rank the members by the votes: each member's favourite share, the share "
        "of votes its coloring would get as the favourite if every member's coloring were "
        "shown (a favourite-choice model fitted to the colorings each vote saw), with "
        "bootstrap 95% intervals. Members whose intervals overlap share a rank. --judge "
        "gives the judge's head-to-head board instead (Elo scale).",
    )
    p.add_argument("--guild", type=int, default=None, help="one guild's votes (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON rows (default: a table)")
    p.add_argument("--chart", type=Path, default=None,
                   help="also write the chart PNG here (default: no chart)")
    p.add_argument("--rounds", type=int, default=200,
                   help="bootstrap rounds for the 95%% intervals (more: steadier intervals)")
    p.add_argument("--by-version", action="store_true",
                   help="rank member versions (default: members)")
    p.add_argument(
        "--judge",
        action="store_true",
        help="the judge's head-to-head instead of the votes: every two colorings of each "
        "voted page compared by the judge `colorbot retrain` trained (<data>/judge)",
    )
    p.set_defaults(handler=_leaderboard)

    p = subparsers.add_parser("retrain", help="learn from the votes: judge, fine-tune, gate",
                              formatter_class=fmt)
    _family_arg(p)
    p.add_argument("--members", default="", help="comma list (default: the whole family)")
    p.add_argument(
        "--datasets",
        default=None,
        help="datasets root for evaluation (default: $COLORBOT_DATASETS or <data>/datasets)",
    )
    p.add_argument("--steps", type=int, default=40, help="fine-tuning steps per member")
    p.add_argument("--size", type=int, default=128, help="fine-tuning page size (px)")
    p.add_argument("--judge-steps", type=int, default=400,
                   help="training steps of the judge that learns the voters' taste")
    p.add_argument("--guild", type=int, default=None,
                   help="learn from one guild's votes only (default: all guilds)")
    p.add_argument("--no-promote", action="store_true",
                   help="record candidates, promote none (default: promote what passes the gate)")
    p.add_argument(
        "--every",
        type=float,
        default=0.0,
        help="run again every N minutes, the compose retrainer service (default: 0, once)",
    )
    p.add_argument("--json", action="store_true",
                   help="print the cycle report as JSON (default: text)")
    p.add_argument("--webhook", default=None, metavar="URL",
                   help="Discord webhook that gets each cycle's result: who was promoted, by "
                   "how much, the new board (default: $COLORBOT_TRAINING_WEBHOOK; none)")
    p.set_defaults(handler=_retrain)

    p = subparsers.add_parser("promote", help="serve a member version (no gate)",
                              formatter_class=fmt)
    _family_arg(p)
    p.add_argument("member", help="member name, e.g. openmoji")
    p.add_argument("version", type=int, help="the version to serve (see colorbot family)")
    p.add_argument("--reason", default="promoted by hand", help="recorded with the promotion")
    p.set_defaults(handler=_promote)

    p = subparsers.add_parser("rollback", help="serve the parent of a member's served version",
                              formatter_class=fmt)
    _family_arg(p)
    p.add_argument("member", help="member name, e.g. openmoji")
    p.add_argument("--reason", default="rolled back by hand", help="recorded with the rollback")
    p.set_defaults(handler=_rollback)

    p = subparsers.add_parser(
        "simulate-votes", help="simulated voters with a hidden taste vote on real pages",
        formatter_class=fmt,
    )
    _family_arg(p)
    p.add_argument("--votes", type=int, default=2000, help="votes to cast in all")
    p.add_argument("--max-per-page", type=int, default=5, help="votes on one page at most")
    p.add_argument("--spread", choices=("realistic", "even"), default="realistic",
                   help="realistic: most pages one or two votes, a few many; even: the same "
                   "on every page")
    p.add_argument("--voters", type=int, default=60, help="distinct simulated voters")
    p.add_argument("--taste", default="faithful",
                   help="the hidden taste: faithful (closest to the true colors: needs "
                   "dataset pages) | mixed (faithful, vivid and warm voters) | warm | vivid "
                   "| flat")
    p.add_argument("--datasets", default=None,
                   help="where the pages come from, val/test splits "
                   "(default: $COLORBOT_DATASETS or <data>/datasets)")
    p.add_argument("--collections", default="noto,emojione",
                   help="dataset folders to take pages from (comma list; empty: all)")
    p.add_argument("--guilds", default="1,2,3", help="fake guild ids, comma list")
    p.add_argument("--seed", type=int, default=0, help="seed for pages, voters and votes")
    p.set_defaults(handler=_simulate)


def _family_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--family",
        default=None,
        help="family folder to change (default: $COLORBOT_FAMILY or <data>/family)",
    )


def _settings() -> Settings:
    from colorbot.settings import Settings

    return Settings.from_env()


def _datasets_root(settings: Settings, given: str | None) -> str:
    return given or str(settings.datasets_root)


def resolve_family(settings: Settings, given: str | None) -> Path:
    """The family folder to change; never the bundled one inside the package."""
    from models.registry import BUNDLED_FAMILY_DIR, copy_bundled_family

    root = Path(given or settings.family_path or Path(settings.data_dir) / "family")
    if root.name == "manifest.json":
        root = root.parent
    if root.resolve() == BUNDLED_FAMILY_DIR.resolve() and not given:
        raise SystemExit(
            "COLORBOT_FAMILY points at the bundled family inside the package; point it at a "
            "copy (or pass --family to change the bundled one on purpose)"
        )
    if copy_bundled_family(root):
        print(
            f"copied the bundled family to {root}; serve it with COLORBOT_FAMILY={root}",
            file=sys.stderr,
        )
    return root


async def _open_db(settings: Settings) -> Database:
    from db import Database

    db = Database.from_settings(settings)
    await db.upgrade()
    return db


def _leaderboard(args: argparse.Namespace) -> int:
    from training.leaderboard import (
        chart_png,
        format_table,
        head_to_head_leaderboard,
        leaderboard_rows,
    )

    settings = _settings()
    judge_dir = Path(settings.data_dir) / "judge"
    if args.judge and not (judge_dir / "judge.json").exists():
        print(f"no judge in {judge_dir} yet: `colorbot retrain` trains one from the votes",
              file=sys.stderr)
        return 1

    async def run() -> list[LeaderboardRow]:
        db = await _open_db(settings)
        try:
            if not args.judge:
                return await leaderboard_rows(
                    db, args.guild, rounds=args.rounds, by_version=args.by_version
                )
            from training.judge import load_judge, load_judged_preferences

            prefs = await load_judged_preferences(
                db, load_judge(judge_dir), args.guild, by_version=args.by_version
            )
            return await asyncio.to_thread(head_to_head_leaderboard, prefs, rounds=args.rounds)
        finally:
            await db.close()

    rows = asyncio.run(run())
    title = "The judge's head-to-head" if args.judge else "Family leaderboard"
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False))
    else:
        if args.judge:
            print(f"{title} (every two colorings of each voted page, compared by the judge)")
        print(format_table(rows))
    if args.chart:
        args.chart.write_bytes(chart_png(rows, title))
    return 0


def _retrain(args: argparse.Namespace) -> int:
    import time

    import torch

    from training.retrain import CycleConfig, FinetuneConfig, run_cycle

    settings = _settings()
    root = resolve_family(settings, args.family)
    cfg = CycleConfig(
        finetune=FinetuneConfig(size=args.size, steps=args.steps),
        judge_steps=args.judge_steps,
        members=[m for m in args.members.split(",") if m] or None,
        datasets_root=_datasets_root(settings, args.datasets),
        promote=not args.no_promote,
        guild_id=args.guild,
    )
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))

    from training.news import post_cycle, webhook_url

    webhook = webhook_url(args.webhook)

    async def once() -> Any:
        db = await _open_db(settings)
        workers = _workers(settings)

        async def news(report: CycleReport) -> None:
            from models.family import Family

            emojis = {m.name: m.emoji for m in Family.load(root).members}
            await post_cycle(webhook, report, db, guild_id=cfg.guild_id, emojis=emojis)

        try:
            return await run_cycle(
                db,
                root,
                cfg,
                workers=workers,
                judge_dir=Path(settings.data_dir) / "judge",
                on_finish=news if webhook else None,
            )
        finally:
            if workers is not None:
                await workers.close()
            await db.close()

    while True:
        try:
            report = asyncio.run(once())
        except ValueError as exc:  # nothing to learn from yet
            print(f"retrain: {exc}", file=sys.stderr)
            report = None
        except Exception:
            if args.every <= 0:
                raise
            # On a schedule, one failed cycle (a database hiccup, a worker away) must not
            # end the service: say what happened and try again next time.
            import traceback

            traceback.print_exc()
            print(f"retrain: cycle failed; next try in {args.every:g} minutes", file=sys.stderr)
            report = None
        if report is not None:
            if args.json:
                print(json.dumps(report.to_dict(), indent=2, default=str))
            else:
                print(
                    f"{report.votes} votes, {report.pairs} pairs on {report.pages} pages; "
                    f"judge held-out accuracy {report.judge.get('heldout_accuracy', 0):.1%}"
                )
                for m in report.members:
                    state = "PROMOTED" if m.promoted else "kept"
                    print(f"  {m.member} v{m.parent_version} -> v{m.version}: {state} ({m.reason})")
        if args.every <= 0:
            return 0 if report is not None else 1
        time.sleep(args.every * 60)


def _workers(settings: Settings) -> WorkerClient | None:
    """The worker client that tells the workers to reload (None without WORKER_URLS)."""
    if not settings.worker_urls:
        return None
    from bot.worker_client import WorkerClient

    return WorkerClient(settings.worker_urls, token=settings.worker_token,
                        admin_token=settings.worker_admin_token)


def _change_served(args: argparse.Namespace, rollback: bool) -> int:
    from models.registry import FamilyError, Registry, promote
    from models.registry import rollback as roll_back
    from models.validate import validate_candidate

    settings = _settings()
    registry = Registry(resolve_family(settings, args.family), validator=validate_candidate)

    async def run() -> Any:
        db = await _open_db(settings)
        workers = _workers(settings)
        try:
            if rollback:
                return await roll_back(registry, db, args.member, reason=args.reason,
                                       workers=workers)
            return await promote(registry, db, args.member, args.version, reason=args.reason,
                                 workers=workers)
        finally:
            if workers is not None:
                await workers.close()
            await db.close()

    try:
        entry = asyncio.run(run())
    except FamilyError as exc:  # refused, or nothing to roll back to: nothing changed
        print(f"{'rollback' if rollback else 'promote'}: {exc}", file=sys.stderr)
        return 1
    done = "rolled back to" if rollback else "now serves"
    print(f"{entry.name} {done} v{entry.version} ({entry.weights})")
    return 0


def _promote(args: argparse.Namespace) -> int:
    return _change_served(args, rollback=False)


def _rollback(args: argparse.Namespace) -> int:
    return _change_served(args, rollback=True)


def _simulate(args: argparse.Namespace) -> int:
    from models.family import Family
    from training.simulate import TASTES, dataset_pages, pages_for_simulation, simulate_votes

    if args.taste not in TASTES:
        raise SystemExit(f"unknown taste {args.taste!r}; one of {', '.join(sorted(TASTES))}")
    taste = TASTES[args.taste]
    settings = _settings()
    family = Family.load(settings.family_path or None)
    n_pages = -(-args.votes // max(1, args.max_per_page)) * 3  # plenty: most get 1-2 votes
    root = _datasets_root(settings, args.datasets)
    collections = [c for c in args.collections.split(",") if c] or None
    if taste.needs_truth:
        pages = dataset_pages(root, seed=args.seed, collections=collections, limit=n_pages)
        if not pages:
            raise SystemExit(f"the {args.taste} taste compares with the true colors: no "
                             f"val/test pages with truth under {root}")
    else:
        pages = pages_for_simulation(n_pages, root, seed=args.seed)
    guilds = [int(g) for g in args.guilds.split(",") if g]

    async def run() -> Any:
        db = await _open_db(settings)
        try:
            return await simulate_votes(
                db,
                family,
                pages,
                taste=taste,
                n_votes=args.votes,
                n_voters=args.voters,
                guilds=guilds,
                seed=args.seed,
                spread=args.spread,
                max_per_page=args.max_per_page,
            )
        finally:
            await db.close()

    report = asyncio.run(run())
    shown = {k: v for k, v in report.to_dict().items() if k not in ("page_values", "page_sources")}
    print(json.dumps(shown, indent=2))
    return 0
