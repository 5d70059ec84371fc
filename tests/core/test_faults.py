"""The fault core without mitmproxy: parsing `--fault`, seeded decisions, and the answers' shapes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from traffic import EVENT, SID, T0, exchange, top_picks_body

from proxy.audit.partner_api import FAULT_HEADER
from proxy.exchange import Request, Response
from proxy.faults import (
    POLL_KEPT_S,
    FaultInjector,
    FaultKind,
    FaultSpec,
    FaultSpecError,
    parse_fault,
    parse_faults,
)
from proxy.sandbox.errors import CONCURRENT_CART_CALL, TICKETING_SYSTEM_DOWN
from proxy.ticketmaster import SESSION_EXPIRED_MESSAGE, SESSION_MESSAGE_HEADER, resale_sid

CART = f"/partners/v1/events/{EVENT}/cart"
PROXY = "http://127.0.0.1:8080"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def injector(*specs: str, seed: int = 1, clock: Clock | None = None) -> FaultInjector:
    return FaultInjector(parse_faults(specs), seed=seed, clock=clock or Clock())


def call(method: str, path: str, apikey: str = "k", **kwargs) -> Request:
    separator = "&" if "?" in path else "?"
    return exchange(method, f"{path}{separator}apikey={apikey}", **kwargs).request


def reserved(cart_id: str = "cart-9") -> Response:
    return Response(200, body=json.dumps({"cart_id": cart_id, "cart": {"hold_time": 299}}).encode())


# --- the --fault syntax ---


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("quota", FaultSpec(FaultKind.QUOTA)),
        ("quota:0.3", FaultSpec(FaultKind.QUOTA, rate=0.3)),
        ("quota:0.3,reset=2.5,allowed=600", FaultSpec(FaultKind.QUOTA, 0.3, reset=2.5, allowed=600)),
        ("polling:0.5,wait=0,extra_rounds=2", FaultSpec(FaultKind.POLLING, 0.5, wait=0, extra_rounds=2)),
        ("Session-Expiry:1", FaultSpec(FaultKind.SESSION_EXPIRY)),
        ("niterun,rate=0.25", FaultSpec(FaultKind.NITERUN, rate=0.25)),
        ("slow:0.2", FaultSpec(FaultKind.SLOW, seconds=0.2)),
        ("slow:2,rate=0.1", FaultSpec(FaultKind.SLOW, rate=0.1, seconds=2)),
    ],
)
def test_fault_specs_parse_and_print_back(text, spec):
    assert parse_fault(text) == spec
    assert parse_fault(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("outage:0.5", "unknown fault 'outage'; known: quota, polling"),
        ("quota:1.5", "from 0 to 1"),
        ("quota:often", "must be a number, not 'often'"),
        ("quota:nan", "finite"),
        ("slow", "slow needs the seconds"),
        ("polling,wait=-1", "wait must be >= 0"),
        ("polling,extra_rounds=1.5", "extra_rounds must be a whole number"),
        ("quota,wait=1", "'wait=1' is not a setting of quota (settings: allowed, rate, reset)"),
        ("quota:0.5,rate=0.2", "rate given twice"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(text, names):
    with pytest.raises(FaultSpecError, match=None) as caught:
        parse_fault(text)
    assert names in str(caught.value)
    assert repr(text) in str(caught.value)


def test_a_kind_given_twice_is_refused():
    with pytest.raises(FaultSpecError, match="quota given twice"):
        parse_faults(["quota:0.1", "polling", "quota:0.2"])


# --- seeded chance ---


def decisions(faults: FaultInjector, requests: list[Request]) -> list[bool]:
    return [faults.answer(r, "10.0.0.1") is not None for r in requests]


def test_the_same_seed_gives_the_same_faults_and_another_seed_others():
    traffic = [call("GET", f"/partners/v1/events/E{i % 7}/availability") for i in range(200)]
    first = decisions(injector("niterun:0.3", seed=11), traffic)
    assert decisions(injector("niterun:0.3", seed=11), traffic) == first
    assert decisions(injector("niterun:0.3", seed=12), traffic) != first
    assert 40 <= sum(first) <= 80  # about 30 % of 200


def test_a_route_gets_the_same_faults_however_other_calls_interleave():
    shipping = [call("GET", f"{CART}/shipping?cart_id=c") for _ in range(30)]
    payment = [call("PUT", f"{CART}/payment") for _ in range(30)]
    alone = decisions(injector("concurrent:0.5", seed=3), shipping)
    interleaved = decisions(
        injector("concurrent:0.5", seed=3), [r for pair in zip(payment, shipping, strict=True) for r in pair]
    )
    assert interleaved[1::2] == alone


def test_rate_zero_never_and_rate_one_always():
    traffic = [call("PUT", f"{CART}/payment") for _ in range(50)]
    assert not any(decisions(injector("concurrent:0"), traffic))
    assert all(decisions(injector("concurrent:1"), traffic))
    assert not injector("concurrent:0").answers_requests


# --- quota ---


def test_quota_answers_429_in_the_documented_shape_then_stays_exhausted_until_the_expiry():
    clock = Clock()
    faults = injector("quota:1,reset=2,allowed=600", clock=clock)
    injected = faults.answer(call("GET", f"/top-picks/v1/events/{EVENT}", apikey="partner-key"), "10.0.0.1")
    assert injected is not None and injected.kind is FaultKind.QUOTA
    response = injected.response
    assert response.status == 429
    assert response.json() == {
        "fault": {
            "faultstring": "Rate limit quota violation. Quota limit exceeded. Identifier : partner-key",
            "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
        }
    }
    assert response.headers.get("Ratelimit-Quota-Allowed") == "600"
    assert response.headers.get("Ratelimit-Quota-Available") == "0"
    assert response.headers.get("Ratelimit-Expiry") == str(int((T0 + 2) * 1000))
    assert response.headers.get(FAULT_HEADER) == "quota"


def test_a_quota_window_refuses_every_call_of_that_key_until_it_resets():
    clock = Clock()
    faults = injector("quota:0.5,reset=2", seed=5, clock=clock)
    availability = [call("GET", f"/partners/v1/events/E{i}/availability") for i in range(40)]
    assert any(faults.answer(r, "h") is not None for r in availability)  # stops at the first 429
    expiry = str(int((T0 + 2) * 1000))
    clock.now += 1.9
    within = [faults.answer(r, "h") for r in availability]
    assert all(i is not None and i.response.headers.get("Ratelimit-Expiry") == expiry for i in within)
    other_key = faults.answer(call("GET", "/partners/v1/events/E1/availability", apikey="other"), "h")
    assert other_key is None or other_key.response.headers.get("Ratelimit-Expiry") != expiry
    clock.now += 0.2
    assert not all(faults.answer(r, "h") is not None for r in availability)  # chance decides again


def test_another_key_is_not_refused_by_a_window_and_oauth_is_never_refused():
    faults = injector("quota:1,reset=30")
    faults.answer(call("GET", f"/top-picks/v1/events/{EVENT}", apikey="a"), "h")
    assert faults.answer(Request("POST", "https://oauth.ticketmaster.com/oauth/token"), "h") is None
    assert faults.injected[FaultKind.QUOTA] == 1


# --- niterun, concurrent ---


def test_niterun_is_503_with_20001_on_availability_and_cart_calls_only():
    faults = injector("niterun")
    for request in (call("GET", f"/partners/v1/events/{EVENT}/availability"), call("POST", CART)):
        injected = faults.answer(request, "h")
        assert injected is not None and injected.response.status == 503
        assert injected.response.json()["error"] == {
            "message": "Ticketing system is down/unavailable/niterun",
            "code": TICKETING_SYSTEM_DOWN,
            "http_code": 503,
            "severity": "ERROR",
        }
    assert faults.answer(call("GET", f"/top-picks/v1/events/{EVENT}"), "h") is None
    assert faults.answer(call("GET", f"/partners/v1/events/{EVENT}"), "h") is None


def test_concurrent_is_409_with_90009_on_cart_calls_only():
    faults = injector("concurrent")
    injected = faults.answer(call("PUT", f"{CART}/payment"), "h")
    assert injected is not None and injected.response.status == 409
    assert injected.response.json()["error"]["code"] == CONCURRENT_CART_CALL
    assert faults.answer(call("GET", f"/partners/v1/events/{EVENT}/availability"), "h") is None


# --- polling ---


def test_a_reserve_is_deferred_behind_a_polling_url_the_proxy_serves():
    faults = injector("polling:1,wait=3,extra_rounds=1")
    reserve = call("POST", CART, apikey="partner-key")
    injected = faults.rewrite(reserve, reserved("c+1/="), PROXY)
    assert injected is not None and injected.response.status == 202
    body = injected.response.json()
    assert (
        set(body) == {"polling_url", "wait", "cart_id"} and body["wait"] == 3 and body["cart_id"] == "c+1/="
    )
    url = urlsplit(body["polling_url"])
    assert f"{url.scheme}://{url.netloc}" == PROXY
    assert url.path.startswith("/partners/v1/polling/cart/POST/")
    assert parse_qs(url.query) == {"apikey": ["partner-key"], "cart_id": ["c+1/="]}
    poll = Request("GET", body["polling_url"])
    again = faults.answer(poll, "h")
    assert again is not None and again.response.status == 202 and again.response.json() == body
    final = faults.answer(poll, "h")
    assert final is not None and final.response.status == 200 and final.response.json()["cart_id"] == "c+1/="
    assert final.response.headers.get(FAULT_HEADER) == "polling"
    assert faults.answer(poll, "h") is None  # answered once: upstream says it does not know the url


def test_polling_keeps_the_cart_of_the_request_and_defers_only_successes_of_may_poll_calls():
    faults = injector("polling")
    release = call("DELETE", f"{CART}?cart_id=cart-3")
    injected = faults.rewrite(release, Response(204), PROXY)
    assert injected is not None and injected.response.json()["cart_id"] == "cart-3"
    assert "/cart/DELETE/" in injected.response.json()["polling_url"]
    shipping = faults.rewrite(call("PUT", f"{CART}/shipping?cart_id=c"), reserved(), PROXY)
    assert shipping is not None and "/polling/cart/shipping/PUT/" in shipping.response.json()["polling_url"]
    assert faults.rewrite(call("POST", CART), Response(400, body=b'{"error": {}}'), PROXY) is None
    assert faults.rewrite(call("GET", f"{CART}/shipping?cart_id=c"), reserved(), PROXY) is None
    assert faults.rewrite(call("PUT", f"{CART}/payment"), reserved(), PROXY) is None


def test_an_unfetched_polling_url_is_forgotten_after_a_cart_hold():
    clock = Clock()
    faults = injector("polling", clock=clock)
    first = faults.rewrite(call("POST", CART), reserved(), PROXY)
    assert first is not None
    clock.now += POLL_KEPT_S + 1
    faults.rewrite(call("POST", CART), reserved(), PROXY)
    assert faults.answer(Request("GET", first.response.json()["polling_url"]), "h") is None


# --- session-expiry ---


def top_picks_call(sid: str | None = SID) -> Request:
    headers = {"X-TM-SESSION-SID": sid} if sid else None
    return exchange("GET", f"/top-picks/v1/events/{EVENT}?apikey=k", headers=headers).request


def top_picks_answer(**body) -> Response:
    return Response(200, body=json.dumps(top_picks_body(**body)).encode())


def test_session_expiry_renews_the_same_session_from_now_with_the_message():
    clock = Clock(T0 + 600)
    faults = injector("session-expiry", clock=clock)
    injected = faults.rewrite(top_picks_call(), top_picks_answer(start_ms=str(int(T0 * 1000))), PROXY)
    assert injected is not None
    body = injected.response.json()
    sid = resale_sid(body)
    assert sid is not None and sid.session_id == SID
    assert sid.start_ms == int((T0 + 600) * 1000) and sid.expire_ms - sid.start_ms == 3_600_000
    assert isinstance(body["fanSession"]["resaleSid"]["sessionStartTime"], str)  # as upstream spelled it
    assert body["messages"] == [SESSION_EXPIRED_MESSAGE]
    assert injected.response.headers.get(SESSION_MESSAGE_HEADER) == SESSION_EXPIRED_MESSAGE
    assert body["_embedded"] == top_picks_body()["_embedded"]


def test_only_a_named_session_is_renewed_and_only_once():
    faults = injector("session-expiry")
    assert faults.rewrite(top_picks_call(sid=None), top_picks_answer(), PROXY) is None
    other = "0b5a7c4e-7d2f-4d39-9a3f-5e8a1f2b3c4d"
    assert (
        faults.rewrite(top_picks_call(sid=other), top_picks_answer(), PROXY) is None
    )  # a new session came back
    assert (
        faults.rewrite(top_picks_call(), top_picks_answer(messages=[SESSION_EXPIRED_MESSAGE]), PROXY) is None
    )
    assert faults.rewrite(top_picks_call(), top_picks_answer(), PROXY) is not None
    assert faults.rewrite(top_picks_call(), top_picks_answer(), PROXY) is None


# --- slow ---


def test_slow_holds_the_answers_chance_picks():
    assert injector("slow:0.2").delay(call("GET", "/x")) == 0.2
    assert injector("slow:0.2,rate=0").delay(call("GET", "/x")) == 0.0
    assert not injector("slow:5,rate=0").rewrites_answers


def test_the_summary_names_what_was_injected_and_the_seed():
    faults = injector("niterun", "polling:0", seed=42)
    faults.answer(call("POST", CART), "h")
    assert faults.summary_line() == "faults injected: 1 (niterun=1); niterun:1 polling:0 (seed 42)"
