"""The gate refuses a worse candidate; promote/rollback move the served version and the
worker, told to reload with the admin token, serves it."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from bot.worker_client import WorkerClient
from db import Database
from models.family import Family
from models.registry import Registry, promote, rollback
from models.validate import validate_candidate
from models.worker.app import create_app
from models.worker.settings import WorkerSettings
from tests.training.votes_helpers import STYLES, fake_votes, one_thread, tiny_family  # noqa: F401
from training.judge import JudgeConfig, JudgeTrainConfig, PairData, judge_inputs, train_judge
from training.promotion import GateConfig, gate, save_candidate
from training.retrain import (
    FinetuneConfig,
    color_with,
    finetune_member,
    judge_pages,
    member_examples,
)
from training.simulate import HiddenTaste, synthetic_page

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def judge():
    torch.manual_seed(0)
    pages, colorings, pairs = fake_votes(20, 5, HiddenTaste(temperature=0.3), seed=1)
    index, inputs = {}, []
    for p, page in enumerate(pages):
        for m in STYLES:
            index[(p, m)] = len(inputs)
            inputs.append(judge_inputs(page, colorings[p][m], 32))
    data = PairData(
        torch.stack(inputs),
        np.array([index[(p, w)] for p, w, _ in pairs]),
        np.array([index[(p, lo)] for p, _, lo in pairs]),
        np.array([p for p, _, _ in pairs]),
    )
    return train_judge(
        data, JudgeConfig(size=32, base_channels=8), JudgeTrainConfig(steps=100)
    ).judge


def _candidate(family, judge, judge_weight: float):
    """Fine-tune `sunny` up (+) or down (-) the judge: a better or a deliberately worse one."""
    parent = family.get("sunny")
    pages = {i: synthetic_page(100 + i, 48) for i in range(12)}
    examples = member_examples("sunny", list(pages), pages, {}, 48)
    cfg = FinetuneConfig(
        size=48,
        steps=30,
        batch=6,
        lr=3e-4,
        judge_weight=judge_weight,
        anchor_weight=1.0,
        target_weight=0.0,
    )
    result = finetune_member(family.network("sunny"), examples, judge, cfg)
    version = Registry(family.root).next_version("sunny")
    return parent, save_candidate(family, "sunny", result.net, version, {"test": True})


def _decide(family, judge, parent, entry, parent_eval=None, cand_eval=None):
    held_out = [synthetic_page(900 + i, 48) for i in range(10)]
    cand = judge_pages(judge, held_out, color_with(family, entry, held_out))
    par = judge_pages(judge, held_out, color_with(family, parent, held_out))
    return gate(cand, par, parent_eval, cand_eval, GateConfig(margin=0.1, min_pages=8))


def test_gate_refuses_a_deliberately_worse_candidate(tmp_path, judge):
    family = tiny_family(tmp_path / "family", names=("sunny", "icy"))
    parent, worse = _candidate(family, judge, judge_weight=-2.0)
    decision = _decide(family, judge, parent, worse)
    assert not decision.promote
    assert decision.judge_win_rate < 0.5 and "judge prefers it on" in decision.reason


def test_gate_passes_a_better_candidate_unless_its_evaluation_regresses(tmp_path, judge):
    family = tiny_family(tmp_path / "family", names=("sunny", "icy"))
    parent, better = _candidate(family, judge, judge_weight=2.0)
    decision = _decide(family, judge, parent, better)
    assert decision.promote and decision.judge_win_rate > 0.6
    worse_eval = _decide(family, judge, parent, better, {"ciede2000": 10.0}, {"ciede2000": 11.0})
    assert not worse_eval.promote and "CIEDE2000" in worse_eval.reason


def test_gate_wants_enough_pages():
    assert not gate([1.0] * 3, [0.0] * 3, None, None, GateConfig(min_pages=8)).promote


async def _served(client, member: str) -> tuple[int, bytes]:
    family = await (await client.get("/v1/family")).json()
    version = next(m["version"] for m in family["members"] if m["name"] == member)
    import io

    from PIL import Image

    buf = io.BytesIO()
    synthetic_page(7, 48).save(buf, format="PNG")
    buf.seek(0)
    form = {"image": buf, "members": member}
    resp = await client.post("/v1/colorize", data=form)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    png = base64.b64decode(body["colorings"][0]["png_base64"])
    Image.open(io.BytesIO(png))  # a real picture
    return version, png


async def test_promote_then_rollback_restores_the_parent_and_the_worker_serves_it(
    tmp_path, aiohttp_client
):
    root = tmp_path / "family"
    family = tiny_family(root, names=("sunny", "icy"))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", store_dir=tmp_path / "store")
    await db.upgrade()
    workers = None
    try:
        await db.ensure_member_version("sunny", 1)
        net = family.network("sunny")
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))  # a visibly different version 2
        entry = save_candidate(family, "sunny", net, 2, {"why": "test"})
        await db.add_member_version("sunny", version=2, weights_sha256=entry.weights_sha256)
        assert Family.load(root).get("sunny").version == 1  # a candidate is not served

        # No manifest polling: only the reload notice can make the worker serve v2.
        settings = WorkerSettings(family_path=str(root), device="cpu", reload_poll_s=0,
                                  admin_token="admin-secret")
        client = await aiohttp_client(create_app(settings))
        url = str(client.make_url("/"))
        v, parent_png = await _served(client, "sunny")
        assert v == 1
        async with WorkerClient([url], admin_token="wrong") as intruder:
            assert (await intruder.reload())[url.rstrip("/")].startswith("HTTP 401")
        workers = WorkerClient([url], admin_token="admin-secret")
        registry = Registry(root, validator=validate_candidate)

        await promote(registry, db, "sunny", 2, reason="test", workers=workers)
        v, new_png = await _served(client, "sunny")
        assert v == 2 and new_png != parent_png
        assert (await db.promoted_versions())["sunny"].version == 2
        assert Family.load(root).get("sunny").extra["parent_version"] == 1

        restored = await rollback(registry, db, "sunny", workers=workers)
        assert restored.version == 1
        v, again_png = await _served(client, "sunny")
        assert v == 1 and again_png == parent_png  # the parent's very colorings
        assert (await db.promoted_versions())["sunny"].version == 1
        assert Family.load(root).get("icy").version == 1  # the others untouched
        assert await workers.reload() == {url.rstrip("/"): "ok"}
    finally:
        if workers is not None:
            await workers.close()
        await db.close()
