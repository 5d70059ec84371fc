"""The memory a replay takes: the index's Python heap in process, and the peak resident memory (VmHWM) of
`tmproxy replay` processes against tmproxy's embedded mitmproxy with no addon (`null`).

    python benchmarks/bench_replay_memory.py [--count 10000] [--json memory.json]

Each replaying proxy gets every recorded request once (so every interaction is served) over one
keep-alive connection before its VmHWM is read. The replays are given `--upstream` (the cassette's own
origin, never contacted); without it, `tmproxy replay` infers the upstream from the cassette's cached
index (`cli.upstream_of_cassette`), which the replayer then reuses: measured too, as
`replay_large_inferring`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_live as live  # noqa: E402

from proxy.cassette import load_cassette  # noqa: E402
from proxy.replay import ReplayIndex  # noqa: E402


def heap_mb(build: Any) -> dict[str, float]:
    """The Python heap (tracemalloc) at its peak while `build()` runs, and what it keeps."""
    tracemalloc.start()
    try:
        kept = build()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return {"peak_mb": peak / 1e6, "kept_mb": current / 1e6}


def index_heaps(path: Path) -> dict[str, dict[str, float]]:
    """The index as the replay builds it (from the file) and as it was built before (from a loaded cassette)."""
    return {
        "from_cassette": heap_mb(lambda: ReplayIndex.from_cassette(path)),
        "from_loaded_exchanges": heap_mb(lambda: ReplayIndex(load_cassette(path).exchanges)),
    }


def play_every_call(url: str, calls: Sequence[live.Call]) -> int:
    """Each call once over one keep-alive connection; the number of answers that were not 200."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    failures = 0
    try:
        for call in calls:
            connection.request(call.method, call.path, body=call.body or None, headers=dict(call.headers))
            response = connection.getresponse()
            response.read()
            failures += response.status != 200
    finally:
        connection.close()
    return failures


def process_peaks(workdir: Path, count: int, small: int) -> dict[str, Any]:
    """VmHWM of the null proxy and of replays of `count` and `small` interactions, after serving them."""
    now = time.time()
    calls = live.partner_calls(count)
    large_path, small_path = workdir / "memory-large.yaml", workdir / "memory-small.yaml"
    live.write_cassette(large_path, calls, now)
    live.write_cassette(small_path, calls[:small], now)
    confdir = workdir / "mitmproxy-conf"
    upstream = ["--upstream", live.TM]
    peaks: dict[str, float | None] = {}
    failures: dict[str, int] = {}
    with live.Processes(workdir, live.Cores()) as procs:
        started = {
            "null": (procs.start_null_proxy(live.TM, confdir), []),
            "replay_small": (procs.start_tmproxy("mem-small", ["replay", str(small_path), *upstream], confdir),
                             calls[:small]),
            "replay_large": (procs.start_tmproxy("mem-large", ["replay", str(large_path), *upstream], confdir),
                             calls),
            "replay_large_inferring": (procs.start_tmproxy("mem-infer", ["replay", str(large_path)], confdir),
                                       calls),
        }  # fmt: skip
        for name, (proc, played) in started.items():
            failures[name] = play_every_call(proc.url, played) if played else 0
            peaks[name] = proc.peak_rss_mb()
    return {
        "interactions": count,
        "cassette_mb": large_path.stat().st_size / 1e6,
        "vmhwm_mb": peaks,
        "non_200": failures,
    }


def measure(workdir: Path, count: int = 10_000, small: int = 10) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    results = process_peaks(workdir, count, small)
    results["heap"] = index_heaps(workdir / "memory-large.yaml")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    with live.workspace() as workdir:
        results = measure(workdir, args.count)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
