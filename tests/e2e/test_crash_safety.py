"""`kill -9` while `tmproxy record` is under load leaves a cassette holding every answered interaction."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import requests
import vcr

from proxy.cassette import CassetteWriter, load_cassette
from proxy.processes import recording
from proxy.sandbox.client import EVENT_ID

WORKERS = 8
KILL_AFTER = 150


def test_kill_9_under_load_keeps_every_answered_interaction(sandbox, tmp_path: Path):
    cassette = tmp_path / "load.yaml"
    answered = 0
    lock = threading.Lock()
    enough = threading.Event()
    with recording(cassette, sandbox.url) as proxy:

        def hammer(worker: int) -> None:
            nonlocal answered
            session = requests.Session()
            session.trust_env = False
            n = 0
            while not enough.is_set() and n < 10 * KILL_AFTER:
                n += 1
                url = f"{proxy.url}/top-picks/v1/events/{EVENT_ID}"
                try:
                    response = session.get(url, params={"apikey": "k", "worker": worker, "n": n}, timeout=10)
                except requests.RequestException:
                    return
                if response.status_code == 200:
                    with lock:
                        answered += 1
                        if answered >= KILL_AFTER:
                            enough.set()

        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(WORKERS)]
        for t in threads:
            t.start()
        assert enough.wait(120), "the load never reached the kill point"
        with lock:
            answered_before_kill = answered
            proxy.proc.send_signal(signal.SIGKILL)
        for t in threads:
            t.join(30)
        assert proxy.proc.wait(30) == -signal.SIGKILL

    loaded = load_cassette(cassette)
    assert len(loaded.exchanges) >= answered_before_kill
    with CassetteWriter(cassette) as writer:  # reopening repairs a torn tail, if the kill made one
        assert writer.count == len(loaded.exchanges)
    with vcr.use_cassette(str(cassette), record_mode="none") as played:
        assert len(played.data) == len(loaded.exchanges)
