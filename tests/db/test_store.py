"""The content-addressed image store."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from db.store import ImageStore


def test_put_returns_the_sha256_and_get_gives_the_bytes_back(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = b"a page"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get(sha) == data
    assert store.exists(sha)


def test_same_content_is_stored_once_in_sharded_folders(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    sha = store.put(b"same")
    assert store.put(b"same") == sha
    assert store.path(sha) == tmp_path / sha[:2] / sha[2:4] / sha
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path(sha)]  # one file, no temporary leftovers
    assert store.put(b"other") != sha


def test_concurrent_puts_of_the_same_image_leave_one_whole_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = bytes(range(256)) * 4096  # 1 MiB
    with ThreadPoolExecutor(8) as pool:
        shas = set(pool.map(lambda _: store.put(data), range(16)))
    (sha,) = shas
    assert store.get(sha) == data
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [sha]


def test_missing_and_malformed_keys(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(FileNotFoundError):
        store.get("0" * 64)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
    assert not store.exists("f" * 64)
    sha = store.put(b"gone soon")
    assert store.delete(sha) and not store.delete(sha)
