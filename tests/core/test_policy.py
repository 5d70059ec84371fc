import json

from traffic import SID, T0, exchange, reserve, top_picks

from proxy.fan_session import FanSessionGuard, SidPolicy


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
