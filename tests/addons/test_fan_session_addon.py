"""The fan-session addon through mitmproxy's own hooks (taddons/tflow), as mitmproxy calls them."""

from __future__ import annotations

import json
import logging

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow, tutils
from traffic import EVENT, RESALE_TICKET, SID, reserve_body, reserve_response, top_picks_body

from addons.fan_session import FINDINGS_KEY, FanSession


def tm_flow(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    req = tutils.treq(
        host="app.ticketmaster.com",
        port=443,
        scheme=b"https",
        method=method.encode(),
        path=path.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in (headers or {}).items()]),
        content=body,
    )
    return tflow.tflow(req=req)


def respond(flow, body: dict) -> None:
    flow.response = http.Response.make(200, json.dumps(body), {"Content-Type": "application/json"})


def show_top_picks(
    addon: FanSession, price: float = 120.0, sid: str = SID, headers: dict[str, str] | None = None
) -> None:
    flow = tm_flow("GET", f"/top-picks/v1/events/{EVENT}?apikey=k", headers=headers)
    addon.request(flow)
    respond(flow, top_picks_body(sid=sid, price=price, start_ms=int(flow.request.timestamp_start * 1000)))
    addon.response(flow)


def resale_reserve(headers: dict[str, str] | None = None):
    return tm_flow(
        "POST", f"/partners/v1/events/{EVENT}/cart?apikey=k", json.dumps(reserve_body()).encode(), headers
    )


def test_option_is_declared_with_validate_as_default():
    addon = FanSession()
    with taddons.context(addon) as tctx:
        assert tctx.options.tm_sid == "validate"
        with pytest.raises(exceptions.OptionsError, match="tm_sid must be one of"):
            tctx.configure(addon, tm_sid="sometimes")


def test_validate_marks_comments_and_logs_a_missing_sid(caplog):
    addon = FanSession()
    with taddons.context(addon):
        caplog.set_level(logging.WARNING)
        flow = resale_reserve()
        addon.request(flow)
        assert flow.response is None
        assert flow.marked
        assert "[sid-missing]" in flow.comment
        assert [f.rule for f in flow.metadata[FINDINGS_KEY]] == ["sid-missing"]
        assert any("sid-missing" in r.getMessage() for r in caplog.records)


def test_inject_adds_the_session_shown_in_top_picks():
    addon = FanSession()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tm_sid="inject")
        show_top_picks(addon)
        flow = resale_reserve()
        addon.request(flow)
        assert flow.request.headers["X-TM-SESSION-SID"] == SID
        assert FINDINGS_KEY not in flow.metadata


def test_enforce_answers_itself_without_a_session():
    addon = FanSession()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tm_sid="enforce")
        flow = resale_reserve()
        addon.request(flow)
        assert flow.response is not None and flow.response.status_code == 428
        assert "X-TM-SESSION-SID" in flow.response.json()["error"]["message"]
        addon.response(flow)
        assert [f.rule for f in flow.metadata[FINDINGS_KEY]] == ["sid-missing"]


def test_enforce_lets_a_valid_session_through():
    addon = FanSession()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tm_sid="enforce")
        show_top_picks(addon)
        flow = resale_reserve({"X-TM-SESSION-SID": SID})
        addon.request(flow)
        assert flow.response is None


def test_expired_session_response_is_flagged():
    addon = FanSession()
    with taddons.context(addon):
        flow = tm_flow("GET", f"/top-picks/v1/events/{EVENT}", headers={"X-TM-SESSION-SID": SID})
        addon.request(flow)
        respond(flow, top_picks_body(messages=["SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"]))
        addon.response(flow)
        assert "[session-expired]" in flow.comment


def test_price_change_on_reserve_is_flagged():
    addon = FanSession()
    with taddons.context(addon):
        show_top_picks(addon, price=120.0)
        flow = resale_reserve({"X-TM-SESSION-SID": SID})
        addon.request(flow)

        respond(flow, reserve_response(150.0, RESALE_TICKET))
        addon.response(flow)
        assert [f.rule for f in flow.metadata[FINDINGS_KEY]] == ["price-mismatch"]


def test_failed_upstream_call_ends_the_cart_call():
    addon = FanSession()
    with taddons.context(addon):
        flow = tm_flow(
            "DELETE", f"/partners/v1/events/{EVENT}/cart?cart_id=c1", headers={"X-TM-SESSION-SID": SID}
        )
        addon.request(flow)
        flow.error = tflow.terr("connection refused")
        addon.error(flow)
        retry = tm_flow(
            "DELETE", f"/partners/v1/events/{EVENT}/cart?cart_id=c1", headers={"X-TM-SESSION-SID": SID}
        )
        addon.request(retry)
        assert "concurrent-cart-calls" not in {f.rule for f in retry.metadata.get(FINDINGS_KEY, [])}


def test_a_replayed_call_whose_client_left_is_not_left_in_flight():
    addon = FanSession()
    with taddons.context(addon):
        first = tm_flow("PUT", f"/partners/v1/events/{EVENT}/cart/payment?apikey=k", b"{}")
        addon.request(first)
        respond(first, {})  # answered by the replayer in its request hook
        first.error = tflow.terr("client disconnected")
        addon.error(first)
        second = tm_flow("PUT", f"/partners/v1/events/{EVENT}/cart/payment?apikey=k", b"{}")
        addon.request(second)
        assert FINDINGS_KEY not in second.metadata


def test_an_enforce_block_ends_the_call_at_once():
    addon = FanSession()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tm_sid="enforce")
        blocked = resale_reserve()
        addon.request(blocked)
        assert blocked.response is not None and blocked.response.status_code == 428
        show_top_picks(addon)
        allowed = resale_reserve({"X-TM-SESSION-SID": SID})
        addon.request(allowed)
        assert allowed.response is None
        assert FINDINGS_KEY not in allowed.metadata


def test_the_fan_key_option_tells_fans_behind_one_address_apart():
    addon = FanSession()
    other = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"
    with taddons.context(addon) as tctx:
        assert tctx.options.tm_fan_key == ""
        with pytest.raises(exceptions.OptionsError, match="header:NAME or cookie:NAME"):
            tctx.configure(addon, tm_fan_key="X-Partner-User")
        tctx.configure(addon, tm_sid="inject", tm_fan_key="header:X-Partner-User")
        show_top_picks(addon, sid=SID, headers={"X-Partner-User": "alice"})
        show_top_picks(addon, sid=other, headers={"X-Partner-User": "bob"})
        for user, expected in (("bob", other), ("alice", SID)):
            flow = resale_reserve({"X-Partner-User": user})
            addon.request(flow)
            assert flow.request.headers["X-TM-SESSION-SID"] == expected
            respond(flow, reserve_response(120.0))
            addon.response(flow)
        assert FINDINGS_KEY not in flow.metadata
