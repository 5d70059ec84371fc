"""The replay index: normalized keys, ordered plays, near misses, usage, and fan-session time shifting."""

from __future__ import annotations

import json
import threading

import pytest
from cassette.cassette_helpers import EVENT, UPSTREAM, exchange, json_bytes, top_picks_body

from proxy.cassette import RedactionRules
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.replay import EXHAUST, ReplayIndex, request_key, shift_response_session, shift_session_times
from proxy.ticketmaster import SESSION_HEADER, resale_sid

TOP_PICKS = f"{UPSTREAM}/top-picks/v1/events/{EVENT}"
CART = f"{UPSTREAM}/partners/v1/events/{EVENT}/cart"
RESERVE = {"reserve": {"tickets": [{"id": "t1", "quantity": 2, "price": {"id": 1, "amount": 61.5}}]}}


def _recorded() -> list[Exchange]:
    return [
        exchange(url=f"{TOP_PICKS}?apikey=REDACTED&quantity=2&selection=Resale", id="picks"),
        exchange(
            "POST",
            f"{CART}?apikey=REDACTED",
            [("Content-Type", "application/json")],
            json_bytes(RESERVE),
            response_body=b'{"cart_id": "c1"}',
            id="reserve",
        ),
        exchange(
            "POST",
            "https://oauth.ticketmaster.com/oauth/token",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"grant_type=refresh_token&client_id=p&refresh_token=REDACTED",
            id="token",
        ),
    ]


def test_hits_regardless_of_query_order_apikey_and_sid_header() -> None:
    index = ReplayIndex(_recorded())
    request = Request(
        "get",
        f"{TOP_PICKS.replace('app.', 'APP.')}?selection=Resale&quantity=2&apikey=live-key",
        Headers([(SESSION_HEADER, "some-sid"), ("Authorization", "Bearer live")]),
    )
    result = index.play(request)
    assert result.hit and result.exchange is not None and result.exchange.id == "picks"


def test_json_bodies_compare_canonically_and_redacted_values_never_count() -> None:
    index = ReplayIndex(_recorded())
    body = b'{ "reserve" : {"tickets":[{"price":{"amount":61.5,"id":1},"quantity":2,"id":"t1"}]} }'
    result = index.play(
        Request("POST", f"{CART}?apikey=k", Headers([("Content-Type", "application/json")]), body)
    )
    assert result.exchange is not None and result.exchange.id == "reserve"
    form = b"client_id=p&refresh_token=live-refresh-token-123&grant_type=refresh_token"
    headers = Headers([("Content-Type", "application/x-www-form-urlencoded")])
    token = index.play(Request("POST", "https://oauth.ticketmaster.com/oauth/token", headers, form))
    assert token.exchange is not None and token.exchange.id == "token"


def test_different_body_or_query_value_misses() -> None:
    index = ReplayIndex(_recorded())
    assert not index.play(Request("GET", f"{TOP_PICKS}?quantity=4&selection=Resale")).hit
    other = json_bytes({"reserve": {"tickets": [{"id": "t2", "quantity": 2}]}})
    assert not index.play(Request("POST", CART, body=other)).hit


def test_repeated_requests_play_in_order_then_the_last_repeats() -> None:
    recorded = [exchange(url=f"{TOP_PICKS}?quantity=2", id=f"r{i}") for i in range(3)]
    index = ReplayIndex(recorded)
    plays = [index.play(Request("GET", f"{TOP_PICKS}?quantity=2")) for _ in range(5)]
    assert [p.exchange.id for p in plays if p.exchange] == ["r0", "r1", "r2", "r2", "r2"]
    assert [p.repeated for p in plays] == [False, False, False, True, True]


def test_exhaust_misses_after_the_last_recorded_response() -> None:
    index = ReplayIndex([exchange(url=f"{TOP_PICKS}?quantity=2", id="only")], on_exhausted=EXHAUST)
    assert index.play(Request("GET", f"{TOP_PICKS}?quantity=2")).hit
    miss = index.play(Request("GET", f"{TOP_PICKS}?quantity=2"))
    assert miss.near_miss is not None and "already played" in miss.near_miss.reason
    assert miss.near_miss.candidates[0].exchange_id == "only"
    assert "identical, but already played" in miss.near_miss.summary_line()


def test_on_exhausted_is_validated() -> None:
    with pytest.raises(ValueError, match="on_exhausted"):
        ReplayIndex([], on_exhausted="loop")  # type: ignore[arg-type]


def test_miss_explains_the_closest_candidates_and_what_differs() -> None:
    index = ReplayIndex(_recorded())
    request = Request("GET", f"{TOP_PICKS}?quantity=4&page=2&apikey=live-secret-key")
    miss = index.play(request)
    assert not miss.hit and miss.near_miss is not None
    report = miss.near_miss
    closest = report.candidates[0]
    assert closest.exchange_id == "picks"
    assert closest.differences == {
        "query": {
            "added": {"page": "2"},
            "removed": {"selection": "Resale"},
            "changed": {"quantity": {"recorded": "2", "request": "4"}},
        }
    }
    body = report.to_dict()
    json.dumps(body)
    assert (
        body["request"]["url"].endswith("apikey=REDACTED") and "live-secret-key" not in report.summary_line()
    )
    assert "query added page; removed selection; changed quantity" in report.summary_line()


def test_miss_on_method_path_and_json_body() -> None:
    index = ReplayIndex(_recorded())
    changed = json_bytes(
        {"reserve": {"tickets": [{"id": "t1", "quantity": 3, "price": {"id": 1, "amount": 61.5}}]}}
    )
    report = index.play(Request("POST", f"{CART}?apikey=k", body=changed)).near_miss
    assert report is not None
    assert report.candidates[0].differences == {"body": {"json_paths": ["$.reserve.tickets[0].quantity"]}}
    report = index.play(Request("PUT", f"{CART}/payment", body=b"\x00\x01")).near_miss
    assert report is not None
    differences = report.candidates[0].differences
    assert differences["method"] == {"recorded": "POST", "request": "PUT"}
    assert differences["path"]["request"].endswith("/cart/payment")
    assert differences["body"] == {"recorded": "JSON", "request": "2 bytes"}


def test_near_miss_scan_is_capped() -> None:
    recorded = [exchange(url=f"{UPSTREAM}/p{i}/x") for i in range(50)]
    index = ReplayIndex(recorded, near_miss_scan=5, near_miss_limit=10)
    report = index.near_miss(Request("GET", f"{UPSTREAM}/nowhere"))
    assert len(report.candidates) == 5


def test_usage_counts_served_repeats_misses_and_unused() -> None:
    index = ReplayIndex([*_recorded(), Exchange(Request("GET", f"{UPSTREAM}/no-response"))])
    assert len(index) == 3
    for _ in range(2):
        index.play(Request("GET", f"{TOP_PICKS}?quantity=2&selection=Resale"))
    index.play(Request("GET", f"{UPSTREAM}/unknown"))
    usage = index.usage()
    assert (usage.recorded, usage.served, usage.repeats, usage.misses) == (3, 2, 1, 1)
    assert [e.id for e in usage.unused] == ["reserve", "token"]
    assert "2 responses served (1 repeats)" in usage.summary_line()
    assert usage.to_dict()["unused"][0]["interaction"] == "reserve"


def test_concurrent_plays_serve_each_recorded_response_once() -> None:
    recorded = [exchange(url=f"{TOP_PICKS}?quantity=2", id=f"r{i}") for i in range(200)]
    index = ReplayIndex(recorded, on_exhausted=EXHAUST)
    served: list[str] = []

    def worker() -> None:
        for _ in range(50):
            result = index.play(Request("GET", f"{TOP_PICKS}?quantity=2"))
            if result.exchange:
                served.append(result.exchange.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(served) == sorted(f"r{i}" for i in range(200))


def test_keys_ignore_configured_redacted_params() -> None:
    rules = RedactionRules.build(query_params=["sig"])
    a = request_key(Request("GET", f"{UPSTREAM}/x?sig=1&a=1"), rules)
    b = request_key(Request("GET", f"{UPSTREAM}/x?a=1&sig=2"), rules)
    assert a == b and a.query == (("a", "1"),)


@pytest.mark.parametrize(
    ("start", "expire"),
    [("1700000000000", "1700003600000"), (1700000000000, 1700003600000), (1.7e12, 1.7e12 + 900000.0)],
)
def test_time_shift_starts_the_session_now_and_keeps_its_duration(start: object, expire: object) -> None:
    now = 1_800_000_000.25
    body = json_bytes(top_picks_body(start, expire))
    shifted = json.loads(shift_session_times(body, now))
    times = shifted["fanSession"]["resaleSid"]
    assert type(times["sessionStartTime"]) is type(start) and type(times["sessionExpireTime"]) is type(expire)
    sid = resale_sid(shifted)
    original = resale_sid(json.loads(body))
    assert sid is not None and original is not None
    assert sid.start_ms == 1_800_000_000_250
    assert sid.expire_ms - sid.start_ms == original.expire_ms - original.start_ms
    assert shifted["picks"] == json.loads(body)["picks"]


def test_time_shift_leaves_other_bodies_alone() -> None:
    for body in (b"", b"not json", json_bytes({"picks": []})):
        assert shift_session_times(body, 1.0) is body


def test_time_shift_of_a_response_keeps_content_length_true() -> None:
    body = json_bytes(top_picks_body())
    response = Response(200, Headers([("Content-Length", str(len(body)))]), body)
    shifted = shift_response_session(response, 1_800_000_000.0)
    assert shifted.headers.get("Content-Length") == str(len(shifted.body)) and shifted.body != body
