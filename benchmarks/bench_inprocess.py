"""Benchmark: `tmproxy.replay` against `vcr.use_cassette`, in-process, through the requests library.

    python benchmarks/bench_inprocess.py [--count 5000] [--vcrpy-cap 30] [--json results.json]

One cassette of `--count` interactions (bench_cassette's generator, written by tmproxy's writer into a
temporary folder) and one `requests` call for each of them, made the same way under both: patch the
clients, load the cassette, serve every request, unpatch. Both use vcrpy's client stubs; they differ
in the cassette behind them: tmproxy's index finds a response with one dict lookup, vcrpy's
`Cassette` scans its interactions for each request, so the i-th request costs it about a + b*i.
vcrpy therefore plays until `--vcrpy-cap` seconds; a and b are then fitted (least squares) to the
times of the requests it did play, and its total is its load plus the sum of a + b*i over every
request. The output says when that happened. Times are this process's CPU time (`bench_cassette.clock`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests
import vcr

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_cassette import build_exchanges, clock  # noqa: E402

import tmproxy  # noqa: E402
from proxy.cassette import CassetteWriter  # noqa: E402
from proxy.exchange import Request  # noqa: E402

VCRPY_OPTIONS = {"record_mode": "none", "filter_query_parameters": [("apikey", "REDACTED")]}


def send(session: requests.Session, request: Request) -> int:
    answer = session.request(
        request.method, request.url, data=request.body or None, headers=dict(request.headers.items())
    )
    return answer.status_code


def time_tmproxy(path: Path, calls: list[Request]) -> dict[str, Any]:
    start = clock()
    with tmproxy.replay(path) as cassette, requests.Session() as session:
        loaded = clock()
        for call in calls:
            send(session, call)
    end = clock()
    return {"load_s": loaded - start, "total_s": end - start, "served": cassette.usage.served}


def fitted_total(times: list[float], count: int) -> float:
    """The sum over `count` requests of a + b*i, with a and b fitted to the first requests' times."""
    positions = range(len(times))
    slope, intercept = statistics.linear_regression(positions, times)
    return intercept * count + slope * count * (count - 1) / 2


def time_vcrpy(path: Path, calls: list[Request], cap: float) -> dict[str, Any]:
    """Plays until done or `cap` seconds of playing; the rest is estimated (see the module doc)."""
    times: list[float] = []
    start = clock()
    with vcr.use_cassette(str(path), **VCRPY_OPTIONS), requests.Session() as session:
        loaded = previous = clock()
        for call in calls:
            send(session, call)
            now = clock()
            times.append(now - previous)
            previous = now
            if now - loaded > cap:
                break
    played = len(times)
    capped = played < len(calls)
    play_s = fitted_total(times, len(calls)) if capped else sum(times)
    return {"load_s": loaded - start, "played": played, "capped": capped, "total_s": loaded - start + play_s}


def measure(count: int, vcrpy_cap: float, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "inprocess.yaml"
    path.unlink(missing_ok=True)
    exchanges = build_exchanges(count)
    with CassetteWriter(path) as writer:
        for exchange in exchanges:
            writer.append(exchange)
    calls = [e.request for e in exchanges]  # with the live apikey, as an app sends them
    ours = time_tmproxy(path, calls)
    theirs = time_vcrpy(path, calls, vcrpy_cap)
    return {
        "count": count,
        "file_mb": round(path.stat().st_size / 1e6, 2),
        "tmproxy": ours,
        "vcrpy": theirs,
        "speedup": theirs["total_s"] / ours["total_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument(
        "--vcrpy-cap", type=float, default=30.0, help="seconds of vcrpy playing, then estimate"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as folder:
        results = measure(args.count, args.vcrpy_cap, Path(folder))
    ours, theirs = results["tmproxy"], results["vcrpy"]
    note = f" (estimated from {theirs['played']} plays)" if theirs["capped"] else ""
    print(f"{results['count']} requests through requests, {results['file_mb']} MB cassette")
    print(
        f"tmproxy.replay:    {ours['total_s']:8.2f} s CPU (load {ours['load_s']:.2f} s), {ours['served']} served"
    )
    print(f"vcr.use_cassette:  {theirs['total_s']:8.2f} s CPU (load {theirs['load_s']:.2f} s){note}")
    print(f"vcrpy time / tmproxy time: {results['speedup']:.0f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
