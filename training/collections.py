"""Picture collections that package registries carry: fetch, cache, and what their license is.

Fetched with the registries' ordinary clients (`npm pack`, `apt-get download` +
`dpkg -x`) into a cache folder (default `$COLORBOT_DATA/cache`, else
`~/.cache/colorbot`), once; later builds reuse the cache. Nothing here needs root.
"""

from __future__ import annotations

import logging
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class FetchError(Exception):
    """A package could not be fetched or unpacked."""


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's provenance, recorded in the dataset's `dataset.json` and model cards."""

    name: str  # the family member it feeds
    license: str  # SPDX id (or a short text where there is none)
    packages: tuple[str, ...]  # registry packages it comes from
    attribution: str  # what a model card must credit


OPENMOJI_VERSION = "17.0.0"
FLUENT_VERSION = "1.3.0"

OPENMOJI = CollectionInfo(
    name="openmoji",
    license="CC-BY-SA-4.0",
    packages=(f"npm:openmoji@{OPENMOJI_VERSION}",),
    attribution="OpenMoji, the open-source emoji and icon project (openmoji.org), CC BY-SA 4.0",
)
FLUENT = CollectionInfo(
    name="fluent",
    license="MIT",
    packages=(f"npm:fluentui-emoji@{FLUENT_VERSION}",),
    attribution="Fluent Emoji, Copyright (c) Microsoft Corporation, MIT License",
)
OPENCLIPART = CollectionInfo(
    name="clipart",
    license="public-domain",
    packages=("deb:openclipart-svg",),
    attribution="Open Clip Art Library (openclipart.org), public domain dedication",
)
# The artwork packages; their licenses differ per file and are read from each package's
# debian/copyright at build time (see `artwork_licenses`).
ARTWORK_PACKAGES = (
    "gnome-backgrounds",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "debian-edu-artwork",
    "debian-edu-artwork-buster",
    "debian-edu-artwork-emerald",
    "debian-edu-artwork-homeworld",
    "debian-edu-artwork-softwaves",
    "debian-edu-artwork-spacefun",
)


def default_cache_dir() -> Path:
    """`$COLORBOT_DATA/cache` when COLORBOT_DATA is set, else `~/.cache/colorbot`."""
    from colorbot.settings import Settings

    return Settings.from_env().cache_dir


def _run(cmd: list[str], cwd: Path) -> None:
    log.info("running %s in %s", " ".join(cmd), cwd)
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise FetchError(f"{cmd[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise FetchError(f"{' '.join(cmd)} failed: {exc.stderr.strip()[-500:]}") from exc


def _safe_extract(tgz: Path, dest: Path) -> None:
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")


def fetch_npm(name: str, version: str, cache_dir: Path | None = None) -> Path:
    """The unpacked `package/` folder of an npm package (`npm pack NAME@VERSION`), cached."""
    cache = (cache_dir or default_cache_dir()) / "npm"
    cache.mkdir(parents=True, exist_ok=True)
    # npm names a scoped package's tarball without the "@" and with "-" for "/".
    stem = f"{name.lstrip('@').replace('/', '-')}-{version}"
    unpacked = cache / stem
    done = unpacked / ".unpacked"
    if done.exists():
        return unpacked / "package"
    tgz = cache / f"{stem}.tgz"
    if not tgz.exists():
        _run(["npm", "pack", f"{name}@{version}", "--silent"], cache)
        if not tgz.exists():
            raise FetchError(f"npm pack did not produce {tgz.name}")
    _safe_extract(tgz, unpacked)
    done.touch()
    return unpacked / "package"


def fetch_deb(package: str, cache_dir: Path | None = None) -> Path:
    """The unpacked file tree of a Debian package (`apt-get download` + `dpkg -x`), cached."""
    cache = (cache_dir or default_cache_dir()) / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    unpacked = cache / package
    done = unpacked / ".unpacked"
    if done.exists():
        return unpacked
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        _run(["apt-get", "download", package], cache)
        debs = sorted(cache.glob(f"{package}_*.deb"))
        if not debs:
            raise FetchError(f"apt-get download did not produce {package}_*.deb")
    unpacked.mkdir(exist_ok=True)
    _run(["dpkg", "-x", str(debs[-1]), str(unpacked)], cache)
    done.touch()
    return unpacked


def deb_copyright(root: Path, package: str) -> str:
    """The package's debian/copyright text ('' when it has none)."""
    path = root / "usr/share/doc" / package / "copyright"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _dep5_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def license_for_file(copyright_text: str, path: str) -> str:
    """The license of one installed file according to a debian/copyright text.

    Machine-readable (DEP-5) files: the last `Files:` stanza whose pattern matches the
    end of `path` wins, as the format specifies. Free-form files: every license named
    in the text, joined ("mixed: ..."), since they cannot be mapped to files reliably.
    """
    import fnmatch
    import re

    if "copyright-format" in copyright_text[:500]:
        found = ""
        for stanza in _dep5_stanzas(copyright_text):
            patterns = stanza.get("files", "").split()
            if any(
                fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, "*/" + pat)
                for pat in patterns
            ) and not any(p.startswith("debian/") for p in patterns):
                found = stanza.get("license", "").split("\n")[0].strip() or found
        if found:
            return found
    names = re.findall(r"Licensed under (?:the )?(?:terms of the )?([A-Z][\w .\-]+?) License",
                       copyright_text)
    names += re.findall(r"^License: (\S+)", copyright_text, flags=re.MULTILINE)
    if "GNU General Public License" in copyright_text and not any("GPL" in n for n in names):
        names.append("GPL")
    unique = list(dict.fromkeys(n.strip() for n in names))
    return ("mixed: " + ", ".join(unique)) if unique else "see debian/copyright"


# Emoji sets packaged as Iconify JSON on npm (one `icons.json` with every SVG body).
# Twemoji is reserved for independent checks: it is never a collection here, in any
# package (`@iconify/json` bundles it too, which is why only single-set packages are used).
ICONIFY_SETS: dict[str, tuple[CollectionInfo, str]] = {
    "noto": (CollectionInfo(
        name="noto", license="Apache-2.0", packages=("npm:@iconify-json/noto@1.2.9",),
        attribution="Noto Emoji, Copyright Google Inc., Apache License 2.0"), "1.2.9"),
    "emojione": (CollectionInfo(
        name="emojione", license="CC-BY-4.0", packages=("npm:@iconify-json/emojione@1.2.3",),
        attribution="Emoji One (colored), Copyright Ranks.com Inc., CC BY 4.0"), "1.2.3"),
    "fxemoji": (CollectionInfo(
        name="fxemoji", license="Apache-2.0", packages=("npm:@iconify-json/fxemoji@1.2.2",),
        attribution="Firefox OS Emoji, Copyright Mozilla Foundation, Apache License 2.0"),
        "1.2.2"),
    "streamline": (CollectionInfo(
        name="streamline", license="CC-BY-4.0",
        packages=("npm:@iconify-json/streamline-emojis@1.2.4",),
        attribution="Streamline Emoji, Copyright Streamline (streamlinehq.com), CC BY 4.0"),
        "1.2.4"),
    # The earlier art of Noto and Emoji One: other drawings of the same emoji, which
    # give the shape embedding more cross-set pairs (and their members more memory).
    "noto-v1": (CollectionInfo(
        name="noto-v1", license="Apache-2.0", packages=("npm:@iconify-json/noto-v1@1.2.5",),
        attribution="Noto Emoji (first design), Copyright Google Inc., Apache License 2.0"),
        "1.2.5"),
    "emojione-v1": (CollectionInfo(
        name="emojione-v1", license="CC-BY-SA-4.0",
        packages=("npm:@iconify-json/emojione-v1@1.2.3",),
        attribution="Emoji One (first design), Copyright Ranks.com Inc., CC BY-SA 4.0"),
        "1.2.3"),
}
ICONIFY_PACKAGES = {"noto": "@iconify-json/noto", "emojione": "@iconify-json/emojione",
                    "fxemoji": "@iconify-json/fxemoji",
                    "streamline": "@iconify-json/streamline-emojis",
                    "noto-v1": "@iconify-json/noto-v1",
                    "emojione-v1": "@iconify-json/emojione-v1"}


def fetch_iconify(set_name: str, cache_dir: Path | None = None) -> Path:
    """The unpacked npm folder of one Iconify emoji set (holds `icons.json`)."""
    _, version = ICONIFY_SETS[set_name]
    return fetch_npm(ICONIFY_PACKAGES[set_name], version, cache_dir)
