"""The learning-from-votes must-show run (issue 5): 2,000 simulated votes -> one retrain cycle.

    nice -n 10 .venv/bin/python benchmarks/retrain_cycle.py \
        --family models/family --datasets /work/datasets --votes 2000

1. copies the family to a work folder (the bundled one is never modified) and opens a
   fresh SQLite database there;
2. simulated voters with a hidden taste vote on the family's colorings of real pages
   (val/test splits of the datasets) through `db.Database` — the bot's own code;
3. the Bradley–Terry leaderboard from the db, compared with the taste's own order;
4. one timed retrain cycle (`training.retrain.run_cycle`) from those votes;
5. on *fresh* pages (never voted on, never trained on), each member's new version
   against its parent under the hidden taste.

Prints a summary and writes it as JSON (and the leaderboard chart) under --out, named
by taste (and seed, when not 0): `retrain_cycle_<taste>[_seed<N>].json` and
`..._leaderboard.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import Database  # noqa: E402
from models.family import Family  # noqa: E402
from models.registry import Registry  # noqa: E402
from training.leaderboard import (  # noqa: E402
    chart_png,
    format_table,
    leaderboard,
    leaderboard_rows,
)
from training.retrain import CycleConfig, FinetuneConfig, color_with, run_cycle  # noqa: E402
from training.simulate import TASTES, dataset_pages, simulate_votes, synthetic_page  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="models/family")
    p.add_argument("--datasets", default="/work/datasets")
    p.add_argument("--work", default="/tmp/colorbot-retrain-bench", help="scratch folder")
    p.add_argument("--out", default="benchmarks/results", help="where the summary goes")
    p.add_argument("--votes", type=int, default=2000)
    p.add_argument("--votes-per-page", type=int, default=10)
    p.add_argument("--voters", type=int, default=60)
    p.add_argument("--taste", choices=sorted(TASTES), default="warm")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="voters' softmax temperature (default: the taste's own)",
    )
    p.add_argument("--fresh-pages", type=int, default=60, help="pages for the after-check")
    p.add_argument("--steps", type=int, default=40, help="fine-tuning steps per member")
    p.add_argument("--size", type=int, default=128, help="fine-tuning page size")
    p.add_argument("--judge-steps", type=int, default=300)
    p.add_argument("--eval-pages", type=int, default=12, help="test pages per evaluation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


async def judge_check(db, taste, report, judge_dir: Path) -> dict:
    """On the held-out pages' vote pairs: how often the hidden taste itself agrees with
    the (noisy) votes — the ceiling for any judge — and how often the judge agrees with
    the noise-free taste."""
    import io

    from PIL import Image

    from training.judge import load_judge, score_colorings
    from training.votes import preferences_from_voted_pages

    rows = await db.voted_pages()
    held = set(report.heldout_pages)
    prefs = [p for p in preferences_from_voted_pages(rows).pairs if p.page_id in held]
    sha = {}
    page_sha = {}
    for row in rows:
        page_sha[row.page_id] = row.page_sha256
        for ref in (row.voted, *row.others):
            sha[ref.coloring_id] = ref.sha256
    judge = load_judge(judge_dir)

    def img(h: str) -> Image.Image:
        return Image.open(io.BytesIO(db.store.get(h))).convert("RGB")

    taste_of, judge_of = {}, {}
    for pid in held:
        cids = sorted(
            {
                c
                for p in prefs
                if p.page_id == pid
                for c in (p.winner_coloring_id, p.loser_coloring_id)
            }
        )
        if not cids:
            continue
        cols = [img(sha[c]) for c in cids]
        scores = score_colorings(judge, img(page_sha[pid]), cols)
        for c, col, s in zip(cids, cols, scores, strict=True):
            taste_of[c] = taste.score(col)
            judge_of[c] = s
    n = max(1, len(prefs))
    return {
        "pairs": len(prefs),
        "taste_vs_votes": round(
            sum(taste_of[p.winner_coloring_id] > taste_of[p.loser_coloring_id] for p in prefs) / n,
            4,
        ),
        "judge_vs_votes": round(
            sum(judge_of[p.winner_coloring_id] > judge_of[p.loser_coloring_id] for p in prefs) / n,
            4,
        ),
        "judge_vs_taste": round(
            sum(
                (judge_of[p.winner_coloring_id] > judge_of[p.loser_coloring_id])
                == (taste_of[p.winner_coloring_id] > taste_of[p.loser_coloring_id])
                for p in prefs
            )
            / n,
            4,
        ),
    }


async def page_scores(db, score) -> dict[int, dict[str, float]]:
    """{page id: {member: score}} for every voted page's colorings; `score(page, [colorings])`
    returns one number per coloring."""
    import io

    from PIL import Image

    def img(h: str) -> Image.Image:
        return Image.open(io.BytesIO(db.store.get(h))).convert("RGB")

    per_page: dict[int, dict[str, str]] = {}
    page_sha: dict[int, str] = {}
    for row in await db.voted_pages():
        page_sha[row.page_id] = row.page_sha256
        for ref in (row.voted, *row.others):
            per_page.setdefault(row.page_id, {})[ref.member] = ref.sha256
    out = {}
    for pid, by_member in per_page.items():
        names = sorted(by_member)
        values = score(img(page_sha[pid]), [img(by_member[m]) for m in names])
        out[pid] = dict(zip(names, values, strict=True))
    return out


def head_to_head(scores: dict[int, dict[str, float]]) -> dict:
    """For each pair of members, the share of pages where a's coloring scores above b's,
    and members ordered by their mean head-to-head share."""
    members = sorted({m for s in scores.values() for m in s})
    share: dict[str, dict[str, float]] = {a: {} for a in members}
    for a in members:
        for b in members:
            if a == b:
                continue
            both = [s for s in scores.values() if a in s and b in s]
            share[a][b] = round(sum(s[a] > s[b] for s in both) / max(1, len(both)), 4)
    mean_share = {a: round(float(np.mean(list(share[a].values()))), 4) for a in members}
    return {
        "pages": len(scores),
        "share_a_beats_b": share,
        "mean_head_to_head": mean_share,
        "order": sorted(members, key=lambda m: -mean_share[m]),
    }


async def taste_pairwise(db, taste) -> dict:
    """The hidden taste's own pairwise verdicts on the voted pages.

    `taste_order` ranks members by their *mean* taste score; the Bradley-Terry board
    estimates how often one member's coloring is *picked over* another's. The two can
    disagree (a member that is the favourite on a few pages and last on the rest is
    picked often yet loses most head-to-heads). This is the taste's head-to-head view.
    """
    return head_to_head(await page_scores(db, lambda _page, cols: [taste.score(c) for c in cols]))


async def judge_board(db, judge_dir: Path) -> dict:
    """`colorbot leaderboard --judge`: Bradley-Terry over every two colorings of each voted
    page as the judge compares them, also the pairs the votes never show (two colorings
    nobody picked)."""
    from training.judge import load_judge, load_judged_preferences

    rows = leaderboard(await load_judged_preferences(db, load_judge(judge_dir)), rounds=200)
    return {"order": [r.member for r in rows], "rows": [r.to_dict() for r in rows]}


def _dump(args: argparse.Namespace, out: dict) -> None:
    """Write what is known so far (a long run on a shared machine may be cut short)."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    _result_path(args).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")


def _result_path(args: argparse.Namespace, suffix: str = ".json") -> Path:
    seed = f"_seed{args.seed}" if args.seed else ""
    return Path(args.out) / f"retrain_cycle_{args.taste}{seed}{suffix}"


async def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    root = work / "family"
    shutil.copytree(args.family, root, ignore=shutil.ignore_patterns("versions", "*.tmp"))
    family = Family.load(root)
    taste = TASTES[args.taste]
    if args.temperature is not None:
        taste = dataclasses.replace(taste, temperature=args.temperature)
    out: dict = {
        "family": str(Path(args.family).resolve()),
        "taste": args.taste,
        "members": {m.name: {"version": m.version, "extra": m.extra} for m in family.members},
    }

    n_pages = -(-args.votes // args.votes_per_page)
    pool = dataset_pages(
        args.datasets, splits=("val", "test"), limit=n_pages + args.fresh_pages, seed=args.seed
    )
    if len(pool) < n_pages + args.fresh_pages:
        from training.simulate import PageSource

        pool += [
            PageSource(synthetic_page(k, 256), f"synthetic:{k}")
            for k in range(n_pages + args.fresh_pages - len(pool))
        ]
    vote_pages, fresh = pool[:n_pages], pool[n_pages : n_pages + args.fresh_pages]
    out["pages"] = {
        "voted": len(vote_pages),
        "fresh": len(fresh),
        "collections": sorted({p.collection for p in pool[: n_pages + len(fresh)]}),
    }

    db = Database(f"sqlite+aiosqlite:///{work / 'votes.sqlite3'}", store_dir=work / "store")
    await db.upgrade()
    try:
        t0 = time.perf_counter()
        sim = await simulate_votes(
            db,
            family,
            vote_pages,
            taste=taste,
            n_votes=args.votes,
            n_voters=args.voters,
            guilds=(1, 2, 3),
            seed=args.seed,
        )
        out["simulation"] = sim.to_dict()
        print(
            f"simulated {sim.votes} votes on {sim.pages} pages in {time.perf_counter() - t0:.0f}s;"
            f" votes for the taste's favourite: {sim.taste_best_share:.0%}",
            flush=True,
        )

        rows = await leaderboard_rows(db, rounds=200)
        board = [r.member for r in rows]
        out["leaderboard"] = [r.to_dict() for r in rows]
        out["taste_order"] = sim.taste_order
        out["leaderboard_matches_taste"] = board == sim.taste_order
        # Pairs of members: does the rating order agree with the taste's? And where the
        # bootstrap intervals do not overlap (the board is sure), is it always right?
        by = {r.member: r for r in rows}
        agree = sure = sure_right = total = 0
        for i, a in enumerate(sim.taste_order):
            for b in sim.taste_order[i + 1 :]:
                total += 1
                agree += by[a].rating > by[b].rating
                if by[a].lower > by[b].upper or by[b].lower > by[a].upper:
                    sure += 1
                    sure_right += by[a].lower > by[b].upper
        out["leaderboard_pairs"] = {
            "pairs": total,
            "agree": agree,
            "separated": sure,
            "separated_and_right": sure_right,
        }
        out["taste_pairwise"] = await taste_pairwise(db, taste)
        out["leaderboard_matches_taste_pairwise"] = board == out["taste_pairwise"]["order"]
        Path(args.out).mkdir(parents=True, exist_ok=True)
        _result_path(args, "_leaderboard.png").write_bytes(
            chart_png(rows, f"Leaderboard from {sim.votes} simulated votes ({args.taste} taste)")
        )
        _dump(args, out)
        print(format_table(rows))
        print("hidden taste order:", sim.taste_order, flush=True)

        cfg = CycleConfig(
            finetune=FinetuneConfig(size=args.size, steps=args.steps, seed=args.seed),
            judge_steps=args.judge_steps,
            eval_pages=args.eval_pages,
            datasets_root=args.datasets,
            seed=args.seed,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        load0 = os.getloadavg()[0]
        report = await run_cycle(db, root, cfg, judge_dir=work / "judge")
        cycle_s = time.perf_counter() - t0
        out["cycle"] = report.to_dict()
        out["cycle_seconds"] = round(cycle_s, 1)
        # The machine is shared: CPU seconds this process got, and the load around it.
        out["cycle_cpu_seconds"] = round(time.process_time() - c0, 1)
        out["load_average"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
        out["torch_threads"] = torch.get_num_threads()
        _dump(args, out)
        print(f"retrain cycle: {cycle_s:.0f}s; judge {report.judge}", flush=True)
        for m in report.members:
            print(f"  {m.member} v{m.version}: {'PROMOTED' if m.promoted else 'kept'} ({m.reason})")

        out["judge_check"] = await judge_check(db, taste, report, work / "judge")
        out["judge_board"] = await judge_board(db, work / "judge")
        out["judge_board_matches_taste"] = out["judge_board"]["order"] == sim.taste_order
        print("judge check:", out["judge_check"], flush=True)
        _dump(args, out)

        # Fresh pages: candidate (whether promoted or not) vs parent, under the hidden taste.
        family = Family.load(root)
        images = [p.image for p in fresh]
        after: dict = {}
        wins = total = 0
        for m in report.members:
            parent = Registry(root).version_entry(m.member, m.parent_version)
            cand = Registry(root).version_entry(m.member, m.version)
            par = [taste.score(c) for c in color_with(family, parent, images)]
            new = [taste.score(c) for c in color_with(family, cand, images)]
            w = int(sum(n > p for n, p in zip(new, par, strict=True)))
            after[m.member] = {
                "wins": w,
                "pages": len(images),
                "win_rate": w / len(images),
                "taste_parent": float(np.mean(par)),
                "taste_candidate": float(np.mean(new)),
            }
            wins += w
            total += len(images)
        out["fresh_pages_vs_parent"] = after
        out["fresh_win_rate"] = wins / max(1, total)
        out["must_show"] = {
            "judge_heldout_accuracy": report.judge["heldout_accuracy"],
            "judge_ok (>= 0.80)": report.judge["heldout_accuracy"] >= 0.80,
            "hidden_taste_on_same_heldout_votes": out["judge_check"]["taste_vs_votes"],
            "judge_agrees_with_hidden_taste": out["judge_check"]["judge_vs_taste"],
            "retrained_beat_parent_rate": round(out["fresh_win_rate"], 4),
            "retrained_ok (>= 0.65)": out["fresh_win_rate"] >= 0.65,
            "leaderboard_matches_taste": out["leaderboard_matches_taste"],
            "leaderboard_pairs": out["leaderboard_pairs"],
            "taste_pairwise_order": out["taste_pairwise"]["order"],
            "leaderboard_matches_taste_pairwise": out["leaderboard_matches_taste_pairwise"],
            "taste_favourite_pages": sim.taste_favourite_pages,
            "judge_board_order": out["judge_board"]["order"],
            "judge_board_matches_taste": out["judge_board_matches_taste"],
            "cycle_seconds": out["cycle_seconds"],
            "cycle_cpu_seconds": out["cycle_cpu_seconds"],
            "cycle_ok (<= 900)": out["cycle_seconds"] <= 900,
        }
        print(json.dumps({"fresh_pages_vs_parent": after, "must_show": out["must_show"]}, indent=2))
        return out
    finally:
        await db.close()


if __name__ == "__main__":
    a = parse_args()
    result = asyncio.run(main(a))
    _dump(a, result)
    print("written", _result_path(a))
