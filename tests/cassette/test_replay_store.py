"""The replay index's recordings kept in a temporary file: lookups by hash, the file's life, its failures."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import pytest
from cassette.cassette_helpers import UPSTREAM, exchange, json_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.replay
from proxy.cassette import CassetteError, CassetteWriter
from proxy.cassette_cache import CassetteCache
from proxy.exchange import Exchange, Request
from proxy.replay import EXHAUST, ReplayIndex
from proxy.replay_store import RecordFile, StoreDamagedError

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes"


def _write(path: Path, exchanges: list[Exchange]) -> Path:
    with CassetteWriter(path) as writer:
        for recorded in exchanges:
            writer.append(recorded)
    return path


def _event(n: int, body: bytes = b"") -> Exchange:
    method = "POST" if body else "GET"
    return exchange(
        method, f"{UPSTREAM}/partners/v1/events/E{n}", request_body=body,
        response_body=json_bytes({"event": n, "body": body.decode()}), id=f"i{n}",
    )  # fmt: skip


def _request(recorded: Exchange) -> Request:
    return Request(recorded.request.method, recorded.request.url, body=recorded.request.body)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(st.integers(0, 6), min_size=1, max_size=25),
    played=st.lists(st.integers(0, 8), max_size=40),
    buckets=st.sampled_from([1, 2, 3, None]),
)
def test_colliding_hashes_still_find_each_request_exactly(tmp_path_factory, events, played, buckets):
    """Requests recorded several times and different requests with one hash (forced: every key hashed
    into `buckets` values) are served as a dict of keys would serve them, from the file as from memory."""
    original = proxy.replay._key_hash
    if buckets is not None:
        proxy.replay._key_hash = lambda key: hash(key) % buckets - 1
    try:
        recorded = [_event(n, b'{"n": %d}' % (n % 2)) for n in events]
        path = _write(tmp_path_factory.mktemp("c") / "c.yaml", recorded)
        from_file = ReplayIndex.from_cassette(path, on_exhausted=EXHAUST)
        in_memory = ReplayIndex(recorded, on_exhausted=EXHAUST)
        by_key: dict[str, list[str]] = {}
        for e in recorded:
            by_key.setdefault(e.request.url, []).append(e.id)
        for n in played:
            request = _request(_event(n, b'{"n": %d}' % (n % 2)))
            served, expected = from_file.play(request), in_memory.play(request)
            assert served.exchange == expected.exchange
            assert served.near_miss == expected.near_miss
            queue = by_key.get(request.url, [])
            assert (served.exchange.id if served.exchange else None) == (queue.pop(0) if queue else None)
        assert from_file.usage() == in_memory.usage()
    finally:
        proxy.replay._key_hash = original


def test_a_copy_keeps_playing_what_it_was_given_after_the_cassette_is_rewritten(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", [_event(1), _event(2)])
    cache = CassetteCache()
    playing = cache.index(path).fresh()
    _write(path, [_event(3)])  # appended: the file changed while a test was replaying it
    rewritten = cache.index(path).fresh()
    assert cache.loads == 2
    assert [playing.play(_request(_event(n))).hit for n in (1, 2, 3)] == [True, True, False]
    assert [rewritten.play(_request(_event(n))).hit for n in (1, 2, 3)] == [True, True, True]
    os.replace(_write(tmp_path / "other.yaml", [_event(4)]), path)
    assert not playing.play(_request(_event(4))).hit
    assert cache.index(path).fresh().play(_request(_event(4))).hit


def test_an_evicted_index_keeps_its_file_until_its_last_copy_is_gone(tmp_path: Path) -> None:
    cache = CassetteCache(capacity=1)
    shutil.copy(SHIPPED / "compliant.yaml", tmp_path / "a.yaml")
    shutil.copy(SHIPPED / "flawed.yaml", tmp_path / "b.yaml")
    before = _open_descriptors()
    store = weakref.ref(cache.index(tmp_path / "a.yaml")._store)
    playing = cache.index(tmp_path / "a.yaml").fresh()
    cache.index(tmp_path / "b.yaml")  # evicts a.yaml
    assert _open_descriptors() == before + 2  # a.yaml's file, still played, and b.yaml's
    assert all(playing.play(request).hit for request in _recorded_requests(tmp_path / "a.yaml"))
    del playing
    gc.collect()
    assert store() is None
    assert _open_descriptors() == before + 1


def _recorded_requests(path: Path) -> list[Request]:
    from proxy.cassette import load_cassette

    return [_request(e) for e in load_cassette(path).exchanges if e.response is not None]


def test_a_broken_cassette_leaves_no_temporary_file_open(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", [_event(n) for n in range(3)])
    data = path.read_bytes()
    end = data.index(b"# tmproxy:end json\n") + len(b"# tmproxy:end json\n")
    path.write_bytes(data[:end] + b"- {bad: [\n# tmproxy:end json\n")
    before = _open_descriptors()
    for _ in range(3):
        with pytest.raises(CassetteError, match="line"):
            ReplayIndex.from_cassette(path)
    gc.collect()
    assert _open_descriptors() == before


def test_no_place_for_the_temporary_file_is_a_cassette_error(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path / "c.yaml", [_event(1)])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(CassetteError, match="temporary file"):
        ReplayIndex.from_cassette(path)


def test_a_recording_cut_short_in_the_file_is_an_error_not_a_wrong_answer(tmp_path: Path) -> None:
    index = ReplayIndex.from_cassette(_write(tmp_path / "c.yaml", [_event(1), _event(2)]))
    store = index._store
    assert isinstance(store, RecordFile)
    os.ftruncate(store._fd, os.fstat(store._fd).st_size - 1)
    assert index.play(_request(_event(1))).hit
    with pytest.raises(StoreDamagedError, match="recording 1"):
        index.play(_request(_event(2)))
