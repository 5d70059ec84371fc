"""The cassette cache: a cassette parsed once per process, parsed again when its file changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from proxy.cassette import CassetteError, load_cassette
from proxy.cassette_cache import CassetteCache, has_interactions

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes"


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    for name in ("compliant.yaml", "flawed.yaml"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


def test_an_unchanged_file_is_parsed_once(cassettes: Path):
    cache = CassetteCache()
    first = cache.load(cassettes / "compliant.yaml")
    again = cache.load(str(cassettes / "compliant.yaml"))
    assert again is first
    assert cache.loads == 1
    assert len(first.exchanges) == len(load_cassette(cassettes / "compliant.yaml").exchanges)


def test_a_changed_file_is_parsed_again(cassettes: Path):
    cache = CassetteCache()
    path = cassettes / "compliant.yaml"
    before = cache.load(path)
    shutil.copy(cassettes / "flawed.yaml", path)  # same inode, new size and mtime
    after = cache.load(path)
    assert after is not before
    assert len(after.exchanges) == len(load_cassette(SHIPPED / "flawed.yaml").exchanges)


def test_a_file_replaced_with_the_same_size_and_time_is_parsed_again(cassettes: Path):
    cache = CassetteCache()
    path = cassettes / "compliant.yaml"
    before = cache.load(path)
    stat = path.stat()
    replacement = cassettes / "replacement.yaml"
    shutil.copy(path, replacement)  # a new inode: what an editor's save-by-rename gives
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    assert cache.load(path) is not before
    assert cache.loads == 2


def test_only_the_most_recently_used_are_kept(cassettes: Path):
    cache = CassetteCache(capacity=1)
    compliant = cache.load(cassettes / "compliant.yaml")
    cache.load(cassettes / "flawed.yaml")
    assert len(cache) == 1
    assert cache.load(cassettes / "compliant.yaml") is not compliant
    assert cache.loads == 3


def test_a_missing_or_broken_file_is_a_cassette_error(cassettes: Path):
    cache = CassetteCache()
    with pytest.raises(CassetteError):
        cache.load(cassettes / "missing.yaml")
    (cassettes / "broken.yaml").write_text("interactions: [")
    with pytest.raises(CassetteError):
        cache.load(cassettes / "broken.yaml")
    assert len(cache) == 0


def test_has_interactions(cassettes: Path):
    assert has_interactions(cassettes / "compliant.yaml")
    assert not has_interactions(cassettes / "missing.yaml")
    (cassettes / "empty.yaml").write_text("")
    assert not has_interactions(cassettes / "empty.yaml")
