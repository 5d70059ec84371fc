"""The six fan-session rules, each with a trace that triggers it and a close one that must not."""

from __future__ import annotations

from traffic import EVENT, SID, T0, exchange, reserve, top_picks

from proxy.audit.engine import audit_exchanges
from proxy.audit.rules.fan_session import (
    PriceMismatch,
    SessionExpired,
    SidExpired,
    SidMalformed,
    SidMissing,
    SidUnknown,
)
from proxy.findings import Severity

FAN_RULES = [SidMissing(), SidMalformed(), SidUnknown(), SidExpired(), SessionExpired(), PriceMismatch()]


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
