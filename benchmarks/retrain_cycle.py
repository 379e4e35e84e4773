"""The learning-from-votes must-show run: 2,000 simulated votes -> one retrain cycle.

    nice -n 10 .venv/bin/python benchmarks/retrain_cycle.py --taste faithful \
        --family models/family --datasets /work/datasets --votes 2000

1. copies the family to a work folder (the bundled one is never modified) and opens a
   fresh SQLite database there;
2. simulated voters with a hidden taste (`faithful`, `mixed`, `warm`, `vivid`, `flat`)
   vote on the family's colorings of real pages through `db.Database` — the bot's own
   code: the val/test pages of collections no member grew on (noto, emojione), each
   also mirrored (a page of its own: the collections are small), at most
   `--max-per-page` votes per page, most pages few (`training.simulate.vote_counts`);
3. the vote board (favourite share) from the db, against the taste's expected
   favourite share, for every pair of members whose intervals do not overlap;
4. one timed retrain cycle (`training.retrain.run_cycle`) from those votes; the judge's
   held-out accuracy beside the taste's own ceiling on the same held-out votes;
5. on *fresh* pages (never voted on, never trained on), each member's new version
   against its parent: mean CIEDE2000 to the true colors, the share of pages where it
   is closer, and the share where the taste prefers it.

Prints a summary and writes it as JSON (and the leaderboard chart) under --out, named
by taste (and seed, when not 0): `retrain_cycle_<taste>[_seed<N>].json` and
`..._leaderboard.png`.
"""

from __future__ import annotations

import argparse
import asyncio
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
from training.leaderboard import chart_png, format_table, leaderboard_rows  # noqa: E402
from training.retrain import (  # noqa: E402
    CycleConfig,
    FinetuneConfig,
    PreferenceTuneConfig,
    color_with,
    run_cycle,
)
from training.simulate import (  # noqa: E402
    MIRROR_SUFFIX,
    TASTES,
    as_population,
    dataset_pages,
    simulate_votes,
)


class CachedColorings:
    """The starting family's colorings of pages, kept on disk between runs.

    Simulated votes on the same pages with other tastes or seeds see exactly the same
    colorings, so they are made once (the family's weights and the page's pixels name
    the file). What `simulate_votes` takes as `colorize`.
    """

    def __init__(self, family: Family, folder: Path) -> None:
        import hashlib

        from models.pipeline import Colorizer

        key = hashlib.sha256(
            json.dumps([(m.name, m.version, m.weights_sha256) for m in family.members]).encode()
        ).hexdigest()[:16]
        self.folder = Path(folder) / key
        self.names = family.names
        self.colorizer = Colorizer(family, device="cpu")

    def _path(self, image, member: str) -> Path:
        import hashlib

        h = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        return self.folder / h[:2] / f"{h}.{member}.png"

    def __call__(self, images: list) -> list[dict]:
        from PIL import Image

        out: list[dict] = [{} for _ in images]
        missing = []
        for i, img in enumerate(images):
            paths = [self._path(img, m) for m in self.names]
            if all(p.exists() for p in paths):
                out[i] = {m: Image.open(p).convert("RGB") for m, p in zip(self.names, paths,
                                                                          strict=True)}
            else:
                missing.append(i)
        if missing:
            made = self.colorizer.colorize([images[i] for i in missing])
            for i, colored in zip(missing, made, strict=True):
                out[i] = colored
                for m, c in colored.items():
                    path = self._path(images[i], m)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    c.save(path)
        return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="models/family",
                   help="the family voted on (default: the bundled one, copied to --work)")
    p.add_argument("--datasets", default="/work/datasets",
                   help="folder holding the dataset folders (default /work/datasets)")
    p.add_argument("--collections", default="noto,emojione",
                   help="datasets whose val/test pages are voted on (no member grew on them; "
                        "default noto,emojione)")
    p.add_argument("--no-mirror", action="store_true",
                   help="do not add each page's mirror image as a page of its own")
    p.add_argument("--work", default="/tmp/colorbot-retrain-bench",
                   help="scratch folder (default /tmp/colorbot-retrain-bench)")
    p.add_argument("--cache", default="/work/cache/votes_colorings",
                   help="the starting family's colorings, kept between runs (default "
                        "/work/cache/votes_colorings)")
    p.add_argument("--out", default="benchmarks/results",
                   help="where the summary goes (default benchmarks/results)")
    p.add_argument("--votes", type=int, default=2000, help="votes simulated (default 2000)")
    p.add_argument("--max-per-page", type=int, default=5,
                   help="most votes one page gets (default 5)")
    p.add_argument("--spread", choices=("realistic", "even"), default="realistic",
                   help="votes per page: most pages 1-2, a few many (realistic, the "
                        "default), or the same for every page")
    p.add_argument("--voters", type=int, default=60, help="simulated voters (default 60)")
    p.add_argument("--taste", choices=sorted(TASTES), default="faithful",
                   help="what the voters prefer (default faithful)")
    p.add_argument("--fresh-pictures", type=int, default=30,
                   help="pictures (with their mirrors: twice the pages) nobody votes on "
                        "(default 30)")
    p.add_argument("--method", choices=("auto", "dpo", "target"), default="auto",
                   help="fine-tuning from the votes (default auto: the cycle's choice)")
    p.add_argument("--judge", choices=("auto", "backbone", "small"), default="auto",
                   help="judge kind (default auto: the cycle's choice)")
    p.add_argument("--steps", type=int, default=None,
                   help="tuning steps per member (default: the cycle's)")
    p.add_argument("--judge-steps", type=int, default=300,
                   help="judge training steps (default 300)")
    p.add_argument("--eval-pages", type=int, default=12,
                   help="test pages per evaluation (default 12)")
    p.add_argument("--board-only", action="store_true",
                   help="votes and the vote board only (no retrain cycle)")
    p.add_argument("--judge-only", action="store_true",
                   help="votes, the vote board and the judges on the cycle's held-out split "
                        "(today's backbone judge and the recall judge beside the taste's "
                        "ceiling), no tuning and no gate")
    p.add_argument("--judge-memory", default=None,
                   help="memory file(s) (comma-joined) the judge recalls true colors from "
                        "(sets $COLORBOT_JUDGE_MEMORY for the cycle; default: that variable, "
                        "unset: the bundled family's shared memory; 'none': no memory); "
                        "build them from training splits only")
    p.add_argument("--dump-pairs", default=None,
                   help="with --judge-only: save the judge's inputs and pairs (torch file; "
                        "default: not saved)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0, help="votes and split seed (default 0)")
    p.add_argument("--tag", default="", help="added to the result's file name (default none)")
    return p.parse_args(argv)


def board_vs_taste(rows: list, expected: dict[str, float]) -> dict:
    """Every pair of members whose 95% intervals do not overlap: does the board order
    them as the taste's expected favourite share does?"""
    by = {r.member: r for r in rows}
    names = sorted(expected, key=lambda m: -expected[m])
    separated = right = 0
    wrong = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = by[a], by[b]
            if ra.lower > rb.upper or rb.lower > ra.upper:
                separated += 1
                if ra.lower > rb.upper:
                    right += 1
                else:
                    wrong.append(f"{b} over {a}")
    return {
        "board_order": [r.member for r in rows],
        "taste_order": names,
        "pairs": len(names) * (len(names) - 1) // 2,
        "separated": separated,
        "separated_and_right": right,
        "wrong": wrong,
        "ok": separated == right,
    }


def judge_vs_ceiling(db_rows: list, heldout: set[int], values: dict, judge_acc: float) -> dict:
    """The taste's own accuracy on the held-out vote pairs (its choice probabilities,
    no noise): the ceiling for any judge on those votes."""
    from training.votes import preferences_from_voted_pages

    pairs = [p for p in preferences_from_voted_pages(db_rows).pairs if p.page_id in heldout]
    right = sum(values[p.page_id][p.winner] > values[p.page_id][p.loser] for p in pairs)
    ceiling = right / max(1, len(pairs))
    return {
        "pairs": len(pairs),
        "judge_heldout_accuracy": judge_acc,
        "taste_ceiling": round(ceiling, 4),
        "gap_points": round(100 * (ceiling - judge_acc), 1),
    }


async def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    if args.judge_memory:  # the setting, for the retrain code this process runs
        os.environ["COLORBOT_JUDGE_MEMORY"] = args.judge_memory
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    root = work / "family"
    shutil.copytree(args.family, root, ignore=shutil.ignore_patterns("versions", "*.tmp"))
    family = Family.load(root)
    taste = TASTES[args.taste]
    population = as_population(taste)
    out: dict = {
        "command": " ".join(sys.argv),
        "git": _git_state(),
        "family": str(Path(args.family).resolve()),
        "taste": args.taste,
        "taste_groups": population.to_dict(),
        "members": {m.name: {"version": m.version} for m in family.members},
        "judge_memory": args.judge_memory or os.environ.get("COLORBOT_JUDGE_MEMORY", ""),
    }

    pictures = dataset_pages(args.datasets, splits=("val", "test"), seed=args.seed,
                             collections=[c for c in args.collections.split(",") if c])
    fresh_src = pictures[: args.fresh_pictures]
    vote_src = pictures[args.fresh_pictures :]
    if not args.no_mirror:
        fresh = [q for p in fresh_src for q in (p, p.mirrored())]
        vote_pages = [q for p in vote_src for q in (p, p.mirrored())]
        # Shuffled so a page and its mirror are not posted one after the other.
        order = np.random.default_rng(args.seed).permutation(len(vote_pages))
        vote_pages = [vote_pages[i] for i in order]
    else:
        fresh, vote_pages = fresh_src, vote_src
    out["pages"] = {
        "pictures": len(pictures),
        "voted_pages_available": len(vote_pages),
        "fresh": len(fresh),
        "mirrored": not args.no_mirror,
        "collections": sorted({p.collection for p in pictures}),
    }
    cache = CachedColorings(family, Path(args.cache))

    db = Database(f"sqlite+aiosqlite:///{work / 'votes.sqlite3'}", store_dir=work / "store")
    await db.upgrade()
    try:
        t0 = time.perf_counter()
        sim = await simulate_votes(
            db, family, vote_pages, taste=taste, n_votes=args.votes, n_voters=args.voters,
            guilds=(1, 2, 3), seed=args.seed, colorize=cache, spread=args.spread,
            max_per_page=args.max_per_page,
        )
        out["simulation"] = {k: v for k, v in sim.to_dict().items()
                             if k not in ("page_values", "page_sources")}
        print(f"simulated {sim.votes} votes on {sim.pages} pages in "
              f"{time.perf_counter() - t0:.0f}s; votes per page {sim.votes_per_page}; "
              f"votes for the taste's favourite: {sim.taste_best_share:.0%}", flush=True)

        rows = await leaderboard_rows(db, rounds=200)
        out["vote_board"] = [r.to_dict() for r in rows]
        out["vote_board_vs_taste"] = board_vs_taste(rows, sim.taste_favourite_share)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        _result_path(args, "_leaderboard.png").write_bytes(
            chart_png(rows, f"Favourite share from {sim.votes} simulated votes ({args.taste})"))
        print(format_table(rows))
        print("taste's expected favourite share:",
              {k: round(100 * v, 1) for k, v in sim.taste_favourite_share.items()}, flush=True)
        _dump(args, out)
        if args.board_only:
            return out
        if args.judge_only:
            out["judges"] = await judges_only(args, db, sim, root)
            _dump(args, out)
            return out

        steps = {} if args.steps is None else {"steps": args.steps}
        cfg = CycleConfig(
            finetune=FinetuneConfig(seed=args.seed, **steps),
            tune=PreferenceTuneConfig(seed=args.seed, **steps),
            method=args.method,
            judge=args.judge,
            judge_steps=args.judge_steps,
            eval_pages=args.eval_pages,
            datasets_root=args.datasets,
            page_groups={pid: src.removesuffix(MIRROR_SUFFIX)
                         for pid, src in sim.page_sources.items()},
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
        out["judge_vs_ceiling"] = judge_vs_ceiling(
            await db.voted_pages(), set(report.heldout_pages), sim.page_values,
            report.judge["heldout_accuracy"])
        _dump(args, out)
        print(f"retrain cycle: {cycle_s:.0f}s; judge {report.judge}; "
              f"{out['judge_vs_ceiling']}", flush=True)
        for m in report.members:
            print(f"  {m.member} v{m.version}: {'PROMOTED' if m.promoted else 'kept'} "
                  f"({m.reason})", flush=True)

        # Fresh pages nobody voted on: each candidate (promoted or not) against its parent.
        out["fresh_pages_vs_parent"] = fresh_check(root, report, fresh, population, cache)
        out["must_show"] = must_show(args, out, report)
        print(json.dumps({"fresh_pages_vs_parent": out["fresh_pages_vs_parent"],
                          "must_show": out["must_show"]}, indent=2), flush=True)
        return out
    finally:
        await db.close()


async def judges_only(args: argparse.Namespace, db, sim, root: Path) -> dict:
    """Each judge kind fit on the votes' training pages and scored on the held-out
    pages, split as `run_cycle` splits them (by picture: a page and its mirror go
    together), beside the taste's ceiling on the same held-out votes."""
    import io

    from PIL import Image

    from training.judge import (
        BackboneJudgeConfig,
        JudgeTrainConfig,
        PairData,
        base_backbone,
        judge_inputs,
        split_pages,
        train_backbone_judge,
    )
    from training.votes import preferences_from_voted_pages

    rows = await db.voted_pages()
    prefs = preferences_from_voted_pages(rows)
    page_sha = {r.page_id: r.page_sha256 for r in rows}
    coloring_sha = {ref.coloring_id: ref.sha256 for r in rows for ref in (r.voted, *r.others)}
    # The cycle's split (training.retrain.run_cycle): groups are pictures.
    groups = {pid: sim.page_sources[pid].removesuffix(MIRROR_SUFFIX) for pid in page_sha}
    group_ids = {g: k for k, g in enumerate(sorted(set(groups.values())))}
    pair_pages = np.array([p.page_id for p in prefs.pairs])
    pair_groups = np.array([group_ids[groups[pid]] for pid in pair_pages])
    held_groups = split_pages(pair_groups, 0.2, args.seed)
    heldout = {pid for pid in page_sha if group_ids[groups[pid]] in held_groups}
    used = sorted({c for p in prefs.pairs for c in (p.winner_coloring_id, p.loser_coloring_id)})
    slot = {cid: i for i, cid in enumerate(used)}
    coloring_page = {}
    for p in prefs.pairs:
        coloring_page[p.winner_coloring_id] = coloring_page[p.loser_coloring_id] = p.page_id

    def image(sha: str):
        return Image.open(io.BytesIO(db.store.get(sha))).convert("RGB")

    pages = {pid: image(sha) for pid, sha in page_sha.items()}
    size = 128
    inputs = torch.stack([judge_inputs(pages[coloring_page[c]], image(coloring_sha[c]), size,
                                       letterbox_pages=True) for c in used])
    data = PairData(inputs, np.array([slot[p.winner_coloring_id] for p in prefs.pairs]),
                    np.array([slot[p.loser_coloring_id] for p in prefs.pairs]), pair_groups)
    if args.dump_pairs:
        torch.save({"inputs": inputs, "winners": data.winners, "losers": data.losers,
                    "groups": pair_groups, "held_groups": sorted(held_groups),
                    "pair_pages": pair_pages,
                    "winner_members": [p.winner for p in prefs.pairs],
                    "loser_members": [p.loser for p in prefs.pairs],
                    "page_values": sim.page_values}, args.dump_pairs)
    net, net_cfg = base_backbone()
    tc = JudgeTrainConfig(steps=args.judge_steps, lr=1e-2, weight_decay=1e-3, seed=args.seed)
    out: dict = {}
    kinds = {"backbone": {"memory": None}, "recall": {"memory": "auto"}}
    for kind, extra in kinds.items():
        t0 = time.perf_counter()
        result = train_backbone_judge(data, net, BackboneJudgeConfig(size=size, backbone=net_cfg),
                                      tc, heldout_pages=held_groups, **extra)
        out[kind] = {**result.metrics(), **judge_vs_ceiling(rows, heldout, sim.page_values,
                                                            result.heldout_accuracy)}
        out[kind]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"judge {kind}: {out[kind]}", flush=True)
    return out


def fresh_check(root: Path, report, fresh: list, population, cache) -> dict:
    """Per member: mean CIEDE2000 to the true colors (full size) of parent and
    candidate, the share of pages where the candidate is closer, and the share where
    the taste would pick the candidate's coloring over the parent's."""
    from skimage.color import rgb2lab

    from training.evaluate import mean_ciede2000
    from training.simulate import taste_features

    family = Family.load(root)
    images = [p.image for p in fresh]
    parents = cache(images)  # the starting family's colorings (the parents')
    truths = [rgb2lab(np.asarray(p.truth)) for p in fresh]
    after: dict = {}
    for m in report.members:
        cand = Registry(root).version_entry(m.member, m.version)
        new = color_with(family, cand, images)
        old = [c[m.member] for c in parents]
        de_old = [mean_ciede2000(rgb2lab(np.asarray(c)), t) for c, t in zip(old, truths,
                                                                          strict=True)]
        de_new = [mean_ciede2000(rgb2lab(np.asarray(c)), t) for c, t in zip(new, truths,
                                                                          strict=True)]
        picks = []
        for o, n, p in zip(old, new, fresh, strict=True):
            feats = np.stack([taste_features(o, p.truth), taste_features(n, p.truth)])
            picks.append(float(population.choice_probabilities(feats)[1]))
        mean_old, mean_new = float(np.mean(de_old)), float(np.mean(de_new))
        after[m.member] = {
            "promoted": m.promoted,
            "ciede2000_parent": round(mean_old, 3),
            "ciede2000_candidate": round(mean_new, 3),
            "ciede2000_change_pct": round(100 * (mean_new - mean_old) / mean_old, 2),
            "closer_share": round(float(np.mean([n < o for n, o in zip(de_new, de_old,
                                                                        strict=True)])), 4),
            "taste_prefers_candidate": round(float(np.mean([p > 0.5 for p in picks])), 4),
            "taste_pick_probability": round(float(np.mean(picks)), 4),
            "pages": len(images),
        }
    return after


def must_show(args: argparse.Namespace, out: dict, report) -> dict:
    fresh = out["fresh_pages_vs_parent"]
    promoted = [m for m, f in fresh.items() if f["promoted"]]
    jc = out["judge_vs_ceiling"]
    figures = {
        "judge_heldout_accuracy": jc["judge_heldout_accuracy"],
        "taste_ceiling": jc["taste_ceiling"],
        "judge_ok (>= 0.70, within 10 points)": jc["judge_heldout_accuracy"] >= 0.70
        and jc["gap_points"] <= 10,
        "promoted": promoted,
        "vote_board_ok": out["vote_board_vs_taste"]["ok"],
        "cycle_seconds": out["cycle_seconds"],
        "cycle_ok (<= 900)": out["cycle_seconds"] <= 900,
    }
    if args.taste in ("faithful", "mixed"):
        figures["promoted_closer (CIEDE2000 -5%, closer on >= 60%)"] = {
            m: fresh[m]["ciede2000_change_pct"] <= -5 and fresh[m]["closer_share"] >= 0.6
            for m in promoted}
        figures["none_worse"] = all(fresh[m]["ciede2000_change_pct"] <= 0 for m in promoted)
        figures["two_promoted"] = len(promoted) >= 2
    else:
        figures["judge_ok (>= 0.80)"] = jc["judge_heldout_accuracy"] >= 0.80
        rate = float(np.mean([f["taste_prefers_candidate"] for f in fresh.values()]))
        figures["retrained_beat_parents"] = round(rate, 4)
        figures["retrained_ok (>= 0.65)"] = rate >= 0.65
    return figures


def _git_state() -> str:
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "models", "training"],
                               capture_output=True, text=True, check=False).stdout.strip()
        return head + (" (models/ or training/ changed in the work tree)" if dirty else "")
    except OSError:
        return "unknown"


def _dump(args: argparse.Namespace, out: dict) -> None:
    """Write what is known so far (a long run on a shared machine may be cut short)."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    _result_path(args).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")


def _result_path(args: argparse.Namespace, suffix: str = ".json") -> Path:
    seed = f"_seed{args.seed}" if args.seed else ""
    tag = f"_{args.tag}" if args.tag else ""
    return Path(args.out) / f"retrain_cycle_{args.taste}{seed}{tag}{suffix}"


if __name__ == "__main__":
    a = parse_args()
    result = asyncio.run(main(a))
    _dump(a, result)
    print("written", _result_path(a))
