"""`colorbot` subcommands of the training package: dataset, train, evaluate, export,
shape-train and remember.

`colorbot dataset ...` comes from the data side (`training.datasets.cli`); the trainer
adds `train` (also under `torchrun --nproc_per_node N -m colorbot train ...`),
`evaluate` and `export`. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.family import Family
    from models.shape import ShapeEncoder

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from training.votes_cli import register_vote_commands

    try:
        from training.datasets.cli import register_dataset_commands
    except ImportError:  # the dataset builders are optional for the trainer's commands
        pass
    else:
        register_dataset_commands(subparsers)
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_export(subparsers)
    _register_shape(subparsers)
    register_vote_commands(subparsers)


# --------------------------------------------------------------------------- train


def _register_train(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter

    p = subparsers.add_parser(
        "train", help="train a family member on a dataset (resumable)",
        formatter_class=DefaultsHelpFormatter,
        description="Train a colorizer on a (page, color) dataset. Checkpoints, snapshot "
        "sheets, the growing-up GIF and loss curves go to --out. Under torchrun it trains "
        "with DistributedDataParallel (gloo on CPU, NCCL on GPUs). Options left out come "
        "from --config, else from the resumed run, else from the defaults shown here.",
    )
    p.add_argument("--dataset", type=Path,
                   help="dataset folder with manifest.jsonl (needed for a new run)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, pictures)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its saved config (options given "
                   "here, e.g. --steps, override it)")
    p.add_argument("--config", type=Path,
                   help="JSON file of TrainConfig fields (default: none; options here win)")
    p.add_argument("--arch", dest="architecture", choices=("unet", "pix2pix"),
                   help="unet: encoder-decoder; pix2pix: U-Net + PatchGAN (default: unet)")
    p.add_argument("--kind", choices=("lineart", "photo"),
                   help="lineart: predict L, a, b; photo: predict a, b (default: lineart)")
    p.add_argument("--steps", type=int,
                   help="optimizer steps of the whole run; --resume continues to it "
                   "(default: 2000)")
    p.add_argument("--batch-size", type=int,
                   help="pages per step per process (default: 16)")
    p.add_argument("--lr", type=float,
                   help="peak learning rate, warm-up then cosine decay (default: 0.002)")
    p.add_argument("--crop", dest="crop_size", type=int,
                   help="training crop size in px (default: 112)")
    p.add_argument("--load-size", type=int,
                   help="long side pictures are scaled to, in px (default: 144)")
    p.add_argument("--base-channels", type=int,
                   help="network width: channels of the first level (default: 16)")
    p.add_argument("--depth", type=int, help="network depth in levels (default: 4)")
    p.add_argument("--ab-bins", type=int,
                   help="U-Net: a/b classification cells per axis, odd; 0 = L1 regression "
                   "(default: 0)")
    p.add_argument("--rebalance", type=float,
                   help="class rebalancing lambda, 1 = off (default: 0.5)")
    p.add_argument("--snapshot-every", type=int,
                   help="steps between snapshot sheets of the validation pages (default: 200)")
    p.add_argument("--checkpoint-every", type=int,
                   help="steps between checkpoints (default: 100)")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads; 0 = torch's choice (default: 0)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ... (default: auto, CUDA if present)")
    p.add_argument("--workers", dest="num_workers", type=int,
                   help="DataLoader worker processes (default: 0)")
    p.add_argument("--max-minutes", type=float,
                   help="stop (checkpointed) after this long; 0 = no limit (default: 0)")
    p.add_argument("--limit", type=int,
                   help="only the first N training pairs; 0 = all (default: 0)")
    p.add_argument("--seed", type=int,
                   help="seed for init, crops and dropout (default: 0)")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                   help="CUDA: train in float32 (default: float16 autocast on CUDA)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (default: a bar)")
    p.add_argument("--webhook", default=None, metavar="URL",
                   help="Discord webhook that gets each snapshot sheet and the final card "
                   "(default: $COLORBOT_TRAINING_WEBHOOK; none)")
    p.set_defaults(handler=_train)


_NET_OPTIONS = ("base_channels", "depth", "ab_bins")


def _train(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.train import CHECKPOINT_NAME, load_checkpoint, train

    fields: dict[str, Any] = {}
    if args.config:
        fields.update(json.loads(args.config.read_text()))
    ckpt = args.out / CHECKPOINT_NAME
    if ckpt.exists():
        if not args.resume:
            print(f"{args.out} already has a checkpoint: pass --resume to continue it, or "
                  "choose another --out", file=sys.stderr)
            return 2
        fields = {**load_checkpoint(ckpt)["config"], **fields}
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k in TrainConfig.__dataclass_fields__}
    net = dict(fields.get("net", {}))
    net.update({k: getattr(args, k) for k in _NET_OPTIONS if getattr(args, k) is not None})
    if args.dataset is not None:
        overrides["dataset"] = str(args.dataset)
    fields.update(overrides)
    fields["net"] = net
    fields["out_dir"] = str(args.out)
    fields["resume"] = True
    if "dataset" not in fields:
        print("--dataset is required for a new run", file=sys.stderr)
        return 2
    cfg = TrainConfig.from_dict(fields)
    from training.news import TrainingNews, webhook_url

    url = webhook_url(args.webhook)
    news = TrainingNews(url, args.out.name, total_steps=cfg.steps) if url else None
    try:
        result = train(cfg, on_snapshot=news.snapshot if news else None,
                       on_finish=news.finished if news else None)
    finally:
        if news is not None:
            news.close()
    if result.world_size > 1 and not result.ranks_in_sync:
        log.error("DDP ranks ended with different weights")
        return 1
    print(f"{'finished' if result.finished else 'stopped'} at step {result.step} "
          f"({result.wall_seconds / 60:.1f} min); checkpoint {result.checkpoint}")
    if result.growing_up:
        print(f"growing up: {result.growing_up}")
    return 0


# --------------------------------------------------------------------------- evaluate


def _register_evaluate(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter

    p = subparsers.add_parser(
        "evaluate", help="score members against the true colors of a test split",
        formatter_class=DefaultsHelpFormatter,
        description="Color a dataset split through the pipeline and report mean CIEDE2000 "
        "to the true colors, colorfulness and lines kept dark, next to two baselines (the "
        "uncolored page; A/B-only, i.e. the coloring with the page's L kept). With several "
        "members, also their pairwise CIEDE2000 on the same pages.",
    )
    p.add_argument("members", nargs="+", metavar="MEMBER", help="family members to score")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="dataset split to color")
    p.add_argument("--dataset", type=Path,
                   help="dataset folder (default $COLORBOT_DATASETS/<member's collection>)")
    p.add_argument("--family", help="family folder or manifest (default: settings/bundled)")
    p.add_argument("--limit", type=int, default=0,
                   help="only the first N pages of the split (default: 0, all)")
    p.add_argument("--json", type=Path, help="where to save the report (default: "
                   "eval_<members>_<split>.json in the current folder)")
    p.add_argument("--device", default=None,
                   help="torch device: cpu, cuda ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: 0, torch's choice)")
    p.add_argument("--no-raw", dest="raw", action="store_false",
                   help="skip the 'network (no fill)' row")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from colorbot.settings import Settings
    from models.family import Family
    from training.evaluate import default_dataset, evaluate, format_table

    if args.threads:
        torch.set_num_threads(args.threads)
    family = Family.load(args.family or Settings.from_env().family_path or None)
    members = [family.get(m).name for m in args.members]
    if args.dataset is not None:
        groups = {args.dataset: members}
    else:  # each member on its own collection's split
        groups = {}
        for m in members:
            groups.setdefault(default_dataset(family.get(m)), []).append(m)
    reports = []
    for dataset, names in groups.items():
        report = evaluate(family, names, dataset, args.split, limit=args.limit,
                          device=args.device, raw=args.raw)
        print(format_table(report))
        print()
        reports.append(report)
    out = args.json or Path(f"eval_{'_'.join(members)}_{args.split}.json")
    body = reports[0] if len(reports) == 1 else {"reports": reports}
    out.write_text(json.dumps(body, indent=2) + "\n")
    print(f"saved {out}")
    return 0


# --------------------------------------------------------------------------- export


def _register_export(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter

    p = subparsers.add_parser(
        "export", help="make a training run a family member (fp16 weights, card, manifest)",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("run", type=Path, help="run folder (with checkpoint.pt)")
    p.add_argument("--name", required=True, help="member name (lower case; the vote key)")
    p.add_argument("--emoji", required=True, help="the voting emoji (no U+FE0F)")
    p.add_argument("--description", required=True, help="one line for /family and the card")
    p.add_argument("--work-size", type=int, default=256, help="working resolution (long side)")
    p.add_argument("--family", type=Path,
                   help="family folder to add the member to (default: $COLORBOT_FAMILY; the "
                   "bundled family only with --into-bundled)")
    p.add_argument("--into-bundled", action="store_true",
                   help="write into the bundled family in models/family/ (the source tree)")
    p.add_argument("--trained-on", default="",
                   help="what the member grew up on, for the card (default: empty)")
    p.add_argument("--license", default="",
                   help="license of the training pictures, for the card (default: empty)")
    p.add_argument("--collection", default="", help="dataset collection name (evaluation)")
    p.add_argument("--temperature", type=float,
                   help="U-Net classification head: annealed-mean temperature")
    p.add_argument("--dataset-command", default="",
                   help="the `colorbot dataset ...` command that built the data (for the card)")
    p.add_argument("--notes", default="", help="a paragraph for the card's Notes section")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="do not store a memory of the training pictures beside the weights "
                   "(the region decoder then uses the network alone)")
    p.add_argument("--eval", dest="eval_json", type=Path,
                   help="evaluation JSON for the card (from `colorbot evaluate`)")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from colorbot.settings import Settings
    from models.registry import BUNDLED_FAMILY_DIR
    from training.export import BundledFamilyRefused, export_member

    family = args.family or (BUNDLED_FAMILY_DIR if args.into_bundled
                             else Settings.from_env().family_path)
    if not family:
        print("colorbot export: say which family gets the member: --family DIR (e.g. a copy, "
              "`cp -r models/family myfamily`, served with COLORBOT_FAMILY=myfamily), or "
              "--into-bundled for the bundled family in models/family/", file=sys.stderr)
        return 2
    if Path(family).suffix == ".json":  # COLORBOT_FAMILY may name the manifest itself
        family = Path(family).parent
    report = json.loads(args.eval_json.read_text()) if args.eval_json else None
    overrides = {"ab_temperature": args.temperature} if args.temperature else None
    try:
        member = export_member(
            args.run, family, args.name, args.emoji, args.description,
            args.work_size, trained_on=args.trained_on, license=args.license,
            collection=args.collection, net_overrides=overrides, eval_report=report,
            notes=args.notes, dataset_command=args.dataset_command,
            into_bundled=args.into_bundled, memory=args.memory,
        )
    except BundledFamilyRefused as exc:
        print(f"colorbot export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {member.name} v{member.version}: {member.weights} "
          f"({member.extra['weights_bytes'] / 1e6:.2f} MB), card {member.card}")
    return 0


# --------------------------------------------------------------------- memories

def _register_shape(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "shape-train",
        help="train the shape embedding members recall their pictures by",
        description="Train the shape embedding (models/shape.py) on the same emoji drawn "
                    "by several sets (training splits only). Checkpoints in --out; run "
                    "again to resume. Copy OUT/shape.safetensors to "
                    "training/base/shape.safetensors to key new memories by it.",
    )
    p.add_argument("--datasets", required=True,
                   help="comma-separated emoji dataset folders (openmoji, noto, ...)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder (checkpoint, shape.safetensors, shape.json)")
    p.add_argument("--cache-dir", default=None,
                   help="download cache holding the OpenMoji package (for its names)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--batch", type=int, default=64, help="concepts per step (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--init", default=None,
                   help="start from this encoder (a shape.safetensors) instead of scratch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_shape_train)

    p = subparsers.add_parser(
        "remember",
        help="(re)build a member's memory of its collection",
        description="Rebuild MEMBER's memory (models/memory.py) from a dataset's training "
                    "split, keyed by the shipped shape embedding, and point the family's "
                    "manifest at it. No training run needed.",
    )
    p.add_argument("member", help="the member's name")
    _memory_args(p, "at most this many pages (default 6000)")
    p.set_defaults(handler=_remember)

    p = subparsers.add_parser(
        "remember-shared",
        help="(re)build the family's shared memory, recalled by every member",
        description="Build the family's shared memory (models/memory.py: MemberMemory) "
                    "from datasets' training splits, keyed by the shipped shape "
                    "embedding, and point every member with an a/b grid at it. Members "
                    "recall their own pictures first; the shared rows of a collection a "
                    "member remembers itself are skipped.",
    )
    _memory_args(p, "at most this many pages (default 12000)")
    p.set_defaults(handler=_remember_shared)


def _memory_args(p: argparse.ArgumentParser, limit_help: str) -> None:
    """The options `remember` and `remember-shared` share (see `_memory_family`)."""
    p.add_argument("--dataset", required=True, help="dataset folder(s), comma-separated")
    p.add_argument("--family", type=Path, default=None,
                   help="family folder (default $COLORBOT_FAMILY)")
    p.add_argument("--into-bundled", action="store_true",
                   help="write into the bundled family (models/family)")
    p.add_argument("--limit", type=int, default=None, help=limit_help)
    p.add_argument("--shape", default=None,
                   help="shape encoder to key by (default training/base/shape.safetensors; "
                        "'none': by ink layout)")


def _shape_train(args: argparse.Namespace) -> int:
    from training.shape import ShapeTrainConfig, train_shape

    datasets = [d for d in args.datasets.split(",") if d]
    missing = [d for d in datasets if not (Path(d) / "manifest.jsonl").exists()]
    if missing:
        print(f"colorbot shape-train: no dataset at {', '.join(missing)} "
              "(build it with `colorbot dataset ...`)", file=sys.stderr)
        return 2
    cfg = ShapeTrainConfig(datasets=datasets, cache_dir=args.cache_dir, steps=args.steps,
                           batch=args.batch, threads=args.threads, init=args.init)
    info = train_shape(cfg, args.out, progress=not args.no_progress)
    print(f"shape embedding: {info['pages']} pages, {info['concepts']} concepts "
          f"({info['shared_concepts']} drawn by several sets), {info['steps']} steps, "
          f"loss {info['final_loss']:.3f} -> {args.out / 'shape.safetensors'}")
    return 0


def _memory_family(args: argparse.Namespace, command: str) -> Family | None:
    """The family a `remember` command writes into, once its datasets are checked."""
    from colorbot.settings import Settings
    from models.family import Family
    from models.registry import BUNDLED_FAMILY_DIR

    root = args.family or (BUNDLED_FAMILY_DIR if args.into_bundled
                           else Settings.from_env().family_path)
    if not root:
        print(f"colorbot {command}: say which family: --family DIR or --into-bundled",
              file=sys.stderr)
        return None
    folders = [d for d in args.dataset.split(",") if d]
    missing = [d for d in folders if not (Path(d) / "manifest.jsonl").exists()]
    if missing:
        print(f"colorbot {command}: no dataset at {', '.join(missing)}", file=sys.stderr)
        return None
    return Family.load(root)


def _memory_encoder(args: argparse.Namespace) -> ShapeEncoder | None:
    """The shape encoder a `remember` command keys by (`--shape`)."""
    from training.memory import default_encoder

    if args.shape == "none":
        return None
    if args.shape:
        from training.shape import load_encoder

        return load_encoder(args.shape)
    return default_encoder()


def _remember_shared(args: argparse.Namespace) -> int:
    from training.memory import SHARED_MAX_PAGES, SHARED_MEMORY, memory_from_dataset

    family = _memory_family(args, "remember-shared")
    if family is None:
        return 2
    grids = {int(m.config.get("ab_bins", 0)) for m in family.members} - {0}
    if len(grids) != 1:
        print("colorbot remember-shared: the members do not share one a/b grid",
              file=sys.stderr)
        return 2
    memory = memory_from_dataset(args.dataset, grids.pop(),
                                 limit=args.limit or SHARED_MAX_PAGES,
                                 encoder=_memory_encoder(args))
    memory.save(family.root / SHARED_MEMORY)
    for member in family.members:
        if member.config.get("ab_bins"):
            member.extra = {**(member.extra or {}), "shared_memory": SHARED_MEMORY}
    family.save_manifest()
    print(f"the family's shared memory holds {memory.cells.shape[0]} pages of "
          f"{', '.join(memory.collections)} -> {family.root / SHARED_MEMORY}")
    return 0


def _remember(args: argparse.Namespace) -> int:
    from models.registry import FamilyError
    from training.memory import MAX_PAGES, memory_from_dataset

    family = _memory_family(args, "remember")
    if family is None:
        return 2
    try:
        member = family.get(args.member)
    except FamilyError as exc:
        print(f"colorbot remember: {exc}", file=sys.stderr)
        return 2
    bins = int(member.config.get("ab_bins", 0))
    if not bins:
        print(f"colorbot remember: {member.name} predicts no a/b cells; nothing to remember",
              file=sys.stderr)
        return 2
    memory = memory_from_dataset(args.dataset, bins, limit=args.limit or MAX_PAGES,
                                 encoder=_memory_encoder(args))
    name = f"{member.name}.memory.safetensors"
    memory.save(family.root / name)
    member.extra = {**(member.extra or {}), "memory": name,
                    "memory_pages": int(memory.cells.shape[0])}
    family.save_manifest()
    keyed = "the shape embedding" if memory.encoder is not None else "ink layout"
    print(f"{member.name} remembers {memory.cells.shape[0]} pages, keyed by {keyed} "
          f"-> {family.root / name}")
    return 0
