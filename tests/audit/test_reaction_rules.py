"""Reaction rules: each with a trace that triggers it and a close one that must not."""

from __future__ import annotations

from audit.flows import CART, ex, polling_answer, purchase
from traffic import EVENT, SID, T0, reserve_body, reserve_response, top_picks_body

from proxy.audit.engine import Rule, audit_exchanges
from proxy.audit.rules import rule_ids
from proxy.audit.rules.reactions import BACKOFF_S, NoBackoffAfter503, PollingAbandoned, StalePriceAfterExpiry
from proxy.findings import Severity
from proxy.sandbox.errors import ticketing_system_down
from proxy.ticketmaster import SESSION_EXPIRED_MESSAGE, SESSION_MESSAGE_HEADER

POLL = "/partners/v1/polling/cart/POST/AB12?cart_id=cart-1"
AVAILABILITY = f"/partners/v1/events/{EVENT}/availability"
DOWN = ticketing_system_down(503).body()


def found(rule: Rule, *exchanges):
    return audit_exchanges(list(exchanges), [rule])


def test_the_reaction_rules_run_live_and_offline():
    for rule in ("polling-abandoned", "no-backoff-after-503", "stale-price-after-expiry"):
        assert rule in rule_ids(live=True) and rule in rule_ids()


# --- polling-abandoned ---


def accepted(at=T0, poll=POLL):
    return ex("POST", f"{CART}?apikey=k", at=at, body=reserve_body(), status=202,
              response_body=polling_answer(poll, wait=1))  # fmt: skip


def test_a_202_whose_polling_url_is_never_fetched_is_flagged():
    reserve = accepted()
    shipping = ex("GET", f"{CART}/shipping?cart_id=cart-1", at=T0 + 2)  # went on as if it had a cart
    findings = found(PollingAbandoned(), reserve, shipping)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("polling-abandoned", Severity.WARNING, reserve.id)
    ]
    assert findings[0].evidence["wait"] == 1


def test_a_followed_202_is_fine_even_from_another_host_and_apikey():
    poll = ex(
        "GET", f"http://127.0.0.1:8080{POLL}&apikey=mine", at=T0 + 1.5, response_body=reserve_response(120)
    )
    assert found(PollingAbandoned(), accepted(), poll) == []


def test_a_polling_url_that_answers_202_again_must_be_followed_again():
    again = ex("GET", POLL, at=T0 + 1.5, status=202, response_body=polling_answer(POLL, wait=1))
    assert [f.exchange_id for f in found(PollingAbandoned(), accepted(), again)] == [again.id]
    done = ex("GET", POLL, at=T0 + 3, response_body=reserve_response(120))
    assert found(PollingAbandoned(), accepted(), again, done) == []


def test_the_compliant_purchase_follows_its_polling():
    assert found(PollingAbandoned(), *purchase()) == []


# --- no-backoff-after-503 ---


def unavailable(at=T0, path=AVAILABILITY, client="10.0.0.5:1"):
    return ex("GET", f"{path}?apikey=k", at=at, duration=0.1, status=503, response_body=DOWN, client=client)


def test_the_same_call_retried_within_a_second_of_a_503_is_flagged():
    outage = unavailable()
    retry = ex("GET", f"{AVAILABILITY}?apikey=k", at=T0 + 0.3, client="10.0.0.5:2")
    findings = found(NoBackoffAfter503(), outage, retry)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("no-backoff-after-503", Severity.WARNING, retry.id)
    ]
    assert findings[0].evidence == {"unavailable": outage.id, "retried_after": 0.2}


def test_each_503_retried_at_once_is_flagged_again():
    first, second = unavailable(), unavailable(at=T0 + 0.2)
    third = ex("GET", f"{AVAILABILITY}?apikey=k", at=T0 + 0.4)
    assert [f.exchange_id for f in found(NoBackoffAfter503(), first, second, third)] == [second.id, third.id]


def test_a_retry_after_backing_off_another_call_or_partner_and_calls_in_flight_are_fine():
    outage = unavailable()
    backed_off = ex("GET", f"{AVAILABILITY}?apikey=k", at=T0 + 0.1 + BACKOFF_S)
    other_call = ex("GET", f"/partners/v1/events/{EVENT}?apikey=k", at=T0 + 0.2)
    other_partner = ex("GET", f"{AVAILABILITY}?apikey=k", at=T0 + 0.2, client="10.0.0.9:1")
    in_flight = ex("GET", f"{AVAILABILITY}?apikey=k", at=T0 + 0.05)  # sent before the 503 arrived
    assert found(NoBackoffAfter503(), outage, in_flight, other_call, other_partner, backed_off) == []


def test_a_503_on_a_cart_call_counts_with_its_query_but_not_its_apikey():
    outage = unavailable(path=CART)
    retried = ex("GET", f"{CART}?apikey=another", at=T0 + 0.5)
    assert [f.exchange_id for f in found(NoBackoffAfter503(), outage, retried)] == [retried.id]
    assert found(NoBackoffAfter503(), unavailable(path=f"{CART}/shipping?cart_id=a"),
                 ex("GET", f"{CART}/shipping?cart_id=b", at=T0 + 0.5)) == []  # fmt: skip


# --- stale-price-after-expiry ---


def picks(at, sid_header=SID, messages=None, start_offset=0):
    headers = {"X-TM-SESSION-SID": sid_header} if sid_header else None
    response_headers = {SESSION_MESSAGE_HEADER: SESSION_EXPIRED_MESSAGE} if messages else None
    body = top_picks_body(start_ms=int((T0 + start_offset) * 1000), messages=messages)
    return ex("GET", f"/top-picks/v1/events/{EVENT}?apikey=k", at=at, headers=headers, response_body=body,
              response_headers=response_headers)  # fmt: skip


def reserve(at, sid=SID):
    return ex("POST", f"{CART}?apikey=k", at=at, body=reserve_body(), headers={"X-TM-SESSION-SID": sid},
              response_body=reserve_response(120))  # fmt: skip


def test_a_reserve_right_after_an_expired_renewal_is_flagged():
    renewal = picks(T0 + 3700, messages=[SESSION_EXPIRED_MESSAGE], start_offset=3700)
    stale = reserve(T0 + 3701)
    findings = found(StalePriceAfterExpiry(), picks(T0, sid_header=None), renewal, stale)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("stale-price-after-expiry", Severity.WARNING, stale.id)
    ]
    assert findings[0].evidence == {"expired_by": renewal.id}


def test_a_new_top_picks_between_the_renewal_and_the_reserve_is_fine():
    renewal = picks(T0 + 3700, messages=[SESSION_EXPIRED_MESSAGE], start_offset=3700)
    refreshed = picks(T0 + 3701, start_offset=3700)
    assert (
        found(StalePriceAfterExpiry(), picks(T0, sid_header=None), renewal, refreshed, reserve(T0 + 3702))
        == []
    )


def test_other_sessions_stay_fresh_and_a_message_on_a_cart_answer_names_the_call_s_session():
    other = "0b5a7c4e-7d2f-4d39-9a3f-5e8a1f2b3c4d"
    renewal = picks(T0 + 3700, messages=[SESSION_EXPIRED_MESSAGE], start_offset=3700)
    assert found(StalePriceAfterExpiry(), renewal, reserve(T0 + 3701, sid=other)) == []
    shipping = ex("GET", f"{CART}/shipping?cart_id=c", at=T0, headers={"X-TM-SESSION-SID": other},
                  response_headers={SESSION_MESSAGE_HEADER: SESSION_EXPIRED_MESSAGE})  # fmt: skip
    assert len(found(StalePriceAfterExpiry(), shipping, reserve(T0 + 1, sid=other))) == 1
