"""Faults around `tmproxy record`: a broken upstream, clients that leave, a full or read-only disk, signals.

In every case the proxy keeps serving or exits cleanly with a clear message, and the cassette stays
loadable by tmproxy and by vcrpy, holding exactly the interactions that really completed.
"""

from __future__ import annotations

import http.client
import signal
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import vcr
from reliability.harness import (
    Answer,
    FaultyUpstream,
    closed_port_url,
    faulty_upstream,
    remount_read_only,
    send,
    tmpfs,
)

from proxy.cassette import load_cassette
from proxy.processes import recording, run_tmproxy, tmproxy


def recorded_paths(cassette: Path) -> list[str]:
    loaded = load_cassette(cassette)
    assert not loaded.warnings, loaded.warnings
    return [urlsplit(ex.request.url).path for ex in loaded.exchanges]


def vcrpy_count(cassette: Path) -> int:
    with vcr.use_cassette(str(cassette), record_mode="none") as played:
        return len(played.data)


def send_quietly(url: str, path: str, into: list[Answer | Exception] | None = None) -> None:
    """A request from a thread: its answer, or the error of a proxy that went away, goes into `into`."""
    try:
        result: Answer | Exception = send(url, "GET", path, timeout=30)
    except (OSError, http.client.HTTPException) as exc:  # a proxy that went away closed the connection
        result = exc
    if into is not None:
        into.append(result)


def test_a_refusing_upstream_gives_502_and_records_nothing(tmp_path: Path):
    cassette = tmp_path / "refused.yaml"
    with tmproxy(
        "record", str(cassette), "--upstream", closed_port_url(), "--listen", "127.0.0.1:0"
    ) as proxy:
        assert send(proxy.url, "GET", "/top-picks/v1/events/E?apikey=k").status == 502
        assert send(proxy.url, "GET", "/top-picks/v1/events/E?apikey=k").status == 502
        assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr_text
    assert recorded_paths(cassette) == []
    assert vcrpy_count(cassette) == 0


def test_resets_garbage_and_stalls_are_answered_502_and_only_real_answers_are_recorded(tmp_path: Path):
    cassette = tmp_path / "faulty.yaml"
    with faulty_upstream() as upstream:
        with recording(
            cassette,
            upstream.url,
            "--upstream-timeout",
            "0.5",
        ) as proxy:
            answers = {
                path: send(proxy.url, "GET", path)
                for path in ("/ok-1", "/reset", "/ok-2", "/garbage", "/stall", "/ok-3")
            }
            assert {p: a.status for p, a in answers.items()} == {
                "/ok-1": 200,
                "/reset": 502,
                "/ok-2": 200,
                "/garbage": 502,
                "/stall": 502,
                "/ok-3": 200,
            }
            assert answers["/ok-3"].body == FaultyUpstream.ok_body("/ok-3")
            assert proxy.stop() == 0
    assert "upstream did not answer within" in proxy.stderr_text
    assert "Traceback" not in proxy.stderr_text
    assert recorded_paths(cassette) == ["/ok-1", "/ok-2", "/ok-3"]
    assert [ex.response.body for ex in load_cassette(cassette).exchanges if ex.response] == [
        FaultyUpstream.ok_body(p) for p in ("/ok-1", "/ok-2", "/ok-3")
    ]
    assert vcrpy_count(cassette) == 3


def test_a_client_that_hangs_up_mid_request_body_costs_nothing(tmp_path: Path):
    cassette = tmp_path / "cut.yaml"
    with faulty_upstream() as upstream:
        with recording(cassette, upstream.url) as proxy:
            host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
            with socket.create_connection((host, port)) as cut:
                cut.sendall(b"POST /ok-cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            assert send(proxy.url, "GET", "/ok-after").status == 200
            assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr_text
    assert recorded_paths(cassette) == ["/ok-after"]


def test_a_client_that_leaves_while_the_upstream_works_costs_nothing(tmp_path: Path):
    cassette = tmp_path / "left.yaml"
    with faulty_upstream() as upstream:
        with recording(cassette, upstream.url) as proxy:
            host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
            with socket.create_connection((host, port)) as leaving:
                leaving.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                assert upstream.arrived.wait(30)
            upstream.release.set()
            assert send(proxy.url, "GET", "/ok-after").status == 200
            assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr_text
    loaded = load_cassette(cassette)
    paths = recorded_paths(cassette)
    assert "/ok-after" in paths and set(paths) <= {"/slow", "/ok-after"}
    for ex in loaded.exchanges:  # if the late answer was recorded, it was recorded whole
        assert ex.response is not None and ex.response.body == FaultyUpstream.ok_body(
            urlsplit(ex.request.url).path
        )
    assert vcrpy_count(cassette) == len(paths)


def test_a_client_that_leaves_mid_response_still_gets_a_whole_recording(tmp_path: Path):
    cassette = tmp_path / "big.yaml"
    with faulty_upstream() as upstream:
        with recording(cassette, upstream.url) as proxy:
            host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
            with socket.create_connection((host, port)) as leaving:
                leaving.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                assert leaving.recv(4096).startswith(b"HTTP/1.1 200")
            assert send(proxy.url, "GET", "/ok-after").status == 200
            assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr_text
    loaded = load_cassette(cassette)
    assert recorded_paths(cassette) == ["/big", "/ok-after"]
    assert loaded.exchanges[0].response is not None
    assert len(loaded.exchanges[0].response.body) == FaultyUpstream.BIG


# --- the disk ----------------------------------------------------------------------------------------


def test_a_disk_that_fills_up_mid_recording_loses_only_what_did_not_fit(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "64k") as disk, faulty_upstream() as upstream:
        cassette = disk / "full.yaml"
        with recording(cassette, upstream.url) as proxy:
            answers = [send(proxy.url, "GET", f"/ok-{n}?pad={'p' * 4000}") for n in range(20)]
            assert [a.status for a in answers] == [200] * 20, "the app must not notice the full disk"
            assert proxy.stop() == 0
        paths = recorded_paths(cassette)  # no torn tail: the failed appends were cut off
        assert 0 < len(paths) < 20
        assert paths == [f"/ok-{n}" for n in range(len(paths))]
        assert vcrpy_count(cassette) == len(paths)
    assert "No space left on device" in proxy.stderr_text
    assert f"recorded: {len(paths)} interactions to {cassette} ({20 - len(paths)} refused)" in proxy.stdout
    assert "Traceback" not in proxy.stderr_text


def test_a_disk_too_full_for_the_first_interaction_leaves_an_empty_cassette(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "4k") as disk, faulty_upstream() as upstream:
        cassette = disk / "tiny.yaml"
        with recording(cassette, upstream.url) as proxy:
            assert send(proxy.url, "GET", f"/ok?pad={'p' * 8000}").status == 200
            assert proxy.stop() == 0
        assert cassette.read_bytes().endswith(b"\ninteractions: []\n")
        assert recorded_paths(cassette) == []
        assert vcrpy_count(cassette) == 0
    assert "No space left on device" in proxy.stderr_text


def test_a_cassette_on_a_read_only_disk_is_refused_at_start_with_a_clear_message(tmp_path: Path):
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as disk:
        for target in (disk / "new.yaml", disk / "sub" / "new.yaml"):
            result = run_tmproxy(
                "record", str(target), "--upstream", closed_port_url(), "--listen", "127.0.0.1:0"
            )
            assert result.returncode == 1
            assert f"{target}: cannot create it: Read-only file system" in result.stderr
            assert "Traceback" not in result.stderr and "listening on" not in result.stdout
        assert list(disk.iterdir()) == []


def test_an_existing_cassette_on_a_read_only_disk_replays_but_is_not_appended_to(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "256k") as disk, faulty_upstream() as upstream:
        cassette = disk / "kept.yaml"
        with recording(cassette, upstream.url) as proxy:
            assert send(proxy.url, "GET", "/ok-kept").status == 200
        before = cassette.read_bytes()
        remount_read_only(disk)

        result = run_tmproxy(
            "record",
            str(cassette),
            "--record-mode",
            "new_episodes",
            "--upstream",
            upstream.url,
            "--listen",
            "127.0.0.1:0",
        )
        assert result.returncode == 1, result.stdout
        assert "Read-only file system" in result.stderr and "Traceback" not in result.stderr

        with recording(cassette, upstream.url) as once:
            replayed = send(once.url, "GET", "/ok-kept")
            assert replayed.status == 200 and replayed.body == FaultyUpstream.ok_body("/ok-kept")
            assert once.stop() == 0
        assert cassette.read_bytes() == before


# --- signals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_recording_exits_0_with_a_summary_and_a_whole_cassette(tmp_path: Path, sig: int):
    cassette = tmp_path / "signalled.yaml"
    with faulty_upstream() as upstream:
        with recording(cassette, upstream.url) as proxy:
            assert send(proxy.url, "GET", "/ok-done").status == 200
            in_flight: list[Answer | Exception] = []
            client = threading.Thread(target=send_quietly, args=(proxy.url, "/slow", in_flight))
            client.start()
            assert upstream.arrived.wait(30)
            assert proxy.stop(sig, timeout=15) == 0
            client.join(30)
            assert not client.is_alive(), "a client of a stopped proxy must not hang"
    assert "Traceback" not in proxy.stderr_text, proxy.stderr_text
    assert "summary:" in proxy.stdout and f"recorded: 1 interactions to {cassette}" in proxy.stdout
    assert not (in_flight and isinstance(in_flight[0], Answer) and in_flight[0].status == 200)
    assert recorded_paths(cassette) == ["/ok-done"]
    assert vcrpy_count(cassette) == 1


def test_kill_9_mid_recording_then_recording_goes_on_in_the_same_cassette(tmp_path: Path):
    cassette = tmp_path / "killed.yaml"
    with faulty_upstream() as upstream:
        with recording(cassette, upstream.url) as proxy:
            assert send(proxy.url, "GET", "/ok-1").status == 200
            client = threading.Thread(target=send_quietly, args=(proxy.url, "/slow"))
            client.start()
            assert upstream.arrived.wait(30)
            assert proxy.stop(signal.SIGKILL) == -signal.SIGKILL
            client.join(30)
        assert recorded_paths(cassette) == ["/ok-1"]
        with tmproxy(
            "record",
            str(cassette),
            "--record-mode",
            "new_episodes",
            "--upstream",
            upstream.url,
            "--listen",
            "127.0.0.1:0",
        ) as again:
            assert send(again.url, "GET", "/ok-1").status == 200  # replayed
            assert send(again.url, "GET", "/ok-2").status == 200  # recorded
            assert again.stop() == 0
    assert recorded_paths(cassette) == ["/ok-1", "/ok-2"]
    assert vcrpy_count(cassette) == 2
