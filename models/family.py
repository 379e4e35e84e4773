"""The family registry: who the members are, and their networks loaded once.

A family is a folder with `manifest.json` and one safetensors file per member. The
manifest lists, per member: name, voting emoji, description, architecture and its
config, weights file, version, what it grew up on and that data's license, the page
kind it is best at and its working resolution. The bundled family lives in
`models/family/`; `COLORBOT_FAMILY` points elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.pix2pix import GeneratorConfig, Pix2PixGenerator
from models.unet import UNet, UNetConfig

BUNDLED_FAMILY_DIR = Path(__file__).resolve().parent / "family"
MANIFEST_NAME = "manifest.json"

# Architecture name in the manifest -> (config class, network class).
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "unet": (UNetConfig, UNet),
    "pix2pix": (GeneratorConfig, Pix2PixGenerator),
}


class FamilyError(Exception):
    """A manifest or weights file that cannot be used."""


@dataclass
class FamilyMember:
    name: str  # unique, lowercase; what `--member` and `/colorize model:` take
    emoji: str  # the reaction people vote with
    description: str  # one line: who this member is
    architecture: str  # a key of ARCHITECTURES
    config: dict[str, Any]  # the architecture's config fields
    weights: str  # safetensors file name, relative to the family folder
    version: int = 1
    trained_on: str = ""  # the collection it grew up on
    license: str = ""  # that collection's license
    work_size: int = 256  # long side, in pixels, at which the network predicts color
    kind: str = "lineart"  # the page kind it was trained for: lineart | photo
    card: str = ""  # model card file (markdown), relative to the family folder
    growing_up: str = ""  # growing-up GIF, relative to the family folder
    weights_sha256: str = ""  # filled in on save; checked on load when present
    extra: dict[str, Any] = field(default_factory=dict)  # free-form: metrics, parent, run ...

    def build_network(self) -> nn.Module:
        try:
            config_cls, net_cls = ARCHITECTURES[self.architecture]
        except KeyError:
            known = ", ".join(sorted(ARCHITECTURES))
            raise FamilyError(
                f"member {self.name!r}: unknown architecture {self.architecture!r} ({known})"
            ) from None
        return net_cls(config_cls(**self.config))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


BUNDLED_STAMP_NAME = ".bundled-family.json"


def copy_bundled_family(root: str | Path) -> bool:
    """Make `root` a copy of the bundled family if it holds no manifest yet; bring new
    bundled members into an existing copy after an upgrade.

    A deployment that retrains serves a writable folder (compose: /data/family) that
    starts as the bundled family and then gains versions; the worker and the trainer
    may both start first, so the copy is made beside `root` and renamed into place
    (whoever renames first wins, the other finds the manifest). Returns True when it
    copied. A path to a manifest *file* is left alone: that is someone's own family.

    The copy carries a stamp (`.bundled-family.json`: the bundled manifest's sha256 and
    each member's weights as copied). When the bundled family has changed since (a newer
    image or package), members the copy lacks are added with their files, and a member
    still served exactly as it was copied, with no versions of its own under versions/,
    is updated to the bundled one. Promoted or retrained members are never touched.
    """
    import os
    import shutil

    root = Path(root)
    if root.suffix == ".json":
        return False
    if (root / MANIFEST_NAME).exists():
        _upgrade_bundled_copy(root)
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    if root.is_dir() and any(root.iterdir()):
        raise FamilyError(f"{root} is not empty and has no {MANIFEST_NAME}: not a family")
    tmp = root.parent / f".{root.name}.copy-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(BUNDLED_FAMILY_DIR, tmp, ignore=shutil.ignore_patterns("*.tmp"))
    _write_bundled_stamp(tmp, _bundled_manifest())
    try:
        if root.is_dir():
            root.rmdir()  # empty (checked above); a rename cannot replace a folder
        tmp.rename(root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / MANIFEST_NAME).exists():
            raise
        return False
    return True


def _bundled_manifest() -> tuple[str, dict[str, Any]]:
    """(sha256, parsed manifest) of the bundled family."""
    path = BUNDLED_FAMILY_DIR / MANIFEST_NAME
    return file_sha256(path), json.loads(path.read_text(encoding="utf-8"))


def _write_bundled_stamp(root: Path, bundled: tuple[str, dict[str, Any]]) -> None:
    sha, manifest = bundled
    stamp = {
        "bundled_manifest_sha256": sha,
        "members": {m["name"]: m.get("weights_sha256", "") for m in manifest["members"]},
    }
    tmp = root / (BUNDLED_STAMP_NAME + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / BUNDLED_STAMP_NAME)


def _member_files(entry: dict[str, Any]) -> list[str]:
    """The files of a bundled member's entry that live beside the manifest."""
    names = [entry.get("weights", ""), entry.get("card", ""), entry.get("growing_up", ""),
             f"{entry['name']}_loss_curves.png"]
    return [n for n in names if n and (BUNDLED_FAMILY_DIR / n).is_file()]


def _upgrade_bundled_copy(root: Path) -> None:
    import fcntl
    import logging
    import shutil

    bundled = _bundled_manifest()
    stamp_path = root / BUNDLED_STAMP_NAME
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        stamp = {"bundled_manifest_sha256": "", "members": {}}
    if stamp.get("bundled_manifest_sha256") == bundled[0]:
        return
    with open(root / ".bundled-family.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a worker and the retrainer may start together
        try:
            if json.loads(stamp_path.read_text(encoding="utf-8")).get(
                    "bundled_manifest_sha256") == bundled[0]:
                return  # the other process upgraded it meanwhile
        except (FileNotFoundError, ValueError):
            pass
        manifest_path = root / MANIFEST_NAME
        served = json.loads(manifest_path.read_text(encoding="utf-8"))
        members = {m["name"]: i for i, m in enumerate(served["members"])}
        copied_as = stamp.get("members", {})
        changed = []
        for entry in bundled[1]["members"]:
            name = entry["name"]
            if name in members:
                current = served["members"][members[name]]
                untouched = (
                    name in copied_as
                    and current.get("weights_sha256", "") == copied_as[name]
                    and current.get("weights_sha256", "") != entry.get("weights_sha256", "")
                    and not any((root / "versions").glob(f"{name}.v*"))
                )
                if not untouched:
                    continue  # promoted, retrained, or the same: the deployment's own
                served["members"][members[name]] = entry
            else:
                served["members"].append(entry)
            for file_name in _member_files(entry):
                shutil.copy2(BUNDLED_FAMILY_DIR / file_name, root / (file_name + ".tmp"))
                (root / (file_name + ".tmp")).replace(root / file_name)
            changed.append(name)
        if changed:
            tmp = manifest_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(served, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
            tmp.replace(manifest_path)
            logging.getLogger(__name__).warning(
                "brought bundled member(s) %s into %s", ", ".join(changed), root)
        _write_bundled_stamp(root, bundled)


def save_weights(net: nn.Module, path: Path, half: bool = True) -> str:
    """Write the network's state (fp16 by default, to keep files small); return its sha256."""
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in net.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return file_sha256(path)


def load_weights(net: nn.Module, path: Path) -> None:
    state = load_file(str(path))
    own = net.state_dict()
    # Stored fp16 (or anything else) comes back in the network's own dtype.
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FamilyError(f"{path.name}: missing {missing[:5]} unexpected {unexpected[:5]}")


class Family:
    """The members of one family folder and, on demand, their loaded networks.

    Networks are built and loaded once per (member, device) and kept; `network()` is
    thread-safe so a worker's batcher threads can share one Family.
    """

    def __init__(self, root: Path, members: list[FamilyMember]) -> None:
        self.root = Path(root)
        self.members = members
        self._by_name = {m.name: m for m in members}
        if len(self._by_name) != len(members):
            raise FamilyError("member names must be unique")
        emojis = [m.emoji for m in members]
        if len(set(emojis)) != len(emojis):
            raise FamilyError("member emojis must be unique: they are how people vote")
        self._networks: dict[tuple[str, str], nn.Module] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, root: str | Path | None = None) -> Family:
        root = Path(root) if root else BUNDLED_FAMILY_DIR
        manifest = root / MANIFEST_NAME if root.is_dir() else root
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FamilyError(f"no family manifest at {manifest}") from None
        except json.JSONDecodeError as exc:
            raise FamilyError(f"{manifest}: not valid JSON ({exc})") from None
        try:
            members = [FamilyMember(**entry) for entry in data["members"]]
        except (KeyError, TypeError) as exc:
            raise FamilyError(f"{manifest}: bad member entry ({exc})") from None
        return cls(manifest.parent, members)

    def save_manifest(self) -> Path:
        path = self.root / MANIFEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"members": [m.to_dict() for m in self.members]}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a reloading worker never reads half a manifest
        return path

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def get(self, name: str) -> FamilyMember:
        try:
            return self._by_name[name]
        except KeyError:
            raise FamilyError(
                f"no family member named {name!r}; the family is: {', '.join(self.names)}"
            ) from None

    def by_emoji(self, emoji: str) -> FamilyMember | None:
        for member in self.members:
            if member.emoji == emoji:
                return member
        return None

    def network(self, name: str, device: str | torch.device = "cpu") -> nn.Module:
        """The member's network in eval mode on `device`, loaded on first use."""
        device = torch.device(device)
        key = (name, str(device))
        with self._lock:
            net = self._networks.get(key)
            if net is None:
                member = self.get(name)
                net = member.build_network()
                path = self.root / member.weights
                if not path.exists():
                    raise FamilyError(f"member {name!r}: weights file {path} is missing")
                if member.weights_sha256 and file_sha256(path) != member.weights_sha256:
                    raise FamilyError(f"member {name!r}: {path.name} does not match its sha256")
                load_weights(net, path)
                net.eval().to(device)
                if device.type == "cuda":
                    net = net.to(memory_format=torch.channels_last)
                self._networks[key] = net
            return net
