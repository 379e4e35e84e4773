"""The family registry: the one home of the family's manifest and its versions.

A family is a folder:

    manifest.json                         the served members, one entry each
    <member>.safetensors, cards, GIFs     as shipped
    versions/<member>.v<N>.safetensors    every kept version's weights
    versions/<member>.v<N>.json           the entry that serves them

No torch here: the bot, the web pages and the command line read the family without
loading networks (`models.family` builds networks from these entries). Every file is
written beside its target and renamed into place, weights and manifest alike, so a
reloading worker never reads half a file.

`promote()` and `rollback()` keep these files and the database's record in step. A
candidate is validated before anything is marked by the registry's validator
(`models.validate.validate_candidate` runs the network on probe pages; whoever promotes
passes it, since it needs torch and sits above this module; a registry opened without
one refuses every promotion); the files change before the database commits, and a
failed commit puts the files back. Workers are then asked to reload (they also poll the
manifest).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

BUNDLED_FAMILY_DIR = Path(__file__).resolve().parent / "family"
MANIFEST_NAME = "manifest.json"
VERSIONS_DIR = "versions"
BUNDLED_STAMP_NAME = ".bundled-family.json"


class FamilyError(Exception):
    """A manifest, version or weights file that cannot be used."""


class PromotionRefused(FamilyError):
    """A candidate not fit to serve; the message is the one-line reason. Nothing changed."""


@dataclass
class FamilyMember:
    name: str  # unique, lowercase; what `--member` and `/colorize model:` take
    emoji: str  # the reaction people vote with
    description: str  # one line: who this member is
    architecture: str  # a key of models.family.ARCHITECTURES
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- files, written atomically ------------------------------------------------------------


def _temp_beside(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """`write(temp)` fills a temporary file beside `path`, which is then renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def copy_atomic(src: Path, dst: Path) -> None:
    write_atomic(dst, lambda tmp: shutil.copy2(src, tmp))


# --- the manifest -------------------------------------------------------------------------


def manifest_path(root: str | Path | None = None) -> Path:
    """The manifest file of a family folder (or the file itself); None: the bundled one."""
    path = Path(root) if root else BUNDLED_FAMILY_DIR
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(path: Path) -> list[FamilyMember]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FamilyError(f"no family manifest at {path}") from None
    except json.JSONDecodeError as exc:
        raise FamilyError(f"{path}: not valid JSON ({exc})") from None
    try:
        return [FamilyMember(**entry) for entry in data["members"]]
    except (KeyError, TypeError) as exc:
        raise FamilyError(f"{path}: bad member entry ({exc})") from None


def write_manifest(path: Path, members: Sequence[FamilyMember]) -> Path:
    write_json_atomic(path, {"members": [m.to_dict() for m in members]})
    return path


# --- the bundled family, copied into a served folder ------------------------------------


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
    write_json_atomic(root / BUNDLED_STAMP_NAME, stamp)


def _member_files(entry: dict[str, Any]) -> list[str]:
    """The files of a bundled member's entry that live beside the manifest."""
    names = [entry.get("weights", ""), entry.get("card", ""), entry.get("growing_up", ""),
             f"{entry['name']}_loss_curves.png"]
    return [n for n in names if n and (BUNDLED_FAMILY_DIR / n).is_file()]


def _upgrade_bundled_copy(root: Path) -> None:
    import fcntl

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
        manifest = root / MANIFEST_NAME
        served = json.loads(manifest.read_text(encoding="utf-8"))
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
                copy_atomic(BUNDLED_FAMILY_DIR / file_name, root / file_name)
            changed.append(name)
        if changed:
            write_json_atomic(manifest, served)
            log.warning(
                "brought bundled member(s) %s into %s", ", ".join(changed), root)
        _write_bundled_stamp(root, bundled)


# --- the registry -------------------------------------------------------------------------

# (family folder, served entry, candidate entry) -> None when fit to serve, else the
# one-line reason it is not.
Validator = Callable[[Path, FamilyMember, FamilyMember], "str | None"]



class Registry:
    """One family folder: its served members and every kept version of them."""

    def __init__(self, root: str | Path | None = None, *, validator: Validator | None = None):
        """`validator` checks candidates (`models.validate.validate_candidate`); without
        one the registry reads and installs, and refuses to promote."""
        self.manifest = manifest_path(root)
        self.root = self.manifest.parent
        self.validator = validator

    # served members
    def members(self) -> list[FamilyMember]:
        return read_manifest(self.manifest)

    def get(self, name: str) -> FamilyMember:
        members = self.members()
        for member in members:
            if member.name == name:
                return member
        names = ", ".join(m.name for m in members)
        raise FamilyError(f"no family member named {name!r}; the family is: {names}")

    # versions
    def version_weights_name(self, member: str, version: int) -> str:
        return f"{VERSIONS_DIR}/{member}.v{version}.safetensors"

    def version_entry_path(self, member: str, version: int) -> Path:
        return self.root / VERSIONS_DIR / f"{member}.v{version}.json"

    def version_entry(self, member: str, version: int) -> FamilyMember:
        path = self.version_entry_path(member, version)
        try:
            return FamilyMember(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise FamilyError(f"no version {version} of {member!r} in {path.parent}") from None
        except (ValueError, TypeError) as exc:
            raise FamilyError(f"{path.name}: bad version entry ({exc})") from None

    def next_version(self, member: str) -> int:
        """One past the highest version of `member` served or kept in the folder."""
        known = [self.get(member).version]
        for p in (self.root / VERSIONS_DIR).glob(f"{member}.v*.json"):
            try:
                known.append(int(p.stem.rsplit(".v", 1)[1]))
            except (IndexError, ValueError):
                continue
        return max(known) + 1

    def archive_served(self, member: str) -> FamilyMember:
        """Keep the served version of `member` under versions/ (to roll back to)."""
        entry = self.get(member)
        path = self.version_entry_path(member, entry.version)
        if path.exists():
            return self.version_entry(member, entry.version)
        kept = replace(entry, weights=self.version_weights_name(member, entry.version))
        src, dst = self.root / entry.weights, self.root / kept.weights
        if src.resolve() != dst.resolve():
            copy_atomic(src, dst)
        kept.weights_sha256 = file_sha256(dst)
        write_json_atomic(path, kept.to_dict())
        return kept

    def add_candidate(
        self,
        member: str,
        version: int,
        write_weights: Callable[[Path], object],
        extra: dict[str, Any] | None = None,
    ) -> FamilyMember:
        """A new, unpromoted version of `member` grown from the served one:
        `write_weights(path)` writes its safetensors file (to a temporary name)."""
        parent = self.archive_served(member)
        entry = replace(
            parent,
            version=version,
            weights=self.version_weights_name(member, version),
            extra={**parent.extra, **(extra or {}), "parent_version": parent.version},
        )
        write_atomic(self.root / entry.weights, write_weights)
        entry.weights_sha256 = file_sha256(self.root / entry.weights)
        write_json_atomic(self.version_entry_path(member, version), entry.to_dict())
        return entry

    def _checked_entry(self, member: str, version: int) -> FamilyMember:
        served = self.get(member)
        if version == served.version and not self.version_entry_path(member, version).exists():
            entry = served  # never archived (as shipped): its entry is the manifest's
        else:
            entry = self.version_entry(member, version)
        path = self.root / entry.weights
        if not path.is_file():
            raise FamilyError(f"{member} v{version}: weights file {entry.weights} is missing")
        if entry.weights_sha256 and file_sha256(path) != entry.weights_sha256:
            raise FamilyError(f"{member} v{version}: {path.name} does not match its sha256")
        return entry

    def validate(self, member: str, version: int) -> FamilyMember:
        """The candidate's entry when it is fit to serve; `PromotionRefused` otherwise."""
        served = self.get(member)
        try:
            entry = self._checked_entry(member, version)
        except FamilyError as exc:
            raise PromotionRefused(str(exc)) from None
        if self.validator is None:
            raise PromotionRefused(
                f"{member} v{version} refused: this registry was opened without a candidate "
                "check (pass validator=models.validate.validate_candidate)")
        reason = self.validator(self.root, served, entry)
        if reason:
            raise PromotionRefused(f"{member} v{version} refused: {reason}")
        return entry

    def install(self, member: str, version: int, reason: str = "") -> FamilyMember:
        """Serve `version` of `member`: its entry goes into the manifest, atomically."""
        members = self.members()
        current = next((m for m in members if m.name == member), None)
        if current is None:
            raise FamilyError(f"no family member named {member!r}")
        entry = self._checked_entry(member, version)
        if current.version != version:
            self.archive_served(member)
        # The person-facing fields (emoji, description) stay as the family has them now.
        entry = replace(entry, emoji=current.emoji, description=current.description)
        entry.extra = {**entry.extra, "served_reason": reason}
        write_manifest(self.manifest, [entry if m.name == member else m for m in members])
        return entry


# --- promote / rollback, in step with the database ----------------------------------------


class VersionRecords(Protocol):
    """What promotion needs of the database (`db.Database` fits)."""

    async def ensure_member_version(
        self, member: str, version: int, *, weights_sha256: str | None = None
    ) -> Any: ...

    async def add_member_version(
        self, member: str, *, version: int | None = None, parent_version: int | None = None,
        weights_sha256: str | None = None,
    ) -> Any: ...

    async def member_versions(self, member: str | None = None) -> list[Any]: ...

    async def promoted_versions(self) -> dict[str, Any]: ...

    async def promote(self, member: str, version: int, reason: str = "") -> Any: ...

    async def rollback(self, member: str, reason: str = "rolled back") -> Any: ...


class WorkerReloader(Protocol):
    """Asks the workers to load the family again (`bot.worker_client.WorkerClient` fits)."""

    async def reload(self) -> Any: ...


async def _tell_workers(workers: WorkerReloader | None) -> None:
    if workers is None:
        return
    try:
        await workers.reload()
    except Exception as exc:  # the files and the record are right: polling catches up
        log.warning("workers did not reload (%s); they pick the manifest up by polling", exc)


async def promote(
    registry: Registry,
    db: VersionRecords | None,
    member: str,
    version: int,
    *,
    reason: str = "",
    workers: WorkerReloader | None = None,
) -> FamilyMember:
    """Serve `version` of `member`: validated, installed, recorded, workers told.

    `PromotionRefused` (a one-line reason) when the candidate is not fit to serve; then
    nothing has changed, neither files nor records.
    """
    before = registry.get(member)
    # Off the event loop: the default validator runs the network on probe pages.
    candidate = await asyncio.to_thread(registry.validate, member, version)
    if db is not None:
        await db.ensure_member_version(
            member, before.version, weights_sha256=before.weights_sha256 or None
        )
        known = {mv.version for mv in await db.member_versions(member)}
        if version not in known:
            # A version made outside a retrain cycle: record it with its parent.
            parent = int(candidate.extra.get("parent_version", before.version))
            if parent not in known:
                await db.ensure_member_version(member, parent)
            await db.add_member_version(
                member, version=version, parent_version=parent,
                weights_sha256=candidate.weights_sha256 or None,
            )
    entry = registry.install(member, version, reason or "promoted")
    if db is not None:
        try:
            await db.promote(member, version, reason=reason)
        except Exception:
            registry.install(member, before.version, "promotion failed")
            raise
    await _tell_workers(workers)
    return entry


async def _recorded_parent(db: VersionRecords, member: str, served: int) -> int:
    promoted = (await db.promoted_versions()).get(member)
    if promoted is None:
        raise FamilyError(f"{member} has no promoted version to roll back")
    if promoted.version != served:
        raise FamilyError(
            f"{member}: the database promotes v{promoted.version} but the family serves "
            f"v{served}; promote the one you want to bring them in step"
        )
    by_id = {mv.id: mv for mv in await db.member_versions(member)}
    parent = by_id.get(promoted.parent_id)
    if parent is None:
        raise FamilyError(f"{member} v{served} has no parent to roll back to")
    return int(parent.version)


async def rollback(
    registry: Registry,
    db: VersionRecords | None,
    member: str,
    *,
    reason: str = "rolled back",
    workers: WorkerReloader | None = None,
) -> FamilyMember:
    """Serve the parent of the member's served version again; returns its entry.

    The files change first: a failed install leaves the record alone, and a failed
    record puts the files back, so the database and the manifest always agree.
    """
    current = registry.get(member)
    if db is not None:
        parent_version: int | None = await _recorded_parent(db, member, current.version)
    else:
        parent_version = current.extra.get("parent_version")
    if parent_version is None:
        raise FamilyError(f"{member} v{current.version} has no parent to roll back to")
    entry = registry.install(member, int(parent_version), f"rollback of v{current.version}")
    if db is not None:
        try:
            await db.rollback(member, reason=reason)
        except Exception:
            registry.install(member, current.version, "rollback failed")
            raise
    await _tell_workers(workers)
    return entry
