"""rate-limit-retry: a trace that triggers it and close ones that must not."""

from __future__ import annotations

from audit.flows import ex
from traffic import T0

from proxy.audit.engine import audit_exchanges
from proxy.audit.partner_api import DEFAULT_QUOTA_WINDOW_S
from proxy.audit.rules.quota import RateLimitRetry
from proxy.findings import Severity

QUOTA_FAULT = {
    "fault": {
        "faultstring": "Rate limit quota violation. Quota limit exceeded. Identifier : REDACTED",
        "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
    }
}
AVAILABILITY = "/partners/v1/events/E1/availability"


def limited(headers=None, client="10.0.0.5:1"):
    return ex("GET", AVAILABILITY, at=T0, duration=0.5, status=429, response_body=QUOTA_FAULT,
              response_headers=headers, client=client)  # fmt: skip


def call(at, client="10.0.0.5:2"):
    return ex("GET", AVAILABILITY, at=at, client=client)


def found(*exchanges):
    return audit_exchanges(list(exchanges), [RateLimitRetry()])


def test_retry_before_ratelimit_expiry_is_flagged():
    expiry_ms = str(int((T0 + 30) * 1000))
    retry = call(T0 + 10)
    findings = found(limited({"Ratelimit-Expiry": expiry_ms}), retry)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("rate-limit-retry", Severity.WARNING, retry.id)
    ]
    assert findings[0].evidence["reset_source"] == "Ratelimit-Expiry"


def test_request_after_the_expiry_is_fine_and_ends_the_block():
    expiry_ms = str(int((T0 + 30) * 1000))
    assert found(limited({"Ratelimit-Expiry": expiry_ms}), call(T0 + 31), call(T0 + 32)) == []


def test_retry_after_seconds_is_the_fallback():
    assert len(found(limited({"Retry-After": "20"}), call(T0 + 10))) == 1
    assert found(limited({"Retry-After": "20"}), call(T0 + 21)) == []


def test_without_headers_the_quota_window_is_a_minute():
    assert len(found(limited(), call(T0 + DEFAULT_QUOTA_WINDOW_S - 1))) == 1
    assert found(limited(), call(T0 + DEFAULT_QUOTA_WINDOW_S + 1)) == []


def test_other_partners_and_calls_already_in_flight_are_not_retries():
    in_flight = call(T0 + 0.2)  # started before the 429 arrived at T0 + 0.5
    assert found(limited(), call(T0 + 5, client="10.0.0.9:1"), in_flight) == []


def test_a_429_without_retry_is_fine():
    assert found(limited()) == []
