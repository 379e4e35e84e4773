"""The family registry: a candidate is validated before anything is marked; promote and
rollback keep the database and the files in step, whatever fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from db import Database
from models.family import save_weights
from models.registry import FamilyError, PromotionRefused, Registry, promote, rollback
from models.unet import UNet, UNetConfig
from models.validate import validate_candidate
from models.worker.app import create_app
from models.worker.settings import WorkerSettings
from tests.training.votes_helpers import one_thread, tiny_family  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = ("sunny", "icy")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tiny_family(tmp_path / "family", names=NAMES)
    return tmp_path / "family"


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
                        store_dir=tmp_path / "store")
    await database.upgrade()
    for name in NAMES:
        await database.ensure_member_version(name, 1)
    yield database
    await database.close()


def _perturbed(root: Path, scale: float = 0.3) -> torch.nn.Module:
    from models.family import Family

    net = Family.load(root).network("sunny")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def _add(registry: Registry, net: torch.nn.Module, version: int = 2):
    return registry.add_candidate("sunny", version, lambda path: save_weights(net, path))


async def _state(registry: Registry, db: Database) -> tuple:
    """Everything a promotion may change: db rows, manifest bytes, served weights bytes."""
    rows = [
        (mv.member, mv.version, mv.promoted, mv.reason, mv.parent_id, mv.decided_at)
        for mv in await db.member_versions()
    ]
    served = {m.name: (registry.root / m.weights).read_bytes() for m in registry.members()}
    return rows, registry.manifest.read_bytes(), served


def _nan(registry: Registry) -> None:
    net = _perturbed(registry.root)
    with torch.no_grad():
        next(iter(net.parameters())).fill_(float("nan"))
    _add(registry, net)


def _wrong_shape(registry: Registry) -> None:
    # The entry says the parent's config; the file holds a wider network.
    _add(registry, UNet(UNetConfig(out_channels=3, base_channels=8, depth=2, max_channels=16)))


def _truncated(registry: Registry) -> None:
    entry = _add(registry, _perturbed(registry.root))
    path = registry.root / entry.weights
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _truncated_no_sha(registry: Registry) -> None:
    # No sha256 recorded to catch it: loading the file must.
    _truncated(registry)
    entry = registry.version_entry("sunny", 2)
    entry.weights_sha256 = ""
    from models.registry import write_json_atomic

    write_json_atomic(registry.version_entry_path("sunny", 2), entry.to_dict())


def _flat(registry: Registry) -> None:
    net = _perturbed(registry.root)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    _add(registry, net)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_nan, "non-finite"),
        (_wrong_shape, "has shape"),
        (_truncated, "sha256"),
        (_truncated_no_sha, "do not load"),
        (_flat, "flat color"),
    ],
)
async def test_a_bad_candidate_is_refused_and_nothing_changes(
    root, db, aiohttp_client, make, says
):
    registry = Registry(root, validator=validate_candidate)
    make(registry)
    await db.add_member_version("sunny", version=2, parent_version=1)  # as a retrain records it
    before = await _state(registry, db)
    with pytest.raises(PromotionRefused, match=says) as refused:
        await promote(registry, db, "sunny", 2, reason="test")
    assert "\n" not in str(refused.value)  # one line, to print as it is
    assert await _state(registry, db) == before

    # A worker (re)started now serves the whole family.
    client = await aiohttp_client(create_app(WorkerSettings(
        family_path=str(root), device="cpu", reload_poll_s=0)))
    family = await (await client.get("/v1/family")).json()
    assert sorted(m["name"] for m in family["members"]) == sorted(NAMES)
    assert family["broken"] == {}
    assert {m["name"]: m["version"] for m in family["members"]} == {"sunny": 1, "icy": 1}


async def test_a_good_candidate_is_promoted_in_step(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    entry = await promote(registry, db, "sunny", 2, reason="better")
    assert entry.version == 2 and registry.get("sunny").version == 2
    promoted = await db.promoted_versions()
    assert promoted["sunny"].version == 2 and promoted["icy"].version == 1
    v1 = await db.get_member_version("sunny", 1)
    assert promoted["sunny"].parent_id == v1.id and not v1.promoted
    assert registry.next_version("sunny") == 3


async def test_promoting_the_served_version_brings_the_database_in_step(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    await db.add_member_version("sunny", version=2, parent_version=1)
    await db.promote("sunny", 2, reason="the record ran ahead of the files")
    await promote(registry, db, "sunny", 1, reason="in step again")
    assert await _served_and_recorded(registry, db) == (1, 1)


async def test_the_validator_is_injectable_and_decides(root, db):
    seen = []

    def refuse(folder, parent, candidate):
        seen.append((parent.version, candidate.version))
        return "the test says no"

    registry = Registry(root, validator=refuse)
    _add(registry, _perturbed(root))
    with pytest.raises(PromotionRefused, match="the test says no"):
        await promote(registry, db, "sunny", 2)
    assert seen == [(1, 2)]
    assert registry.get("sunny").version == 1


async def test_a_registry_without_a_check_refuses_to_promote(root, db):
    registry = Registry(root)
    _add(registry, _perturbed(root))
    before = await _state(registry, db)
    with pytest.raises(PromotionRefused, match="without a candidate check"):
        await promote(registry, db, "sunny", 2)
    assert await _state(registry, db) == before


class _FailingDb:
    """The real database, but one method fails (a lost connection at the worst moment)."""

    def __init__(self, db: Database, method: str) -> None:
        self._db, self._method = db, method

    def __getattr__(self, name: str):
        if name == self._method:
            async def fail(*args, **kwargs):
                raise RuntimeError(f"{name} lost the connection")

            return fail
        return getattr(self._db, name)


async def _served_and_recorded(registry: Registry, db: Database) -> tuple[int, int]:
    return registry.get("sunny").version, (await db.promoted_versions())["sunny"].version


async def test_a_failed_database_promotion_puts_the_files_back(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    with pytest.raises(RuntimeError):
        await promote(registry, _FailingDb(db, "promote"), "sunny", 2)
    assert await _served_and_recorded(registry, db) == (1, 1)


async def test_rollback_with_a_failing_install_leaves_db_and_manifest_agreeing(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    await promote(registry, db, "sunny", 2)
    parent_file = registry.root / registry.version_entry("sunny", 1).weights
    good = parent_file.read_bytes()
    parent_file.write_bytes(good[:100])  # the parent's weights damaged on disk

    with pytest.raises(FamilyError, match="sha256"):
        await rollback(registry, db, "sunny")
    assert await _served_and_recorded(registry, db) == (2, 2)

    parent_file.write_bytes(good)  # repaired: the retry works (the record still has v1)
    restored = await rollback(registry, db, "sunny")
    assert restored.version == 1
    assert await _served_and_recorded(registry, db) == (1, 1)


async def test_rollback_whose_record_fails_puts_the_files_back(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    await promote(registry, db, "sunny", 2)
    with pytest.raises(RuntimeError):
        await rollback(registry, _FailingDb(db, "rollback"), "sunny")
    assert await _served_and_recorded(registry, db) == (2, 2)


async def test_rollback_refuses_when_db_and_manifest_disagree(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    registry.install("sunny", 2, "by hand, behind the database's back")
    with pytest.raises(FamilyError, match="promotes v1 but the family serves v2"):
        await rollback(registry, db, "sunny")
    assert await _served_and_recorded(registry, db) == (2, 1)


async def test_promote_asks_the_workers_to_reload_after_the_files_changed(root, db):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    told = []

    class Workers:
        async def reload(self):
            told.append(registry.get("sunny").version)
            raise RuntimeError("a worker is away")  # logged; polling catches up

    await promote(registry, db, "sunny", 2, workers=Workers())
    await rollback(registry, db, "sunny", workers=Workers())
    assert told == [2, 1]


def test_no_temporary_files_are_left_behind(root):
    registry = Registry(root, validator=validate_candidate)
    _add(registry, _perturbed(root))
    registry.install("sunny", 2)
    assert not list(root.rglob("*.tmp"))


def test_the_registry_imports_no_torch():
    code = "import sys, models.registry; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=Path(__file__).resolve().parents[2])
