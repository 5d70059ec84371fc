import json

from traffic import SID, T0, as_fan, exchange, reserve, top_picks

from proxy.fan_session import FanSessionGuard, SidPolicy
from proxy.fans import FanKeySpec
from proxy.findings import Severity

OTHER_SID = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"


def learned(guard, ex):
    guard.request(ex)
    guard.response(ex)


def test_inject_adds_the_session_the_client_was_shown():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, top_picks())
    ex = reserve(sid=None)
    verdict = guard.request(ex)
    assert verdict.injected_sid == SID
    assert ex.request.headers.get("X-TM-SESSION-SID") == SID
    assert verdict.findings == []


def test_inject_leaves_a_present_header_alone():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, top_picks())
    ex = reserve(sid="0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de")
    assert guard.request(ex).injected_sid is None
    assert ex.request.headers.get("X-TM-SESSION-SID") == "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"


def test_inject_skips_expired_sessions():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, top_picks())
    verdict = guard.request(reserve(sid=None, at=T0 + 7200))
    assert verdict.injected_sid is None
    assert [f.rule for f in verdict.findings] == ["sid-missing"]


def test_validate_reports_but_never_blocks():
    verdict = FanSessionGuard(SidPolicy.VALIDATE).request(reserve(sid=None))
    assert [f.rule for f in verdict.findings] == ["sid-missing"] and verdict.block is None


def test_enforce_blocks_missing_and_expired_with_a_clear_error():
    guard = FanSessionGuard(SidPolicy.ENFORCE)
    learned(guard, top_picks())
    missing = guard.request(reserve(sid=None)).block
    expired = guard.request(reserve(at=T0 + 7200)).block
    assert missing is not None and expired is not None
    assert missing.status == 428
    error = json.loads(missing.body)["error"]
    assert "X-TM-SESSION-SID" in error["message"] and "sid-missing" in error["message"]
    assert json.loads(expired.body)["tmproxy"]["rules"] == ["sid-expired"]
    assert guard.request(reserve()).block is None


def test_off_neither_injects_nor_judges_the_header():
    guard = FanSessionGuard(SidPolicy.OFF)
    learned(guard, top_picks())
    verdict = guard.request(reserve(sid=None))
    assert verdict.injected_sid is None and verdict.findings == [] and verdict.block is None


def test_summary_counts_requests_cart_calls_sessions_and_findings():
    guard = FanSessionGuard()
    learned(guard, top_picks())
    learned(guard, reserve(sid=None))
    learned(guard, exchange("GET", "/discovery/v2/events"))
    summary = guard.summary()
    assert (summary.requests, summary.cart_calls, summary.sessions_seen) == (3, 1, 1)
    assert summary.findings_by_rule["sid-missing"] == 1


def test_inject_gives_each_fan_behind_one_address_their_own_session():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, as_fan(top_picks(), "alice"))
    learned(guard, as_fan(top_picks(sid=OTHER_SID), "bob"))
    injected = []
    for who in ("alice", "bob"):
        ask = as_fan(reserve(sid=None), who)
        injected.append(guard.request(ask).injected_sid)
        guard.response(ask)
    assert injected == [SID, OTHER_SID]
    assert guard.engine.findings == []


def test_inject_tells_fans_apart_by_the_configured_header():
    guard = FanSessionGuard(SidPolicy.INJECT, FanKeySpec.parse("header:X-Partner-User"))
    for who, sid in (("alice", SID), ("bob", OTHER_SID)):
        picks = top_picks(sid=sid)
        picks.request.headers.set("X-Partner-User", who)
        learned(guard, picks)
    ask = reserve(sid=None)
    ask.request.headers.set("X-Partner-User", "alice")
    assert guard.request(ask).injected_sid == SID


def test_inject_refuses_to_choose_between_fans_it_cannot_tell_apart():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, top_picks())
    learned(guard, top_picks(sid=OTHER_SID))
    ex = reserve(sid=None)
    verdict = guard.request(ex)
    assert verdict.injected_sid is None and "X-TM-SESSION-SID" not in ex.request.headers
    assert [f.rule for f in verdict.findings] == ["sid-inject-ambiguous"]
    assert set(verdict.findings[0].evidence["sessions"]) == {SID, OTHER_SID}
    assert [f.rule for f in guard.engine.findings] == ["sid-inject-ambiguous"]


def test_inject_says_when_it_guessed():
    guard = FanSessionGuard(SidPolicy.INJECT)
    learned(guard, as_fan(top_picks(), "alice"))
    ex = as_fan(reserve(sid=None, ticket="GJ6DC7BT"), "alice")  # not shown by any Top Picks
    verdict = guard.request(ex)
    assert verdict.injected_sid == SID
    assert [(f.rule, f.severity) for f in verdict.findings] == [("sid-injected-guess", Severity.WARNING)]
    assert "showed GJ6DC7BT" in verdict.findings[0].message


def test_summary_counts_fans_by_the_kind_of_key():
    guard = FanSessionGuard()
    learned(guard, as_fan(top_picks(), "alice"))
    learned(guard, as_fan(top_picks(sid=OTHER_SID), "bob"))
    learned(guard, top_picks(sid="0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d3"))
    assert "fans: 3 (bearer 2, client 1)" in guard.summary().lines()
