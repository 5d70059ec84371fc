"""The writer: append-only, crash-safe (kill -9 and torn tails), thread-safe, reopenable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cassette.cassette_helpers import UPSTREAM, exchange
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from proxy.cassette import CassetteError, CassetteWriter, load_cassette
from proxy.exchange import Exchange, Request

CHILD = """
import sys
from proxy.cassette import CassetteWriter
from proxy.exchange import Exchange, Headers, Request, Response

writer = CassetteWriter(sys.argv[1])
i = 0
while True:
    body = (b'{"n": %d, "pad": "' % i) + b"x" * (500 + (i * 997) % 9000) + b'"}'
    binary = i % 7 == 0
    writer.append(Exchange(
        Request("GET", "https://app.ticketmaster.com/top-picks/v1/events/E%d?apikey=k123456789" % i),
        Response(200, Headers([("Content-Type", "application/json")]), b"\\xff" + body if binary else body),
    ))
    i += 1
    print(i, flush=True)
"""


def _vcrpy_count(path: Path) -> int:
    requests, _responses, *_ = deserialize(path.read_text(), yamlserializer)
    return len(requests)


@pytest.mark.parametrize("kill_after", [25, 60])
def test_kill_9_mid_recording_leaves_a_loadable_cassette(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "crash.yaml"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    written = 0
    for line in child.stdout:
        written = int(line)
        if written >= kill_after:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=10)
    child.stdout.close()
    assert written >= kill_after

    cassette = load_cassette(path)
    assert len(cassette.exchanges) >= written
    if cassette.warnings:  # the kill tore the item being written: the next open repairs it
        CassetteWriter(path).close()
    assert _vcrpy_count(path) == len(cassette.exchanges)
    assert [e.request.path for e in cassette.exchanges[:3]] == [
        f"/top-picks/v1/events/E{i}" for i in range(3)
    ]


def _write(path: Path, count: int) -> list[int]:
    """Write `count` interactions; the file size after each."""
    sizes = []
    with CassetteWriter(path) as writer:
        sizes.append(path.stat().st_size)
        for i in range(count):
            writer.append(exchange(url=f"{UPSTREAM}/partners/v1/events/E{i}?apikey=key123456"))
            sizes.append(path.stat().st_size)
    return sizes


@pytest.mark.parametrize("into_last", [1, 7, 300, -25, -21])
def test_torn_tail_is_ignored_by_the_reader_and_truncated_on_reopen(tmp_path: Path, into_last: int) -> None:
    path = tmp_path / "torn.yaml"
    sizes = _write(path, 3)
    full = path.read_bytes()
    cut = (sizes[2] if into_last > 0 else sizes[3]) + into_last
    path.write_bytes(full[:cut])

    cassette = load_cassette(path)
    assert len(cassette.exchanges) == 2
    assert cassette.warnings and "torn" in cassette.warnings[0]
    assert path.read_bytes() == full[:cut]  # reading never writes

    writer = CassetteWriter(path)
    assert writer.warnings and writer.count == 2
    assert path.read_bytes() == full[: sizes[2]]
    assert _vcrpy_count(path) == 2
    writer.append(exchange(url=f"{UPSTREAM}/after-repair"))
    writer.close()
    assert [e.request.path for e in load_cassette(path).exchanges][-1] == "/after-repair"


@pytest.mark.parametrize("cut", [1, 5])
def test_an_item_cut_only_in_its_closing_comment_is_whole_and_kept(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "c.yaml"
    _write(path, 3)
    path.write_bytes(path.read_bytes()[:-cut])
    cassette = load_cassette(path)
    assert len(cassette.exchanges) == 3 and cassette.warnings == []
    with CassetteWriter(path) as writer:  # rewritten once in tmproxy's layout, closing comments included
        assert writer.count == 3 and writer.warnings == []
    assert path.read_bytes().endswith(b"# tmproxy:end json\n") and _vcrpy_count(path) == 3


@pytest.mark.parametrize("into_first", [1, 2, 3, 40])
def test_torn_first_item_restores_the_empty_list(tmp_path: Path, into_first: int) -> None:
    path = tmp_path / "torn.yaml"
    sizes = _write(path, 1)
    full = path.read_bytes()
    empty_at = sizes[0] - len(b" []\n")
    path.write_bytes(full[: empty_at + into_first])

    assert load_cassette(path).exchanges == []
    with CassetteWriter(path) as writer:
        assert writer.count == 0
        assert writer.warnings or into_first == 1  # a lone newline is no torn item, only trimmed
    assert path.read_bytes() == full[:empty_at] + b" []\n"
    assert _vcrpy_count(path) == 0


def test_appends_never_rewrite_earlier_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with CassetteWriter(path) as writer:
        header = path.read_bytes()
        writer.append(exchange())
        first = path.read_bytes()
        assert first[: len(header) - 4] == header[:-4]  # only " []\n" of the empty list was replaced
        for i in range(5):
            before = path.read_bytes()
            writer.append(exchange(url=f"{UPSTREAM}/x/{i}"))
            assert path.read_bytes().startswith(before)


def test_empty_cassette_loads_in_vcrpy_and_tmproxy(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    CassetteWriter(path, metadata={"upstream": UPSTREAM}).close()
    assert "interactions: []" in path.read_text()
    assert _vcrpy_count(path) == 0
    assert load_cassette(path).metadata["upstream"] == UPSTREAM


def test_reopening_appends_and_keeps_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _write(path, 2)
    metadata = load_cassette(path).metadata
    with CassetteWriter(path, metadata={"ignored": True}) as writer:
        assert writer.count == 2
        writer.append(exchange(url=f"{UPSTREAM}/third"))
    cassette = load_cassette(path)
    assert len(cassette.exchanges) == 3 and cassette.metadata == metadata


def test_overwrite_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _write(path, 2)
    CassetteWriter(path, overwrite=True).close()
    assert load_cassette(path).exchanges == []


def test_concurrent_appends_from_threads(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with CassetteWriter(path, fsync_interval=0.05) as writer:

        def record(thread: int) -> None:
            for i in range(25):
                writer.append(exchange(url=f"{UPSTREAM}/t{thread}/{i}?apikey=key123456"))

        threads = [threading.Thread(target=record, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.flush()
    paths = sorted(e.request.path for e in load_cassette(path).exchanges)
    assert paths == sorted(f"/t{t}/{i}" for t in range(4) for i in range(25))
    assert _vcrpy_count(path) == 100


def test_exchange_without_response_is_skipped(tmp_path: Path) -> None:
    with CassetteWriter(tmp_path / "c.yaml") as writer:
        assert writer.append(Exchange(Request("GET", UPSTREAM))) is False
        assert writer.count == 0


def test_closed_writer_refuses_to_append(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path / "c.yaml")
    writer.close()
    writer.close()
    with pytest.raises(CassetteError, match="closed"):
        writer.append(exchange())


def test_a_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with CassetteWriter(path), pytest.raises(CassetteError, match="another process"):
        CassetteWriter(path)


def test_new_cassette_is_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.yaml"
    CassetteWriter(path).close()
    assert path.stat().st_mode & 0o644 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["c.yaml"]
