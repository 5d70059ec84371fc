"""Is the audit linear? Times `audit_exchanges` over 10k and 100k synthetic Ticketmaster interactions.

    python benchmarks/bench_audit.py [--sizes 10000,100000] [--repeat 3] [--json results.json]

The traffic is a realistic mix from 200 partner apps, each running one journey after another:
browsing (Top Picks, event details, availability), purchases (OAuth token, Top Picks, reserve
answered through polling, shipping, encrypted payment, PUT commit, order), carts released with
DELETE, and bursts over quota (429, then a retry after the reset). A few journeys carry mistakes so
the rules also produce findings. Only the audit is timed, not building the traffic. The target is
under 10 s for 100k interactions and a per-interaction cost ratio (largest / smallest) near 1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from proxy.audit.engine import audit_exchanges
from proxy.exchange import Exchange, Headers, Request, Response

TM = "https://app.ticketmaster.com"
PARTNERS = 200
JOURNEY_GAP_S = 30.0
T0 = 1_700_000_000.0


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _top_picks_body(sid: str, start_ms: int, event: str) -> bytes:
    offers = [
        {"offerId": f"O{i}", "ticketId": f"resale-listingVer-{i:016x}:{event}", "totalPrice": 50.0 + i,
         "currency": "USD", "charges": [{"reason": "service", "type": "fee", "amount": 5.0}]}
        for i in range(12)
    ]  # fmt: skip
    picks = [
        {"type": "seats", "section": str(i), "row": "1", "offers": [f"O{i}"], "seats": ["1", "2"]}
        for i in range(12)
    ]
    return _json({
        "fanSession": {"resaleSid": {"sessionId": sid, "sessionStartTime": start_ms, "sessionExpireTime": start_ms + 3_600_000}},
        "page": {"number": 1, "size": 12, "totalElements": 12, "totalPages": 1},
        "picks": picks, "_embedded": {"offer": offers}, "eventDetails": {"id": event},
    })  # fmt: skip


class Journeys:
    """Builds one partner's journeys, one call at a time, never overlapping its own calls."""

    def __init__(self, rng: random.Random, partner: int) -> None:
        self.rng = rng
        self.client = f"10.1.{partner // 250}.{partner % 250}:{40000 + partner}"
        self.key = "apikey=REDACTED"
        self.now = T0 + partner * 0.37

    def call(self, method: str, path: str, status: int = 200, body: Any = None, answer: Any = None,
             headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Exchange:  # fmt: skip
        duration = self.rng.uniform(0.05, 0.4)
        raw = body if isinstance(body, bytes) else (_json(body) if body is not None else b"")
        answered = answer if isinstance(answer, bytes) else (_json(answer) if answer is not None else b"")
        exchange = Exchange(
            request=Request(method, TM + path, Headers((headers or {}).items()), raw),
            response=Response(status, Headers((response_headers or {}).items()), answered),
            started_at=self.now,
            ended_at=self.now + duration,
            client=self.client,
            id=uuid.uuid4().hex,
        )
        self.now += duration + self.rng.uniform(0.2, 2.0)
        return exchange

    def browse(self) -> Iterator[Exchange]:
        event = f"{self.rng.randrange(16**8):08X}"
        sid = str(uuid.uuid4())
        yield self.call("GET", f"/top-picks/v1/events/{event}?{self.key}&quantity=2",
                        answer=_top_picks_body(sid, int(self.now * 1000), event))  # fmt: skip
        yield self.call(
            "GET", f"/partners/v1/events/{event}?{self.key}", answer={"id": event, "name": "Show"}
        )
        yield self.call(
            "GET", f"/partners/v1/events/{event}/availability?{self.key}", answer={"available": True}
        )

    def purchase(self, commit_method: str = "PUT", release: bool = False) -> Iterator[Exchange]:
        event = f"{self.rng.randrange(16**8):08X}"
        sid, cart = str(uuid.uuid4()), uuid.uuid4().hex
        bearer = {"Authorization": "Bearer REDACTED"}
        headers = {"X-TM-SESSION-SID": sid, **bearer}
        cart_path = f"/partners/v1/events/{event}/cart"
        yield self.call("POST", "/oauth/token", body=b"grant_type=refresh_token&refresh_token=REDACTED",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        answer={"access_token": "REDACTED", "expires_in": 3600, "token_type": "bearer"})  # fmt: skip
        yield self.call("GET", f"/top-picks/v1/events/{event}?{self.key}&quantity=2",
                        answer=_top_picks_body(sid, int(self.now * 1000), event))  # fmt: skip
        ticket = f"resale-listingVer-{3:016x}:{event}"
        poll = f"/partners/v1/polling/{cart}"
        yield self.call("POST", f"{cart_path}?{self.key}", status=202, headers=headers,
                        body={"reserve": {"tickets": [{"id": ticket, "quantity": 2}]}},
                        answer={"polling_url": TM + poll, "wait": 1, "cart_id": cart})  # fmt: skip
        self.now += 1.0
        items = [{"id": ticket, "offer_id": "O3", "quantity": 2, "inventory_type": "Resale",
                  "charges": [{"type": "face_value", "price": 48.0}, {"type": "service", "price": 5.0}]}]  # fmt: skip
        yield self.call(
            "GET", poll, headers=bearer, answer={"cart_id": cart, "cart": {"hold_time": 299, "items": items}}
        )
        if release:
            yield self.call("DELETE", f"{cart_path}?{self.key}&cart_id={cart}", status=204, headers=headers)
            return
        yield self.call("GET", f"{cart_path}/shipping?{self.key}&cart_id={cart}", headers=headers,
                        answer={"shipping_options": [{"id": "4"}]})  # fmt: skip
        yield self.call("PUT", f"{cart_path}/shipping?{self.key}&cart_id={cart}", headers=headers,
                        body={"shipping_id": "4"}, answer={"cart_id": cart})  # fmt: skip
        card = {"number": "REDACTED", "cin": "REDACTED", "encryption_key": "REDACTED", "expire_month": 1}
        yield self.call("PUT", f"{cart_path}/payment?{self.key}", headers=headers,
                        body={"cart_id": cart, "payment": {"type": "CC", "card": card}}, answer={"cart_id": cart})  # fmt: skip
        yield self.call(commit_method, f"{cart_path}?{self.key}", headers=headers, body={"cart_id": cart},
                        answer={"order_token": "REDACTED", "order_number": "1-1"})  # fmt: skip
        yield self.call(
            "GET", f"/partners/v1/orders?order_token=REDACTED&{self.key}", headers=bearer, answer={}
        )

    def over_quota(self) -> Iterator[Exchange]:
        event = f"{self.rng.randrange(16**8):08X}"
        expiry = str(int((self.now + 5) * 1000))
        yield self.call("GET", f"/partners/v1/events/{event}/availability?{self.key}", status=429,
                        response_headers={"Ratelimit-Expiry": expiry}, answer={"fault": {"faultstring": "quota"}})  # fmt: skip
        self.now += 6.0
        yield self.call(
            "GET", f"/partners/v1/events/{event}/availability?{self.key}", answer={"available": True}
        )

    def next_journey(self) -> Iterator[Exchange]:
        roll = self.rng.random()
        if roll < 0.55:
            yield from self.browse()
        elif roll < 0.85:
            yield from self.purchase()
        elif roll < 0.93:
            yield from self.purchase(release=True)
        elif roll < 0.98:
            yield from self.over_quota()
        else:
            yield from self.purchase(commit_method="POST")  # a mistake: commit-not-put, abandoned-cart
        self.now += self.rng.uniform(0, JOURNEY_GAP_S)


def synthetic_traffic(count: int, seed: int = 7) -> list[Exchange]:
    """`count` interactions from `PARTNERS` partner apps, interleaved in time."""
    rng = random.Random(seed)
    partners = [Journeys(rng, n) for n in range(PARTNERS)]
    exchanges: list[Exchange] = []
    while len(exchanges) < count:
        for partner in partners:
            exchanges.extend(partner.next_journey())
    return exchanges[:count]


def time_audit(count: int, repeat: int) -> dict[str, Any]:
    exchanges = synthetic_traffic(count)
    best = best_cpu = float("inf")
    findings = 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        findings = len(audit_exchanges(exchanges))
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return {
        "interactions": count,
        "seconds": best,
        "cpu_seconds": best_cpu,
        "us_per_interaction": best / count * 1e6,
        "cpu_us_per_interaction": best_cpu / count * 1e6,
        "findings": findings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated interaction counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    runs = [time_audit(n, args.repeat) for n in sizes]
    for run in runs:
        print(f"{run['interactions']:>8} interactions: {run['seconds']:7.3f} s, "
              f"{run['us_per_interaction']:6.1f} us/interaction, {run['findings']} findings")  # fmt: skip
    ratio = runs[-1]["us_per_interaction"] / runs[0]["us_per_interaction"]
    print(f"per-interaction cost ratio {sizes[-1]} / {sizes[0]}: {ratio:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps({"runs": runs, "ratio": ratio, "python": sys.version.split()[0]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
