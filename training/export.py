"""Turn a training run into a family member: fp16 weights, manifest entry, model card.

`export_member(run_dir, family_dir, ...)` reads the run's checkpoint, writes
`<name>.safetensors` (fp16, through `models.family.save_weights`), copies the run's
growing-up GIF and loss curves next to it, writes the model card `<name>.md` and adds
or replaces the member in the family's `manifest.json` (the version goes up by one
when a member of that name was there with other weights or config). Exporting again
with `eval_report` (from `colorbot evaluate` on the exported member) puts the
evaluation table in the card and keeps the version.

The bundled family (`models/family/`, part of the source tree and of the installed
package) is written only when asked for with `into_bundled=True` (`--into-bundled`).
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from models.family import (
    BUNDLED_FAMILY_DIR,
    MANIFEST_NAME,
    Family,
    FamilyMember,
    parameter_count,
    save_weights,
)
from training.train import CHECKPOINT_NAME, TrainConfig, build_network, load_checkpoint

MAX_WEIGHTS_BYTES = 10 * 1024 * 1024


def hardware_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu} ({os.cpu_count()} cores), {gpu}"


class BundledFamilyRefused(ValueError):
    """An export aimed at the bundled family without `into_bundled=True`."""


def is_bundled_family(path: str | Path) -> bool:
    """True when `path` is the bundled family folder (or inside it)."""
    folder, bundled = Path(path).resolve(), BUNDLED_FAMILY_DIR.resolve()
    return folder == bundled or bundled in folder.parents


def _load_family(family_dir: Path) -> Family:
    if (family_dir / MANIFEST_NAME).exists():
        return Family.load(family_dir)
    return Family(family_dir, [])


def export_member(run_dir: str | Path, family_dir: str | Path, name: str, emoji: str,
                  description: str, work_size: int, trained_on: str = "", license: str = "",
                  collection: str = "", net_overrides: dict[str, Any] | None = None,
                  eval_report: dict[str, Any] | None = None,
                  notes: str = "", dataset_command: str = "",
                  into_bundled: bool = False, memory: bool = True) -> FamilyMember:
    """Export the run in `run_dir` as member `name` of the family in `family_dir`.

    `net_overrides` changes inference-only config fields (e.g. the classification
    head's `ab_temperature`); the trained weights are used as they are. Raises
    `BundledFamilyRefused` before writing anything when `family_dir` is the bundled
    family and `into_bundled` is False.
    """
    run_dir, family_dir = Path(run_dir), Path(family_dir)
    if is_bundled_family(family_dir) and not into_bundled:
        raise BundledFamilyRefused(
            f"{family_dir} is the bundled family (part of the source tree); export into "
            "another folder with --family DIR, or pass --into-bundled to change it on purpose"
        )
    ckpt = load_checkpoint(run_dir / CHECKPOINT_NAME)
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = build_network(cfg)
    net.load_state_dict(ckpt["trainer"]["model"])
    net_config = net.cfg.to_dict()
    if net_overrides:
        net_config.update(net_overrides)
    family_dir.mkdir(parents=True, exist_ok=True)
    weights = f"{name}.safetensors"
    sha = save_weights(net, family_dir / weights)
    size = (family_dir / weights).stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{weights} is {size / 1e6:.1f} MB; members must stay under 10 MB")
    gif = ""
    if (run_dir / "growing_up.gif").exists():
        gif = f"{name}_growing_up.gif"
        shutil.copyfile(run_dir / "growing_up.gif", family_dir / gif)
    if (run_dir / "loss_curves.png").exists():
        shutil.copyfile(run_dir / "loss_curves.png", family_dir / f"{name}_loss_curves.png")

    family = _load_family(family_dir)
    old = next((m for m in family.members if m.name == name), None)
    training = {
        "architecture": cfg.architecture,
        "steps": ckpt["step"],
        "batch_size": cfg.batch_size,
        "crop_size": cfg.crop_size,
        "load_size": cfg.load_size,
        "wall_seconds": round(float(ckpt.get("wall_seconds", 0.0)), 1),
        "world_size": ckpt.get("world_size", 1),
        "hardware": hardware_description(),
        "final_losses": ckpt["history"][-1] if ckpt["history"] else {},
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("out_dir",)},
    }
    member = FamilyMember(
        name=name,
        emoji=emoji,
        description=description,
        architecture=cfg.architecture,
        config=net_config,
        weights=weights,
        # Same weights and config (e.g. re-exported to add the evaluation to the card):
        # the same member version, so votes on it stay together. Anything else is new.
        version=(old.version if old and old.weights_sha256 == sha and old.config == net_config
                 else old.version + 1) if old else 1,
        trained_on=trained_on,
        license=license,
        work_size=work_size,
        kind=cfg.kind,
        card=f"{name}.md",
        growing_up=gif,
        weights_sha256=sha,
        extra={"collection": collection or name, "parameters": parameter_count(net),
               "weights_bytes": size, "training": training,
               "dataset_command": dataset_command},
    )
    prior = training_prior(cfg, net)
    if prior is not None:
        member.extra["ab_prior"] = prior
    if memory and getattr(net.cfg, "ab_bins", 0):
        remembered = write_memory(cfg, net.cfg.ab_bins, family_dir / f"{name}.memory.safetensors")
        if remembered:
            member.extra["memory"] = f"{name}.memory.safetensors"
            member.extra["memory_pages"] = remembered
    if eval_report is not None:
        member.extra["evaluation"] = summarize_report(eval_report, name)
    members = [member if m.name == name else m for m in family.members]
    if old is None:
        members.append(member)
    family = Family(family_dir, members)
    family.save_manifest()
    write_card(family_dir, member, eval_report, notes,
               export_flag=" --into-bundled" if into_bundled else "")
    return member


def write_memory(cfg: TrainConfig, bins: int, path: Path) -> int:
    """The member's memory of its training pictures (`models/memory.py`) at `path`;
    how many pages it holds (0: the dataset is not here, nothing written)."""
    from training.memory import default_encoder, memory_from_dataset

    try:
        memory = memory_from_dataset(cfg.dataset, bins, seed=cfg.seed,
                                     encoder=default_encoder())
    except OSError:
        return 0
    if memory.cells.shape[0] == 0:
        return 0
    memory.save(path)
    return int(memory.cells.shape[0])


def training_prior(cfg: TrainConfig, net: torch.nn.Module) -> list[float] | None:
    """The a/b cell frequencies of the run's training colors, for the region decoder's
    logit adjustment; None for a regression head or when the dataset is not here."""
    from training.train import PairCrops, ab_cell_frequencies, read_manifest

    bins = getattr(getattr(net, "cfg", None), "ab_bins", 0)
    if not bins:
        return None
    try:
        rows = read_manifest(cfg.dataset, "train")
    except OSError:
        return None
    if not rows:
        return None
    data = PairCrops(cfg.dataset, rows, TrainConfig.from_dict(
        {**cfg.to_dict(), "cache_images": False}))
    prior = ab_cell_frequencies(data, bins, samples=min(400, len(rows)), seed=cfg.seed)
    return [round(float(v), 7) for v in prior]


def summarize_report(report: dict[str, Any], name: str) -> dict[str, Any]:
    entry = report["members"][name]
    return {"dataset": Path(report["dataset"]).name, "split": report["split"],
            "pages": report["pages"],
            **{row: entry[row] for row in entry if row not in ("by_kind", "pages_by_kind")}}


def write_card(family_dir: Path, member: FamilyMember, eval_report: dict[str, Any] | None,
               notes: str = "", export_flag: str = "") -> Path:
    """Write the member's model card (markdown) into the family folder."""
    from training.evaluate import format_table

    t = member.extra.get("training", {})
    minutes = t.get("wall_seconds", 0) / 60
    lines = [
        f"# {member.emoji} {member.name} (version {member.version})",
        "",
        member.description,
        "",
        "## Data",
        "",
        f"- Collection: {member.trained_on}",
        f"- License of the training data: {member.license}",
        f"- Page kind: {member.kind}; working resolution {member.work_size} px (long side)",
        "",
        "## Network",
        "",
        f"- Architecture: `{member.architecture}`, {member.extra.get('parameters', 0):,} "
        f"parameters, weights `{member.weights}` (fp16, "
        f"{member.extra.get('weights_bytes', 0) / 1e6:.2f} MB, sha256 "
        f"`{member.weights_sha256[:16]}…`)",
        f"- Config: `{json.dumps(member.config)}`",
        "",
        "## Training",
        "",
        f"- Steps: {t.get('steps')} × batch {t.get('batch_size')} (crops of "
        f"{t.get('crop_size')} px from pictures at {t.get('load_size')} px, random scale "
        "and horizontal flips, no rotations)",
        f"- Wall time: {minutes:.1f} min on {t.get('hardware')}, "
        f"{t.get('config', {}).get('threads') or 'default'} torch thread(s)"
        + (f", {t.get('world_size')} processes" if t.get("world_size", 1) > 1 else ""),
        f"- Final losses: `{json.dumps({k: round(v, 4) for k, v in t.get('final_losses', {}).items() if isinstance(v, float)})}`",  # noqa: E501
        f"- Full training config: `{json.dumps(t.get('config', {}))}`",
    ]
    if (family_dir / f"{member.name}_loss_curves.png").exists():
        lines.append(f"- Loss curves: ![loss curves]({member.name}_loss_curves.png)")
    lines += ["", "## Evaluation", ""]
    if eval_report is not None:
        lines += [
            "Through the real pipeline (`models.pipeline.Colorizer`, default options), on "
            "the collection's own test split; CIEDE2000 to the true colors (lower is "
            "better), Hasler–Süsstrunk colorfulness, share of line pixels kept dark.",
            "",
            "```",
            format_table(eval_report),
            "```",
        ]
    else:
        lines.append("Not evaluated yet: `colorbot evaluate " + member.name + " --split test`.")
    if member.growing_up:
        lines += ["", "## Growing up", "",
                  "The fixed validation pages, colored after each stage of training:", "",
                  f"![growing up]({member.growing_up})"]
    dataset_cmd = member.extra.get("dataset_command") or (
        f"colorbot dataset {member.extra.get('collection', member.name)} --out DATASET")
    lines += ["", "## Reproduce", "", "```",
              dataset_cmd,
              "colorbot train --config CONFIG.json --out RUN   # CONFIG.json: the training "
              "config above",
              f"colorbot export RUN{export_flag} --name {member.name} --emoji {member.emoji} "
              f"--work-size {member.work_size} --description '...'",
              f"colorbot evaluate {member.name} --split test --dataset DATASET",
              "```"]
    if notes:
        lines += ["", "## Notes", "", notes]
    path = family_dir / member.card
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
