"""The cassette cache: a cassette read once per process, read again when its file changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from proxy.cassette import CassetteError, RedactionRules, load_cassette
from proxy.cassette_cache import CassetteCache, has_interactions
from proxy.exchange import Request

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes"


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    for name in ("compliant.yaml", "flawed.yaml"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


def test_an_unchanged_file_is_parsed_once(cassettes: Path):
    cache = CassetteCache()
    first = cache.index(cassettes / "compliant.yaml")
    again = cache.index(str(cassettes / "compliant.yaml"))
    assert again is first
    assert cache.loads == 1
    assert len(first) == len(load_cassette(cassettes / "compliant.yaml").exchanges)


def test_a_changed_file_is_parsed_again(cassettes: Path):
    cache = CassetteCache()
    path = cassettes / "compliant.yaml"
    before = cache.index(path)
    shutil.copy(cassettes / "flawed.yaml", path)  # same inode, new size and mtime
    after = cache.index(path)
    assert after is not before
    assert len(after) == len(load_cassette(SHIPPED / "flawed.yaml").exchanges)


def test_a_file_replaced_with_the_same_size_and_time_is_parsed_again(cassettes: Path):
    cache = CassetteCache()
    path = cassettes / "compliant.yaml"
    before = cache.index(path)
    stat = path.stat()
    replacement = cassettes / "replacement.yaml"
    shutil.copy(path, replacement)  # a new inode: what an editor's save-by-rename gives
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    assert cache.index(path) is not before
    assert cache.loads == 2


def test_only_the_most_recently_used_are_kept(cassettes: Path):
    cache = CassetteCache(capacity=1)
    compliant = cache.index(cassettes / "compliant.yaml")
    cache.index(cassettes / "flawed.yaml")
    assert len(cache) == 1
    assert cache.index(cassettes / "compliant.yaml") is not compliant
    assert cache.loads == 3


def test_a_missing_or_broken_file_is_a_cassette_error(cassettes: Path):
    cache = CassetteCache()
    with pytest.raises(CassetteError):
        cache.index(cassettes / "missing.yaml")
    (cassettes / "broken.yaml").write_text("interactions: [")
    with pytest.raises(CassetteError):
        cache.index(cassettes / "broken.yaml")
    assert len(cache) == 0


def test_has_interactions(cassettes: Path):
    assert has_interactions(cassettes / "compliant.yaml")
    assert not has_interactions(cassettes / "missing.yaml")
    (cassettes / "empty.yaml").write_text("")
    assert not has_interactions(cassettes / "empty.yaml")


def test_other_redaction_rules_read_the_file_again(cassettes: Path):
    cache = CassetteCache()
    default = cache.index(cassettes / "compliant.yaml")
    assert cache.index(cassettes / "compliant.yaml", RedactionRules()) is default
    stricter = cache.index(cassettes / "compliant.yaml", RedactionRules.build(query_params=["selection"]))
    assert stricter is not default
    assert cache.loads == 2


def test_fresh_copies_of_a_cached_index_play_independently(cassettes: Path):
    cached = CassetteCache().index(cassettes / "compliant.yaml")
    recorded = load_cassette(cassettes / "compliant.yaml").exchanges[0].request
    request = Request(recorded.method, recorded.url, recorded.headers, recorded.body)
    first, second = cached.fresh("exhaust"), cached.fresh("exhaust")
    while first.play(request).hit:  # play every recording of this request, then miss
        pass
    assert first.usage().misses == 1
    assert second.play(request).hit  # the other copy has played nothing yet
    assert second.usage().served == 1 and second.usage().misses == 0
    assert cached.usage().served == 0  # the shared index itself is never played
