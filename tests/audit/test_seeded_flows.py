"""Whole partner flows through every rule: compliant ones give nothing, seeded mistakes give exactly theirs."""

from __future__ import annotations

from collections import Counter

import pytest
from audit.flows import CART, ex, payment_body, purchase, token_grant
from traffic import T0

from proxy.audit.engine import AuditEngine, audit_exchanges
from proxy.audit.rules import RULE_CLASSES, all_rules, rule_ids


def rules_found(exchanges, live=False):
    return Counter(f.rule for f in audit_exchanges(exchanges, all_rules(live=live)))


def test_compliant_recorded_purchase_has_no_findings():
    assert rules_found(purchase()) == Counter()


def test_compliant_live_purchase_has_no_findings_live():
    assert rules_found(purchase(live=True), live=True) == Counter()


def test_two_partners_buying_at_the_same_time_is_compliant():
    flows = purchase(client="10.0.0.5:1", cart_id="a") + purchase(T0 + 0.5, client="10.0.0.6:1", cart_id="b")
    assert rules_found(flows) == Counter()


def replace(flow, index, **changes):
    """The flow with exchange `index` rebuilt by `ex` with the same request, time and client, plus changes."""
    old = flow[index]
    fields = {
        "at": old.started_at,
        "duration": (old.ended_at or old.started_at) - old.started_at,
        "body": old.request.body,
        "headers": dict(old.request.headers.items()),
        "status": old.response.status if old.response else None,
        "response_body": old.response.body if old.response else None,
        "client": old.client,
    }
    fields.update(changes)
    method = fields.pop("method", old.request.method)
    return [*flow[:index], ex(method, old.request.url, **fields), *flow[index + 1 :]]


def seeded_commit_with_post():
    return replace(purchase(), 7, method="POST")


def seeded_early_poll():
    return replace(purchase(), 3, at=T0 + 4.0)  # the 202 ended at T0 + 3.2 and asked for 2 s


def seeded_overlap():
    return replace(purchase(), 4, duration=1.5)  # shipping GET still unanswered when shipping PUT starts


def seeded_plain_card():
    return replace(purchase(), 6, body=payment_body("4111111111111111", "REDACTED"))


def seeded_walk_away():
    return purchase()[:7]


def seeded_quota_retry():
    flow = purchase()
    limited = ex("GET", f"{CART}/shipping?apikey=REDACTED&cart_id=cart-1", at=T0 + 6.0, duration=0.1, status=429,
                 response_headers={"Ratelimit-Expiry": str(int((T0 + 7.5) * 1000))})  # fmt: skip
    return [*flow[:4], limited, *flow[4:]]


def seeded_short_token():
    return [token_grant(T0, expires_in=5), *purchase()[1:]]


def seeded_missing_sid():
    flow = purchase()
    headers = dict(flow[2].request.headers.items())
    del headers["X-TM-SESSION-SID"]
    return replace(flow, 2, headers=headers)


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        (seeded_commit_with_post, {"commit-not-put": 1, "abandoned-cart": 1}),
        (seeded_early_poll, {"polling-too-fast": 1}),
        (seeded_overlap, {"concurrent-cart-calls": 1}),
        (seeded_plain_card, {"unencrypted-card": 1, "secret-in-recording": 1}),
        (seeded_walk_away, {"abandoned-cart": 1}),
        (seeded_quota_retry, {"rate-limit-retry": 1}),
        (seeded_short_token, {"expired-access-token": 6}),
        (seeded_missing_sid, {"sid-missing": 1}),
    ],
)
def test_seeded_mistake_gives_exactly_its_findings(seed, expected):
    assert rules_found(seed()) == Counter(expected)


def test_registry_ids_are_unique_and_documented():
    ids = rule_ids()
    assert len(ids) == len(set(ids)) == len(RULE_CLASSES)
    for cls in RULE_CLASSES:
        assert cls.summary and cls.severity


def test_recording_only_rules_are_left_out_live():
    assert "secret-in-recording" in rule_ids()
    assert "secret-in-recording" not in rule_ids(live=True)
    assert [r.id for r in all_rules(live=True)] == rule_ids(live=True)
    assert "secret-in-recording" not in [r.id for r in all_rules(frozenset({"secret-in-recording"}))]


def test_the_engine_audits_recordings_by_default():
    assert "secret-in-recording" in [r.id for r in AuditEngine().rules]


def test_live_and_offline_feeds_give_the_same_findings():
    """The proxy calls request/response as traffic flows; offline replays the same events."""
    flow = seeded_overlap() + seeded_early_poll()
    live = AuditEngine(all_rules(live=True))
    events = sorted(
        [(e.started_at, 1, e) for e in flow] + [(e.ended_at, 0, e) for e in flow], key=lambda t: t[:2]
    )
    for _, is_request, exchange in events:
        (live.request if is_request else live.response)(exchange)
    live.finish()
    offline = audit_exchanges(flow, all_rules(live=True))
    assert Counter(f.rule for f in live.findings) == Counter(f.rule for f in offline)
