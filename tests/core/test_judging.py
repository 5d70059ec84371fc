"""`proxy.judging.Judge`: the live rules as the judge process runs them, fed each request and end."""

from __future__ import annotations

import logging

import pytest
from traffic import reserve, top_picks

from proxy.fan_session import FanSessionGuard, SidPolicy
from proxy.judging import Judge, JudgeSettings


def feed(judge: Judge, *exchanges) -> None:
    """Each exchange's request, then its end, as a proxy sees them one after the other."""
    for exchange in exchanges:
        answer = exchange.response
        exchange.response = None
        judge.request(exchange)
        exchange.response = answer
        judge.end(exchange)


def test_the_judge_finds_and_counts_what_the_proxys_guard_does(caplog):
    judge, guard = Judge(), FanSessionGuard()
    judge.configure(JudgeSettings())
    caplog.set_level(logging.WARNING, logger="proxy.judging")
    feed(judge, top_picks(), reserve(sid=None))
    for exchange in (top_picks(), reserve(sid=None)):
        answer, exchange.response = exchange.response, None
        guard.request(exchange)
        exchange.response = answer
        guard.response(exchange)
    guard.finish()
    assert judge.finish() == guard.summary()
    assert [r.getMessage().split("]")[0] for r in caplog.records].count("[sid-missing") == 1


def test_off_silences_the_session_rules_as_in_the_proxy():
    judge = Judge()
    judge.configure(JudgeSettings(policy=SidPolicy.OFF))
    feed(judge, top_picks(), reserve(sid=None))
    assert "sid-missing" not in judge.finish().findings_by_rule


@pytest.mark.parametrize("policy", [SidPolicy.INJECT, SidPolicy.ENFORCE])
def test_policies_that_change_calls_are_not_judged_away_from_the_proxy(policy: SidPolicy):
    with pytest.raises(ValueError, match="judged in the proxy"):
        Judge().configure(JudgeSettings(policy=policy))
