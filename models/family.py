"""The family's networks: built from the registry's entries, loaded once.

The manifest, the versions and promotion live in `models.registry` (torch-free); this
module adds what needs torch: building a member's network, reading and writing its
safetensors weights, and `Family`, which keeps the loaded networks. The bundled family
lives in `models/family/`; `COLORBOT_FAMILY` points elsewhere.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.pix2pix import GeneratorConfig, Pix2PixGenerator
from models.registry import (  # noqa: F401  (re-exported: the family's vocabulary)
    BUNDLED_FAMILY_DIR,
    BUNDLED_STAMP_NAME,
    MANIFEST_NAME,
    FamilyError,
    FamilyMember,
    copy_bundled_family,
    file_sha256,
    manifest_path,
    read_manifest,
    write_manifest,
)
from models.unet import UNet, UNetConfig

# Architecture name in the manifest -> (config class, network class).
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "unet": (UNetConfig, UNet),
    "pix2pix": (GeneratorConfig, Pix2PixGenerator),
}


def build_network(member: FamilyMember) -> nn.Module:
    """A fresh network of the member's architecture and config."""
    try:
        config_cls, net_cls = ARCHITECTURES[member.architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise FamilyError(
            f"member {member.name!r}: unknown architecture {member.architecture!r} ({known})"
        ) from None
    return net_cls(config_cls(**member.config))


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


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
        manifest = manifest_path(root)
        return cls(manifest.parent, read_manifest(manifest))

    def save_manifest(self) -> Path:
        """Write the members to `manifest.json` (atomically: a reloading worker never
        reads half a manifest)."""
        return write_manifest(self.root / MANIFEST_NAME, self.members)

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
                net = build_network(member)
                path = self.root / member.weights
                if not path.exists():
                    raise FamilyError(f"member {name!r}: weights file {path} is missing")
                if member.weights_sha256 and file_sha256(path) != member.weights_sha256:
                    raise FamilyError(f"member {name!r}: {path.name} does not match its sha256")
                load_weights(net, path)
                net.eval().to(device)
                if device.type == "cuda":
                    # Module.to takes memory_format; torch's overloads leave it out.
                    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                self._networks[key] = net
            return net
