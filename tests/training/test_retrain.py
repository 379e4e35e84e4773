"""One whole retrain cycle on tiny data: votes in the db -> judge -> fine-tune -> gate."""

from __future__ import annotations

import pytest

from db import Database
from models.family import Family
from models.registry import Registry
from tests.training.votes_helpers import fake_colorize, one_thread, tiny_family  # noqa: F401
from training.retrain import CycleConfig, FinetuneConfig, run_cycle
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
            finetune=FinetuneConfig(size=48, steps=8, batch=4),
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
