"""The memory a replay takes: the index's Python heap in process, and the peak resident memory (VmHWM) of
`tmproxy replay` processes against tmproxy's embedded mitmproxy with no addon (`null`).

    python benchmarks/bench_replay_memory.py [--count 10000] [--json memory.json] [--before DIR]

Each replaying proxy gets every recorded request once (so every interaction is served) over one
keep-alive connection before its VmHWM is read. The replays are given `--upstream` (the cassette's own
origin, never contacted); without it, `tmproxy replay` infers the upstream from the cassette's cached
index (`cli.upstream_of_cassette`), which the replayer then reuses: measured too, as
`replay_large_inferring`. `replay_small_served_count` serves as many requests as the large replay from
the small cassette (its calls in turn, repeats served again): what serving that traffic costs whatever
the cassette.

Also the replayer's cost per request in process (`play_us`): an index of the large cassette, built as
the replay builds it, plays every recorded request and turns each hit into the response served now,
best of 5 rounds in CPU time. With `--before DIR` (a checkout of the code before a change) the same is
measured there, in turns with this checkout, for a ratio of one run.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import subprocess
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
    judges: dict[str, float | None] = {}
    failures: dict[str, int] = {}
    with live.Processes(workdir, live.Cores()) as procs:
        started = {
            "null": (procs.start_null_proxy(live.TM, confdir), []),
            "replay_small": (procs.start_tmproxy("mem-small", ["replay", str(small_path), *upstream], confdir),
                             calls[:small]),
            "replay_small_served_count": (
                procs.start_tmproxy("mem-small-busy", ["replay", str(small_path), *upstream], confdir),
                [calls[i % small] for i in range(count)]),
            "replay_large": (procs.start_tmproxy("mem-large", ["replay", str(large_path), *upstream], confdir),
                             calls),
            "replay_large_inferring": (procs.start_tmproxy("mem-infer", ["replay", str(large_path)], confdir),
                                       calls),
        }  # fmt: skip
        for name, (proc, played) in started.items():
            failures[name] = play_every_call(proc.url, played) if played else 0
            peaks[name] = proc.peak_rss_mb()
            judges[name] = max((live.peak_rss_mb_of(pid) or 0.0 for pid in proc.helper_pids()), default=None)
    return {
        "interactions": count,
        "cassette_mb": large_path.stat().st_size / 1e6,
        "vmhwm_mb": peaks,
        "judge_vmhwm_mb": judges,  # the judge process beside each proxy (code shared copy-on-write)
        "non_200": failures,
    }


def play_cost_us(path: Path, count: int, rounds: int = 5) -> float:
    """CPU µs per request of playing every recorded request (`count` of them) and making each hit the
    response served now, on a fresh copy of one index per round; the best round."""
    from proxy.exchange import Headers, Request
    from proxy.recording import replayed_response

    index = ReplayIndex.from_cassette(path)
    requests = [
        Request(c.method, live.TM + c.path, Headers(c.headers), c.body) for c in live.partner_calls(count)
    ]
    gc.collect()
    gc.freeze()  # the harness's requests: the collector walking them is not the replayer's cost
    best = float("inf")
    for _ in range(rounds):
        played = index.fresh()
        now = time.time()
        start = time.process_time()
        for request in requests:
            result = played.play(request)
            assert result.exchange is not None
            replayed_response(result.exchange, now)
        best = min(best, time.process_time() - start)
    return best / len(requests) * 1e6


_PLAY_COST_MAIN = """
import sys
root, here, path, count = sys.argv[1:]
sys.path.insert(0, root)
import proxy.replay  # the checkout measured: its package, whatever the benchmark adds to sys.path
sys.path.insert(0, here)
import bench_replay_memory
print(bench_replay_memory.play_cost_us(bench_replay_memory.Path(path), int(count)))
"""


def play_costs(path: Path, count: int, before: Path | None, turns: int = 3) -> dict[str, Any]:
    """`play_cost_us` in fresh processes of this checkout and of `before`, in turns; the best of each."""
    roots = {"now": HERE.parent, **({"before": before} if before else {})}
    best: dict[str, float] = {}
    for _ in range(turns):
        for name, root in roots.items():
            argv = [sys.executable, "-c", _PLAY_COST_MAIN, str(root), str(HERE), str(path), str(count)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            best[name] = min(best.get(name, float("inf")), float(out))
    results: dict[str, Any] = {f"{name}_us": us for name, us in best.items()}
    if before:
        results["now_over_before"] = best["now"] / best["before"]
    return results


def measure(
    workdir: Path, count: int = 10_000, small: int = 10, before: Path | None = None
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    results = process_peaks(workdir, count, small)
    results["heap"] = index_heaps(workdir / "memory-large.yaml")
    results["play_us"] = play_costs(workdir / "memory-large.yaml", count, before)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--before", type=Path, help="a checkout of the code before, for play_us")
    args = parser.parse_args(argv)
    with live.workspace() as workdir:
        results = measure(workdir, args.count, before=args.before)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
