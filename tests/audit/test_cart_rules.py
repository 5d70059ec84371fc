"""Cart rules: each with a trace that triggers it and a close one that must not."""

from __future__ import annotations

from audit.flows import CART, TM, ex, polling_answer, purchase
from traffic import T0, as_fan, reserve_body, reserve_response

from proxy.audit.engine import AuditEngine, Rule, audit_exchanges
from proxy.audit.rules.cart import (
    IN_FLIGHT_LIMIT_S,
    AbandonedCart,
    CommitNotPut,
    ConcurrentCartCalls,
    PollingTooFast,
)
from proxy.findings import Severity


def found(rule: Rule, *exchanges):
    return audit_exchanges(list(exchanges), [rule])


def reserve(at, cart_id="cart-1", status=200, client="10.0.0.5:1", duration=0.5):
    body = {**reserve_response(120.0), "cart_id": cart_id} if status == 200 else None
    return ex("POST", CART, at=at, body=reserve_body(), status=status, response_body=body, client=client,
              duration=duration)  # fmt: skip


def commit(at, cart_id="cart-1", method="PUT", status=200, client="10.0.0.5:2"):
    return ex(method, CART, at=at, body={"cart_id": cart_id}, status=status, client=client,
              response_body={"order_token": "t"})  # fmt: skip


def release(at, cart_id="cart-1", status=204):
    return ex("DELETE", f"{CART}?cart_id={cart_id}", at=at, status=status)


# --- concurrent-cart-calls ---


def test_overlapping_cart_calls_of_one_partner_are_flagged():
    first = reserve(T0, duration=2.0)
    second = ex("GET", f"{CART}/shipping?cart_id=c", at=T0 + 1, client="10.0.0.5:2")
    findings = found(ConcurrentCartCalls(), first, second)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("concurrent-cart-calls", Severity.ERROR, second.id)
    ]
    assert findings[0].evidence["concurrent_with"] == [first.id]


def test_sequential_cart_calls_are_not_flagged_even_back_to_back():
    first = reserve(T0, duration=1.0)
    second = ex("GET", f"{CART}/shipping", at=T0 + 1.0)  # starts exactly when the first ended
    assert found(ConcurrentCartCalls(), first, second) == []


def test_overlap_with_other_partners_or_non_cart_calls_is_fine():
    cart = reserve(T0, duration=2.0)
    other_partner = ex("GET", f"{CART}/shipping", at=T0 + 1, client="10.0.0.6:1")
    top_picks = ex("GET", "/top-picks/v1/events/E1", at=T0 + 1)
    assert found(ConcurrentCartCalls(), cart, other_partner, top_picks) == []


def test_fans_behind_one_backend_address_may_each_have_a_cart_call_in_flight():
    alice = as_fan(reserve(T0, duration=2.0), "alice")
    bob = as_fan(reserve(T0 + 1, cart_id="cart-2"), "bob")
    alice_again = as_fan(
        ex("GET", f"{CART}/shipping?cart_id=cart-1", at=T0 + 1.5, client="10.0.0.5:3"), "alice"
    )
    assert [f.exchange_id for f in found(ConcurrentCartCalls(), alice, bob, alice_again)] == [alice_again.id]


def test_a_call_that_never_got_an_answer_stops_counting_after_the_limit():
    lost = ex("POST", CART, at=T0, status=None)
    soon = ex("GET", f"{CART}/shipping", at=T0 + 5)
    later = ex("GET", f"{CART}/shipping", at=T0 + IN_FLIGHT_LIMIT_S + 10)
    assert [f.exchange_id for f in found(ConcurrentCartCalls(), lost, soon, later)] == [soon.id]


def test_live_an_errored_call_ends_when_the_proxy_reports_it():
    engine = AuditEngine([ConcurrentCartCalls()])
    failed = ex("POST", CART, at=T0, status=None)
    engine.request(failed)
    engine.response(failed)  # the addon's error hook: no response, but the call is over
    assert engine.request(ex("GET", f"{CART}/shipping", at=T0 + 1)) == []


# --- abandoned-cart ---


def test_reserved_cart_never_committed_or_released_is_reported_on_the_reserve():
    held = reserve(T0, cart_id="c-9")
    findings = found(AbandonedCart(), held, ex("GET", "/top-picks/v1/events/E1", at=T0 + 5))
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("abandoned-cart", Severity.WARNING, held.id)
    ]
    assert findings[0].evidence == {"cart_id": "c-9"}


def test_committed_or_released_carts_are_not_abandoned():
    assert (
        found(
            AbandonedCart(), reserve(T0, "a"), commit(T0 + 5, "a"), reserve(T0 + 6, "b"), release(T0 + 9, "b")
        )
        == []
    )


def test_failed_reserve_opens_no_cart():
    assert found(AbandonedCart(), reserve(T0, status=400)) == []


def test_a_failed_commit_leaves_the_cart_held():
    assert [f.rule for f in found(AbandonedCart(), reserve(T0), commit(T0 + 5, status=503))] == [
        "abandoned-cart"
    ]


def test_a_post_commit_does_not_close_the_cart():
    assert len(found(AbandonedCart(), reserve(T0), commit(T0 + 5, method="POST", status=400))) == 1


def test_reserve_answered_through_polling_opens_the_cart_and_a_failed_poll_does_not():
    poll = "/partners/v1/polling/p1"
    polled = ex(
        "POST", CART, at=T0, body=reserve_body(), status=202, response_body=polling_answer(poll, 1, "c-1")
    )
    answer = ex("GET", poll, at=T0 + 2, response_body={**reserve_response(120.0), "cart_id": "c-1"})
    assert [f.exchange_id for f in found(AbandonedCart(), polled, answer)] == [polled.id]
    failed = ex("GET", poll, at=T0 + 2, status=400, response_body={"error": {"code": 20052}})
    assert found(AbandonedCart(), polled, failed) == []


def test_the_compliant_purchase_leaves_no_cart_behind():
    assert found(AbandonedCart(), *purchase()) == []


# --- commit-not-put ---


def test_commit_with_post_is_flagged():
    findings = found(CommitNotPut(), commit(T0, method="POST"))
    assert [(f.rule, f.severity) for f in findings] == [("commit-not-put", Severity.ERROR)]
    assert "POST" in findings[0].message


def test_commit_with_put_and_reserve_with_post_are_fine():
    assert found(CommitNotPut(), reserve(T0), commit(T0 + 2)) == []


def test_commit_with_patch_is_flagged():
    assert len(found(CommitNotPut(), commit(T0, method="PATCH"))) == 1


# --- polling-too-fast ---


def polled_reserve(wait=4, poll="/partners/v1/polling/p1?cart_id=c1"):
    return ex("POST", CART, at=T0, duration=1.0, status=202, response_body=polling_answer(poll, wait))


def test_poll_before_the_wait_is_flagged():
    early = ex("GET", "/partners/v1/polling/p1?cart_id=c1", at=T0 + 1 + 3.5)
    findings = found(PollingTooFast(), polled_reserve(wait=4), early)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("polling-too-fast", Severity.WARNING, early.id)
    ]
    assert findings[0].evidence["early_by"] == 0.5


def test_poll_after_the_wait_is_fine():
    assert (
        found(
            PollingTooFast(),
            polled_reserve(wait=4),
            ex("GET", "/partners/v1/polling/p1?cart_id=c1", at=T0 + 5),
        )
        == []
    )


def test_poll_matches_by_path_and_query_across_hosts_and_apikeys():
    early = ex("GET", "http://127.0.0.1:8080/partners/v1/polling/p1?apikey=k&cart_id=c1", at=T0 + 2)
    assert len(found(PollingTooFast(), polled_reserve(), early)) == 1


def test_only_the_first_poll_after_a_202_is_judged_and_other_urls_are_ignored():
    other = ex("GET", "/partners/v1/polling/p2?cart_id=c1", at=T0 + 1.5)
    on_time = ex("GET", "/partners/v1/polling/p1?cart_id=c1", at=T0 + 5)
    again = ex("GET", "/partners/v1/polling/p1?cart_id=c1", at=T0 + 5.5)
    assert found(PollingTooFast(), polled_reserve(), other, on_time, again) == []


def test_wait_as_numeric_string_is_understood():
    early = ex("GET", f"{TM}/partners/v1/polling/p1?cart_id=c1", at=T0 + 2)
    assert len(found(PollingTooFast(), polled_reserve(wait="4"), early)) == 1
