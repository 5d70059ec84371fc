"""The six fan-session rules, each with a trace that triggers it and a close one that must not."""

from __future__ import annotations

from traffic import EVENT, SID, T0, as_fan, exchange, reserve, top_picks

from proxy.audit.engine import audit_exchanges
from proxy.audit.rules.fan_session import (
    PriceMismatch,
    SessionExpired,
    SidExpired,
    SidMalformed,
    SidMismatch,
    SidMissing,
    SidUnknown,
)
from proxy.findings import Severity

FAN_RULES = [
    SidMissing(),
    SidMalformed(),
    SidUnknown(),
    SidExpired(),
    SidMismatch(),
    SessionExpired(),
    PriceMismatch(),
]
OTHER_SID = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"


def rules_found(*exchanges):
    return [f.rule for f in audit_exchanges(list(exchanges), [type(r)() for r in FAN_RULES])]


def test_compliant_flow_has_no_findings():
    assert rules_found(top_picks(), reserve()) == []


def test_sid_missing_on_resale_reserve_without_header():
    found = audit_exchanges([top_picks(), reserve(sid=None)], [SidMissing()])
    assert [(f.rule, f.severity) for f in found] == [("sid-missing", Severity.ERROR)]
    assert "X-TM-SESSION-SID" in found[0].message


def test_sid_missing_counts_an_empty_header_as_missing():
    assert rules_found(top_picks(), reserve(sid="  ")) == ["sid-missing"]


def test_sid_missing_ignores_standard_tickets():
    assert rules_found(top_picks(), reserve(sid=None, ticket="GJ6DC7BT")) == []


def test_sid_malformed():
    assert rules_found(top_picks(), reserve(sid="not-a-session")) == ["sid-malformed"]


def test_sid_malformed_when_two_different_ids_travel():
    ex = reserve()
    ex.request.headers = ex.request.headers.__class__(
        [("X-TM-SESSION-SID", SID), ("X-TM-SESSION-SID", "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de")]
    )
    assert rules_found(top_picks(), ex) == ["sid-malformed"]


def test_sid_unknown_when_no_top_picks_issued_it():
    assert rules_found(reserve()) == ["sid-unknown"]
    assert rules_found(top_picks(), reserve()) == []


def test_sid_expired_after_session_expiry():
    late = T0 + 3601
    found = rules_found(top_picks(), reserve(at=late, charged=120.0))
    assert found == ["sid-expired"]
    assert rules_found(top_picks(), reserve(at=T0 + 3599)) == []


def test_session_expired_message_in_body_array():
    flagged = top_picks(messages=["SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"])
    assert rules_found(flagged) == ["session-expired"]


def test_session_expired_message_in_header_or_plain_text():
    in_header = exchange(
        "GET",
        f"/top-picks/v1/events/{EVENT}",
        response_headers={"X-TM-Message": "SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"},
        response_body={},
    )
    in_text = exchange("GET", "/x", response_body=b"oops SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED")
    assert rules_found(in_header, in_text) == ["session-expired", "session-expired"]


def test_price_mismatch_against_shown_price():
    found = audit_exchanges([top_picks(price=120.0), reserve(charged=135.5)], [PriceMismatch()])
    assert [f.rule for f in found] == ["price-mismatch"]
    assert found[0].evidence["shown"] == 120.0 and found[0].evidence["charged"] == 135.5


def test_price_mismatch_uses_the_clients_session_when_sid_was_missing():
    assert "price-mismatch" in rules_found(top_picks(price=120.0), reserve(sid=None, charged=130.0))


def test_price_mismatch_against_requested_amount():
    assert rules_found(reserve(sid=None, ticket="GJ6DC7BT", charged=50.0, amount=45.0)) == ["price-mismatch"]
    assert rules_found(reserve(sid=None, ticket="GJ6DC7BT", charged=50.0, amount=50.0)) == []


def test_renewed_session_reprices_what_the_fan_was_shown():
    renewed = top_picks(at=T0 + 4000, start_ms=int((T0 + 4000) * 1000), price=140.0)
    assert rules_found(top_picks(price=120.0), renewed, reserve(at=T0 + 4010, charged=140.0)) == []


def test_session_times_as_numeric_strings_are_understood():
    assert rules_found(top_picks(start_ms=str(int(T0 * 1000))), reserve(at=T0 + 3601)) == ["sid-expired"]


def test_non_json_bodies_do_not_crash_the_rules():
    broken = exchange(
        "POST", f"/partners/v1/events/{EVENT}/cart", body=b"{not json", response_body=b"\xff\xfe"
    )
    assert rules_found(broken) == []


def test_price_mismatch_is_found_at_the_end_of_a_polled_reserve():
    polled = reserve(charged=135.5)
    final_body = polled.response.body
    polled.response.status = 202
    polled.response.body = (
        b'{"polling_url": "https://app.ticketmaster.com/partners/v1/polling/p1?apikey=k", "wait": 1}'
    )
    poll = exchange("GET", "/partners/v1/polling/p1?apikey=other", at=T0 + 12, response_body=final_body)
    found = audit_exchanges([top_picks(price=120.0), polled, poll], [PriceMismatch()])
    assert [(f.rule, f.exchange_id) for f in found] == [("price-mismatch", poll.id)]


# --- resale by offer id, fans behind one address ---------------------------------------------------------


def test_sid_missing_on_a_reserve_of_an_offer_top_picks_showed_as_resale():
    found = audit_exchanges([top_picks(), reserve(sid=None, ticket="R1")], [SidMissing()])
    assert [f.rule for f in found] == ["sid-missing"]


def test_sid_missing_judged_on_the_response_when_nothing_said_resale_before():
    """No Top Picks seen (or an unusual id): Ticketmaster's answer, a Resale item, still tells."""
    found = audit_exchanges([reserve(sid=None, ticket="RS5C974596", inventory_type="Resale")], [SidMissing()])
    assert [f.rule for f in found] == ["sid-missing"]
    assert "reserved it as resale" in found[0].message
    assert audit_exchanges([reserve(sid=None, ticket="GJ6DC7BT")], [SidMissing()]) == []


def test_sid_missing_is_reported_once_when_request_and_response_both_say_resale():
    assert rules_found(top_picks(), reserve(sid=None)) == ["sid-missing"]


def test_sid_mismatch_when_a_fan_sends_another_fans_session():
    alice_picks = as_fan(top_picks(), "alice")
    bob_picks = as_fan(top_picks(sid=OTHER_SID), "bob")
    bob_reserve = as_fan(reserve(sid=SID), "bob")
    found = audit_exchanges([alice_picks, bob_picks, bob_reserve], [SidMismatch()])
    assert [(f.rule, f.severity, f.exchange_id) for f in found] == [
        ("sid-mismatch", Severity.ERROR, bob_reserve.id)
    ]
    assert found[0].evidence["session"] == SID and found[0].evidence["fan_key"] == "bearer"
    assert found[0].evidence["tickets"] == [reserve().request.json()["reserve"]["tickets"][0]["id"]]
    own = as_fan(reserve(sid=OTHER_SID), "bob")
    assert audit_exchanges([alice_picks, bob_picks, own], [SidMismatch()]) == []


def test_sid_mismatch_when_the_sessions_top_picks_never_showed_the_ticket():
    elsewhere = top_picks(sid=OTHER_SID)
    elsewhere.response.body = elsewhere.response.body.replace(b'"R1"', b'"R7"').replace(
        b"resale-listingVer", b"x"
    )
    found = rules_found(elsewhere, top_picks(), reserve(sid=OTHER_SID))
    assert found == ["sid-mismatch"]


def test_sid_mismatch_when_the_session_is_another_events():
    other_event = top_picks()
    other_event.request.url = other_event.request.url.replace(EVENT, "1AeZZfEGkD0xtGV")
    assert rules_found(other_event, reserve()) == ["sid-mismatch"]


def test_a_fan_calling_top_picks_with_the_apikey_and_reserving_with_a_token_is_one_fan():
    assert rules_found(top_picks(), as_fan(reserve(), "alice")) == []


def test_price_mismatch_uses_the_carried_session_never_another_fans():
    alice = as_fan(top_picks(price=120.0), "alice")
    bob = as_fan(top_picks(sid=OTHER_SID, price=150.0), "bob")
    assert rules_found(alice, bob, as_fan(reserve(sid=OTHER_SID, charged=150.0), "bob")) == []
    found = audit_exchanges([alice, bob, as_fan(reserve(sid=None, charged=150.0), "bob")], [PriceMismatch()])
    assert found == []  # bob's own Top Picks showed 150; alice's 120 is not his price
    found = audit_exchanges(
        [alice, bob, as_fan(reserve(sid=None, charged=150.0), "alice")], [PriceMismatch()]
    )
    assert [f.evidence["shown"] for f in found] == [120.0]
