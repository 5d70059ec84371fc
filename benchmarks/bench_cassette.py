"""Benchmark: tmproxy's cassette load and replay against vcrpy's, on one 5,000-interaction cassette.

    python benchmarks/bench_cassette.py [--count 5000] [--json results.json] [--vcrpy-cap 30]

(a) load: `proxy.cassette.load_cassette` vs vcrpy's `Cassette.load` (and its `deserialize`) on the same
file tmproxy wrote, plus vcrpy on the same interactions in the layout vcrpy writes itself.
(b) end-to-end replay of every recorded request: tmproxy's load + `ReplayIndex` + one `play` per request,
vs vcrpy's `Cassette.load` + one `play_response` per request. vcrpy scans the cassette for each request
(quadratic), so it runs until `--vcrpy-cap` seconds and the rest is extrapolated as c * n^2 from the
requests it did play; the output says when that happened.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vcr
from vcr.cassette import Cassette as VcrCassette
from vcr.record_mode import RecordMode
from vcr.request import Request as VcrRequest
from vcr.serialize import deserialize, serialize
from vcr.serializers import yamlserializer

from proxy.cassette import CassetteWriter, load_cassette
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.replay import ReplayIndex

UPSTREAM = "https://app.ticketmaster.com"
LIVE_KEY = "live-apikey-0123456789abcdef"


def _top_picks(rng: random.Random, event: str) -> dict[str, Any]:
    """A Top Picks body of a few KB, shaped like Ticketmaster's."""
    offers = [
        {
            "offerId": f"off-{event}-{i}",
            "name": "Standard Admission",
            "ticketTypeId": f"000{i}",
            "priceLevelId": str(rng.randint(1, 9)),
            "currency": "USD",
            "faceValue": round(rng.uniform(20, 300), 2),
            "totalPrice": round(rng.uniform(25, 350), 2),
            "charges": [{"reason": "service", "type": "fee", "amount": round(rng.uniform(1, 30), 2)}],
            "limit": {"min": 1, "max": 8},
        }
        for i in range(6)
    ]
    picks = [
        {
            "type": "seats",
            "quality": round(rng.random(), 4),
            "section": f"{rng.randint(100, 330)}",
            "selection": rng.choice(["standard", "resale"]),
            "row": rng.choice("ABCDEFGHJK"),
            "area": {
                "id": str(rng.randint(1, 40)),
                "name": "Lower Level",
                "description": "Lower level sideline",
            },
            "offers": [offers[i % 6]["offerId"]],
            "seats": [str(s) for s in range(rng.randint(1, 10), rng.randint(11, 20))],
            "coordinates": [{"x": rng.random(), "y": rng.random()}],
        }
        for i in range(8)
    ]
    return {
        "page": {"number": 0, "size": 8, "totalElements": 40, "totalPages": 5},
        "picks": picks,
        "_embedded": {"offer": offers},
        "eventDetails": {"id": event, "venueMapUrl": f"https://maps.ticketmaster.com/{event}.png"},
        "fanSession": {
            "resaleSid": {
                "sessionId": f"{rng.getrandbits(128):032x}",
                "sessionStartTime": "1700000000000",
                "sessionExpireTime": "1700003600000",
            }
        },
    }


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def build_exchanges(count: int, seed: int = 7) -> list[Exchange]:
    """Top Picks calls (3 in 4) and reserves (1 in 4) over many events, a few KB each."""
    rng = random.Random(seed)
    exchanges = []
    for i in range(count):
        event = f"{rng.getrandbits(64):016X}"
        headers = Headers([("Accept", "application/json"), ("User-Agent", "partner-app/2.1")])
        if i % 4:
            url = (
                f"{UPSTREAM}/top-picks/v1/events/{event}?apikey={LIVE_KEY}&quantity={1 + i % 4}&sort=quality"
            )
            request = Request("GET", url, headers)
            body = _json(_top_picks(rng, event))
            status = 200
        else:
            reserve = {"reserve": {"tickets": [{"id": f"resale-{event}-{i}", "quantity": 2}], "areas": []}}
            headers.set("Content-Type", "application/json")
            request = Request(
                "POST",
                f"{UPSTREAM}/partners/v1/events/{event}/cart?apikey={LIVE_KEY}",
                headers,
                _json(reserve),
            )
            cart = {
                "cart_id": f"{rng.getrandbits(256):064x}",
                "cart": {"hold_time": 299, "items": [reserve] * 12},
            }
            body = _json(cart)
            status = 200
        response_headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        exchanges.append(
            Exchange(
                request,
                Response(status, response_headers, body, "OK"),
                started_at=1.7e9 + i,
                ended_at=1.7e9 + i + 0.2,
            )
        )
    return exchanges


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def vcrpy_load(path: Path) -> VcrCassette:
    config = vcr.VCR().get_merged_config(filter_query_parameters=[("apikey", "REDACTED")])
    return VcrCassette.load(
        path=str(path),
        serializer=yamlserializer,
        record_mode=RecordMode.NONE,
        match_on=config["match_on"],
        before_record_request=config["before_record_request"],
    )


def tmproxy_replay(path: Path, requests: list[Request]) -> int:
    index = ReplayIndex(load_cassette(path).exchanges)
    return sum(index.play(r).hit for r in requests)


def vcrpy_replay(path: Path, requests: list[VcrRequest], cap: float) -> dict[str, Any]:
    """Load and play until done or `cap` seconds; extrapolate c * n^2 when capped."""
    start = time.perf_counter()
    cassette = vcrpy_load(path)
    loaded = time.perf_counter()
    played = 0
    for request in requests:
        cassette.play_response(request)
        played += 1
        if time.perf_counter() - loaded > cap:
            break
    playing = time.perf_counter() - loaded
    total = len(requests)
    estimate = (
        (loaded - start) + playing * (total / played) ** 2 if played < total else playing + (loaded - start)
    )
    return {
        "played": played,
        "load_s": loaded - start,
        "play_s": playing,
        "total_s": estimate,
        "capped": played < total,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="loads are timed best-of-N")
    parser.add_argument(
        "--vcrpy-cap", type=float, default=30.0, help="seconds of vcrpy playing before extrapolating"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--dir", type=Path, help="where to put the cassettes (default: a temporary directory)"
    )
    args = parser.parse_args(argv)

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-cassette-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ours, theirs = workdir / "tmproxy.yaml", workdir / "vcrpy.yaml"
    ours.unlink(missing_ok=True)

    exchanges = build_exchanges(args.count)
    start = time.perf_counter()
    with CassetteWriter(ours, metadata={"upstream": UPSTREAM}) as writer:
        for exchange in exchanges:
            writer.append(exchange)
    write_s = time.perf_counter() - start
    requests_, responses, *_ = deserialize(ours.read_text(), yamlserializer)
    theirs.write_text(serialize({"requests": requests_, "responses": responses}, yamlserializer))

    loads = {
        "tmproxy load_cassette": best_of(args.repeat, lambda: load_cassette(ours)),
        "vcrpy Cassette.load (same file)": best_of(args.repeat, lambda: vcrpy_load(ours)),
        "vcrpy deserialize (same file)": best_of(
            args.repeat, lambda: deserialize(ours.read_text(), yamlserializer)
        ),
        "vcrpy Cassette.load (vcrpy's own layout)": best_of(args.repeat, lambda: vcrpy_load(theirs)),
    }

    live = [Request(e.request.method, e.request.url, e.request.headers, e.request.body) for e in exchanges]
    start = time.perf_counter()
    hits = tmproxy_replay(ours, live)
    ours_replay_s = time.perf_counter() - start
    vcr_requests = [VcrRequest(r.method, r.url, r.body or None, dict(r.headers.items())) for r in live]
    theirs_replay = vcrpy_replay(ours, vcr_requests, args.vcrpy_cap)

    base = loads["vcrpy Cassette.load (same file)"]
    results = {
        "count": args.count,
        "file_mb": round(ours.stat().st_size / 1e6, 2),
        "python": platform.python_version(),
        "write_s": write_s,
        "load_s": loads,
        "load_ratio_tmproxy_vs_vcrpy": loads["tmproxy load_cassette"] / base,
        "load_ratio_tmproxy_vs_vcrpy_own_layout": loads["tmproxy load_cassette"]
        / loads["vcrpy Cassette.load (vcrpy's own layout)"],
        "replay": {"tmproxy_s": ours_replay_s, "tmproxy_hits": hits, "vcrpy": theirs_replay},
        "replay_ratio_tmproxy_vs_vcrpy": ours_replay_s / theirs_replay["total_s"],
    }
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def print_table(results: dict[str, Any]) -> None:
    n = results["count"]
    print(f"{n} interactions, {results['file_mb']} MB, Python {results['python']}")
    print(f"tmproxy write (redact + append, one at a time): {results['write_s']:.2f} s")
    base = results["load_s"]["vcrpy Cassette.load (same file)"]
    print(f"\n{'(a) load':44} {'seconds':>9} {'vs vcrpy':>9}")
    for name, seconds in results["load_s"].items():
        print(f"{name:44} {seconds:9.3f} {seconds / base:9.3f}")
    replay = results["replay"]
    vcr_ = replay["vcrpy"]
    note = f" (extrapolated from {vcr_['played']} plays)" if vcr_["capped"] else ""
    print(f"\n{'(b) replay of every request':44} {'seconds':>9} {'ratio':>9}")
    print(
        f"{'tmproxy load + index + play':44} {replay['tmproxy_s']:9.3f} {results['replay_ratio_tmproxy_vs_vcrpy']:9.5f}"
    )
    print(f"{'vcrpy load + play_response':44} {vcr_['total_s']:9.3f} {1:9.5f}{note}")
    print(f"tmproxy hits: {replay['tmproxy_hits']}/{n}")


if __name__ == "__main__":
    sys.exit(main())
