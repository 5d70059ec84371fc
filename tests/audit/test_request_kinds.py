"""Requests sorted by kind: each rule sees only the kinds it judges, live and offline alike."""

from __future__ import annotations

import pytest
from audit.flows import CART, ex
from traffic import T0

from proxy.audit.engine import AuditEngine, audit_exchanges
from proxy.audit.partner_api import RequestKind, request_kind
from proxy.audit.rules import all_rules


@pytest.mark.parametrize(
    "method, path, kind",
    [
        ("GET", "/top-picks/v1/events/E1", RequestKind.TOP_PICKS),
        ("POST", CART, RequestKind.CART),
        ("PUT", f"{CART}/payment", RequestKind.CART),
        ("GET", "/partners/v1/polling/cart/POST/t0k3n", RequestKind.POLLING),
        ("POST", "/oauth/token", RequestKind.OAUTH),
        ("GET", "/partners/v1/events/E1", RequestKind.OTHER),
        ("GET", "/app/v1/me", RequestKind.OTHER),
        ("GET", "/static/app.js", RequestKind.STATIC),
        ("HEAD", "/images/Seat-Map.PNG", RequestKind.STATIC),
        ("POST", "/static/app.js", RequestKind.OTHER),  # a POST is a call, whatever its path
    ],
)
def test_each_request_has_one_kind(method, path, kind):
    assert request_kind(method, path) is kind


def test_a_static_file_meets_no_live_rule_but_a_recording_of_it_is_checked_for_secrets():
    assert not AuditEngine(all_rules(live=True)).judges(RequestKind.STATIC)
    script = ex("GET", "/static/app.js?apikey=fake-test-key-0000-not-real", at=T0)
    assert [f.rule for f in audit_exchanges([script])] == ["secret-in-recording"]


def test_a_static_file_after_a_429_is_no_retry_of_an_api_call():
    limited = ex("GET", "/partners/v1/events/E1", at=T0, status=429)
    script = ex("GET", "/static/app.js", at=T0 + 1)
    retry = ex("GET", "/partners/v1/events/E1", at=T0 + 2)
    found = audit_exchanges([limited, script, retry], all_rules(live=True))
    assert [(f.rule, f.exchange_id) for f in found] == [("rate-limit-retry", retry.id)]


def test_live_and_offline_judge_the_same_requests():
    calls = [ex("GET", "/top-picks/v1/events/E1", at=T0), ex("GET", "/favicon.ico", at=T0 + 1),
             ex("GET", "/partners/v1/events/E1", at=T0 + 2, status=429), ex("GET", "/static/app.js", at=T0 + 3),
             ex("GET", "/partners/v1/events/E1", at=T0 + 4), ex("POST", CART, at=T0 + 5, body={"reserve": {}})]  # fmt: skip
    engine = AuditEngine(all_rules(live=True))
    for call in calls:
        engine.request(call)
        engine.response(call)
    assert engine.findings == audit_exchanges(calls, all_rules(live=True))
    assert "rate-limit-retry" in {f.rule for f in engine.findings}  # the comparison is not of nothing
