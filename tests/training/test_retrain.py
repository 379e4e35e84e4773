"""One whole retrain cycle on tiny data: votes in the db -> judge -> fine-tune -> gate."""

from __future__ import annotations

import pytest

from db import Database
from models.family import Family
from models.registry import Registry
from tests.training.votes_helpers import fake_colorize, one_thread, tiny_family  # noqa: F401
from training.retrain import CycleConfig, FinetuneConfig, PreferenceTuneConfig, run_cycle
from training.simulate import HiddenTaste, pages_for_simulation, simulate_votes

pytestmark = pytest.mark.usefixtures("one_thread")


async def test_cycle_makes_new_versions_with_parents_and_decisions(tmp_path):
    root = tmp_path / "family"
    family = tiny_family(root, names=("sunny", "icy"))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", store_dir=tmp_path / "store")
    await db.upgrade()
    try:
        pages = pages_for_simulation(40, None, seed=5, size=48)

        def colorize(images):
            return [{m: c[m] for m in ("sunny", "icy")} for c in fake_colorize(images)]

        await simulate_votes(
            db,
            family,
            pages,
            taste=HiddenTaste(temperature=0.3),
            n_votes=120,
            n_voters=6,
            colorize=colorize,
        )
        cfg = CycleConfig(
            finetune=FinetuneConfig(size=48, steps=8, batch=4), judge="small",
            judge_size=32,
            judge_steps=40,
            heldout_share=0.25,
            gate_pages=10,
        )
        report = await run_cycle(db, root, cfg, judge_dir=tmp_path / "judge")
        assert report.votes == 120 and report.pairs == 120
        assert set(report.heldout_pages).isdisjoint(report.train_pages)
        assert 0.0 <= report.judge["heldout_accuracy"] <= 1.0
        assert (tmp_path / "judge" / "judge.safetensors").exists()

        served = Family.load(root)
        versions = {(v.member, v.version): v for v in await db.member_versions()}
        for outcome in report.members:
            assert outcome.version == 2 and outcome.reason
            assert Registry(root).version_entry_path(outcome.member, 2).exists()
            record = versions[(outcome.member, 2)]
            assert record.parent_id == versions[(outcome.member, 1)].id
            assert record.promoted == outcome.promoted and record.reason
            assert record.evaluation["gate"]["pages"] == 10
            assert served.get(outcome.member).version == (2 if outcome.promoted else 1)
        run = await db.get_training_run(report.training_run_id)
        assert run.status == "done" and run.metrics["votes"] == 120
    finally:
        await db.close()


async def test_cycle_tunes_distribution_members_on_vote_pairs_and_stores_the_judge_board(
    tmp_path,
):
    """Members with an a/b distribution head are tuned DPO-style, the judge stands on a
    backbone (a tiny stand-in for the shared base), the gate decides with the votes too,
    and the run's metrics carry the judge's board for /leaderboard."""
    import json

    import torch

    from models.family import FamilyMember, save_weights
    from models.unet import UNet, UNetConfig
    from tests.training.votes_helpers import EMOJIS
    from training.leaderboard import latest_judge_board

    cfg_net = UNetConfig(out_channels=3, base_channels=4, depth=2, max_channels=8, ab_bins=5)
    root = tmp_path / "family"
    members = []
    for k, name in enumerate(("sunny", "icy")):
        torch.manual_seed(k)
        sha = save_weights(UNet(cfg_net), root / f"{name}.safetensors")
        members.append(FamilyMember(name=name, emoji=EMOJIS[name], description=name,
                                    architecture="unet", config=cfg_net.to_dict(),
                                    weights=f"{name}.safetensors", work_size=48,
                                    weights_sha256=sha))
    Family(root, members).save_manifest()
    base = tmp_path / "base"
    torch.manual_seed(9)
    save_weights(UNet(cfg_net), base / "base.safetensors")
    net_fields = {k: v for k, v in cfg_net.to_dict().items() if k not in ("in_channels",
                                                                          "out_channels")}
    (base / "base.json").write_text(json.dumps({"config": {"net": net_fields,
                                                            "kind": "lineart"}}))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", store_dir=tmp_path / "store")
    await db.upgrade()
    try:
        pages = pages_for_simulation(30, None, seed=6, size=48)

        def colorize(images):
            return [{m: c[m] for m in ("sunny", "icy")} for c in fake_colorize(images)]

        await simulate_votes(db, Family.load(root), pages, taste=HiddenTaste(temperature=0.3),
                             n_votes=60, n_voters=6, colorize=colorize)
        cfg = CycleConfig(
            tune=PreferenceTuneConfig(size=48, steps=6, batch_pairs=8),
            backbone_dir=str(base), backbone_judge_size=48, judge_steps=40,
            heldout_share=0.3, gate_pages=10,
        )
        report = await run_cycle(db, root, cfg, judge_dir=tmp_path / "judge")
        assert report.judge["kind"] == "backbone"
        assert {m.method for m in report.members} == {"dpo"}
        for m in report.members:
            assert m.finetune["steps"] == 6
            assert {"parent", "candidate", "pairs"} <= set(m.gate["agreement"])
            # A promotion's reason lists the checks it passed after the judge's rate; a
            # refusal says what was missing ("needs more than", "may not promote", ...).
            refused = ("needs more than" in m.reason or "may not promote" in m.reason
                       or not m.reason.startswith("judge prefers it"))
            assert m.promoted == (not refused)
        found = await latest_judge_board(db)
        assert found is not None
        rows, about = found
        assert {r.member for r in rows} == {"sunny", "icy"} and rows[0].unit == "elo"
        assert about["training_run_id"] == report.training_run_id and about["pages"] > 0
    finally:
        await db.close()
