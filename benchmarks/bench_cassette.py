"""Benchmark: tmproxy's cassettes against vcrpy's (load, replay), and the cost of an append as they grow.

    python benchmarks/bench_cassette.py [--count 5000] [--json results.json] [--vcrpy-cap 30]

(a) load: `proxy.cassette.load_cassette` vs vcrpy's `Cassette.load` (and its `deserialize`) on the same
file tmproxy wrote, plus vcrpy on the same interactions in the layout vcrpy writes itself.
(b) end-to-end replay of every recorded request: tmproxy's load + `ReplayIndex` + one `play` per request,
vs vcrpy's `Cassette.load` + one `play_response` per request. vcrpy scans the cassette for each request
(quadratic), so it runs until `--vcrpy-cap` seconds and the rest is extrapolated as c * n^2 from the
requests it did play; the output says when that happened.
(c) `recording_scaling` (used by `benchmarks/run.py`): an append to a 10,000-interaction cassette
against one to a 10-interaction cassette.

Every timing is CPU time of this process (see `clock`)."""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
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

from proxy.cassette import CassetteWriter, Redactor, load_cassette
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.replay import ReplayIndex

UPSTREAM = "https://app.ticketmaster.com"

clock = time.process_time
"""Timings are this process's CPU time: on a shared machine, the time other processes held the core
would otherwise count against whichever side happened to be running."""
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


def with_rotating_tokens(exchanges: list[Exchange], every: int, seed: int = 11) -> list[Exchange]:
    """The traffic of an app that refreshes its OAuth token every `every` calls and sends it as a Bearer
    token: the recorder learns a new secret each time, and must keep looking for all of them."""
    rng = random.Random(seed)
    out: list[Exchange] = []
    token = ""
    for i, exchange in enumerate(exchanges):
        if i % every == 0:
            token, refresh = f"{rng.getrandbits(256):064x}", f"{rng.getrandbits(128):032x}"
            answer = _json({"access_token": token, "refresh_token": refresh, "expires_in": 3600})
            form = Headers([("Content-Type", "application/x-www-form-urlencoded")])
            out.append(
                Exchange(
                    Request("POST", f"{UPSTREAM}/oauth/token", form, f"grant_type=refresh_token&refresh_token={refresh}".encode()),
                    Response(200, Headers([("Content-Type", "application/json")]), answer, "OK"),
                    started_at=exchange.started_at,
                    ended_at=exchange.started_at + 0.1,
                )
            )  # fmt: skip
        headers = Headers(exchange.request.headers.items())
        headers.set("Authorization", f"Bearer {token}")
        request = Request(exchange.request.method, exchange.request.url, headers, exchange.request.body)
        out.append(Exchange(request, exchange.response, exchange.started_at, exchange.ended_at))
    return out


class TrafficClock:
    """The machine's clock as a live recording sees it: the time of the traffic being recorded.

    The benchmark records hours of traffic in seconds; without this, no token would ever expire by the
    machine's clock (see `Redactor`), as none would in the first seconds of a real recording.
    """

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def append_all(writer: CassetteWriter, exchanges: list[Exchange], traffic: TrafficClock) -> None:
    for exchange in exchanges:
        traffic.now = exchange.finished_at
        writer.append(exchange)


def recording_scaling(
    workdir: Path,
    large: int = 10_000,
    small: int = 10,
    block: int = 500,
    rounds: int = 3,
    token_every: int = 0,
) -> dict[str, Any]:
    """Cost of one append to a cassette (and a writer) already holding `large` interactions against one
    holding `small`: `rounds` blocks of `block` appends each, alternating; the per-round ratio's median.

    `token_every`: a new OAuth token every that many calls (0: only the apikey, the same every time).
    The writer's memory of secrets grows with the recording, so that is where a cost per append
    could grow with the cassette, besides the file itself. Every timed append is of an exchange never
    appended before, for both writers: one appended earlier holds what was worked out for it (its
    split URL, its headers' index), and would be cheaper.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    big_stream = large + rounds * block
    exchanges = build_exchanges(big_stream + rounds * (small + block))
    if token_every:
        exchanges = with_rotating_tokens(exchanges, token_every)
    # The garbage collector's full passes walk every live object, these 11,000 exchanges first: where
    # one falls decided the ratio more than the writers did (1.14 or 0.97 for the same code).
    gc.collect()
    gc.freeze()
    big_path = workdir / f"scaling-{large}-{token_every}.yaml"
    big_path.unlink(missing_ok=True)
    traffic = TrafficClock()
    big = CassetteWriter(big_path, redactor=Redactor(clock=traffic))
    start = clock()
    append_all(big, exchanges[:large], traffic)
    fill_s = clock() - start
    big_ms: list[float] = []
    small_ms: list[float] = []
    try:
        for r in range(rounds):
            path = workdir / f"scaling-{small}-{token_every}-{r}.yaml"
            path.unlink(missing_ok=True)
            own = exchanges[big_stream + r * (small + block) :][: small + block]
            with CassetteWriter(path, redactor=Redactor(clock=traffic)) as fresh:
                append_all(fresh, own[:small], traffic)
                # Which writer goes first alternates: a slower or faster spell of the machine
                # then falls on each side alike.
                for writer in (fresh, big) if r % 2 == 0 else (big, fresh):
                    part = own[small:] if writer is fresh else exchanges[large + r * block :][:block]
                    start = clock()
                    append_all(writer, part, traffic)
                    (small_ms if writer is fresh else big_ms).append((clock() - start) * 1000 / block)
            path.unlink()
    finally:
        big.close()
        gc.unfreeze()
    size_mb = big_path.stat().st_size / 1e6
    big_path.unlink()
    ratios = [b / s for b, s in zip(big_ms, small_ms, strict=True)]
    return {
        "large": large,
        "small": small,
        "block": block,
        "rounds": rounds,
        "token_every": token_every,
        "secrets_remembered": big.redactor.remembered,  # what every append looks for
        "secrets_forgotten": big.redactor.forgotten,  # access tokens expired
        "fill_s": fill_s,
        "file_mb": round(size_mb, 1),
        "ms_per_append_large": big_ms,
        "ms_per_append_small": small_ms,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        action()
        times.append(clock() - start)
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
    start = clock()
    cassette = vcrpy_load(path)
    loaded = clock()
    played = 0
    for request in requests:
        cassette.play_response(request)
        played += 1
        if clock() - loaded > cap:
            break
    playing = clock() - loaded
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


def measure(count: int, repeat: int, vcrpy_cap: float, workdir: Path) -> dict[str, Any]:
    """(a) and (b) on a cassette of `count` interactions written into `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    ours, theirs = workdir / "tmproxy.yaml", workdir / "vcrpy.yaml"
    ours.unlink(missing_ok=True)

    exchanges = build_exchanges(count)
    start = clock()
    with CassetteWriter(ours, metadata={"upstream": UPSTREAM}) as writer:
        for exchange in exchanges:
            writer.append(exchange)
    write_s = clock() - start
    requests_, responses, *_ = deserialize(ours.read_text(), yamlserializer)
    theirs.write_text(serialize({"requests": requests_, "responses": responses}, yamlserializer))

    loads = {
        "tmproxy load_cassette": best_of(repeat, lambda: load_cassette(ours)),
        "vcrpy Cassette.load (same file)": best_of(repeat, lambda: vcrpy_load(ours)),
        "vcrpy deserialize (same file)": best_of(
            repeat, lambda: deserialize(ours.read_text(), yamlserializer)
        ),
        "vcrpy Cassette.load (vcrpy's own layout)": best_of(repeat, lambda: vcrpy_load(theirs)),
    }

    live = [Request(e.request.method, e.request.url, e.request.headers, e.request.body) for e in exchanges]
    ours_replay_s = best_of(repeat, lambda: tmproxy_replay(ours, live))
    hits = tmproxy_replay(ours, live)
    vcr_requests = [VcrRequest(r.method, r.url, r.body or None, dict(r.headers.items())) for r in live]
    theirs_replay = vcrpy_replay(ours, vcr_requests, vcrpy_cap)

    base = loads["vcrpy Cassette.load (same file)"]
    return {
        "count": count,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="loads are timed best-of-N")
    parser.add_argument(
        "--vcrpy-cap", type=float, default=30.0, help="seconds of vcrpy playing before extrapolating"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--dir",
        type=Path,
        help="where to put (and leave) the cassettes (default: a temporary directory, removed)",
    )
    args = parser.parse_args(argv)

    if args.dir:
        results = measure(args.count, args.repeat, args.vcrpy_cap, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-cassette-") as folder:
            results = measure(args.count, args.repeat, args.vcrpy_cap, Path(folder))
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
