"""The family as the web page shows it, read through the family registry.

`models.registry` is torch-free: the web process only needs the manifest's words and
the files beside it (cards, growing-up GIFs, loss curves), like the bot's `/family`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup
from PIL import Image

from models.registry import BUNDLED_FAMILY_DIR, MANIFEST_NAME, FamilyMember, read_manifest
from web.markdown import render

log = logging.getLogger(__name__)

# Files the family page may serve from the family folder, by suffix.
SERVED_SUFFIXES = {".gif": "image/gif", ".png": "image/png", ".webp": "image/webp"}


def family_manifest(family_path: str = "") -> Path:
    """The manifest to show: `family_path` (a folder or a manifest file) when it has one,
    else the bundled family (a deployment's folder is a copy made when a worker first
    starts, which may be after the web page)."""
    if family_path:
        root = Path(family_path).expanduser()
        manifest = root if root.suffix == ".json" else root / MANIFEST_NAME
        if manifest.is_file():
            return manifest
        log.warning("no family manifest at %s yet; showing the bundled family", root)
    return BUNDLED_FAMILY_DIR / MANIFEST_NAME


@dataclass
class MemberCard:
    name: str
    emoji: str
    description: str
    version: int
    trained_on: str
    license: str
    kind: str
    growing_up: str | None  # file name in the family folder, when there is one
    growing_up_size: tuple[int, int] | None  # its width, height (no layout shift)
    card: Markup | None  # the rendered model card
    retrained: str = ""  # how it learned from votes since, when it did

    @property
    def anchor(self) -> str:
        return f"member-{self.name}"


class FamilyPages:
    """Reads the manifest (again when it changes: retraining promotes new versions) and
    renders each member's card once per manifest version."""

    def __init__(self, family_path: str = "", file_url: str = "/family/files/") -> None:
        self.family_path = family_path
        self.file_url = file_url
        self._cache: tuple[Path, float, list[MemberCard]] | None = None

    @property
    def root(self) -> Path:
        return family_manifest(self.family_path).parent

    def members(self) -> list[MemberCard]:
        manifest = family_manifest(self.family_path)
        mtime = manifest.stat().st_mtime
        if self._cache and self._cache[0] == manifest and self._cache[1] == mtime:
            return self._cache[2]
        cards = [self._card(manifest.parent, m) for m in read_manifest(manifest)]
        self._cache = (manifest, mtime, cards)
        return cards

    def file(self, name: str) -> Path | None:
        """A file of the family folder the page may serve (pictures only, no paths)."""
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        if Path(name).suffix.lower() not in SERVED_SUFFIXES:
            return None
        path = self.root / name
        return path if path.is_file() else None

    def _image_url(self, src: str) -> str | None:
        if src.startswith(("http://", "https://")):
            return None  # a card shows only its own pictures
        return self.file_url + src if self.file(src) is not None else None

    def _card(self, root: Path, member: FamilyMember) -> MemberCard:
        card = None
        if member.card:
            try:
                text = (root / member.card).read_text(encoding="utf-8")
                # The page shows the name and the growing-up GIF itself.
                body = text.split("\n", 1)[1] if text.startswith("# ") else text
                card = render(body, self._image_url, heading_offset=1)
            except OSError:
                log.warning("card %s of %s is missing", member.card, member.name)
        gif = member.growing_up or None
        size = None
        if gif and self.file(gif) is None:
            gif = None
        if gif:
            try:
                with Image.open(root / gif) as img:  # reads the header only
                    size = img.size
            except OSError:
                gif = None
        return MemberCard(
            name=member.name,
            emoji=member.emoji,
            description=member.description,
            version=int(member.version),
            trained_on=member.trained_on,
            license=member.license,
            kind=member.kind,
            growing_up=gif,
            growing_up_size=size,
            card=card,
            retrained=_retrained(member),
        )


def _retrained(member: FamilyMember) -> str:
    """"fine-tuned from version 2 on 120 votes" for a version `colorbot retrain` made."""
    extra = member.extra or {}
    parent = extra.get("parent_version")
    if parent is None:
        return ""
    votes = extra.get("votes")
    on = f" on {votes} votes" if votes else " on people's votes"
    return f"fine-tuned from version {parent}{on}"
