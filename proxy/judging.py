"""Judging a proxy's calls by the live rules, in the order the proxy saw them, away from the proxy.

mitmproxy forwards every call on one event loop, on one core, and the rules (which must see every Top
Picks answer and every cart call) cost a fifth to a third of it. When no verdict may change a call (the
`validate` and `off` policies: nothing injected, nothing blocked) and nothing is recorded (the recorder
needs each call's findings before the call is answered), the proxy hands each call to a `Judge` in
another process (addons/judge_process.py) and goes on forwarding. The `Judge` does what the
fan-session addon does in process, in the same order: each request, then its end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .exchange import Exchange
from .fan_session import FanSessionGuard, SidPolicy, TrafficSummary
from .fans import FanKeySpec
from .findings import Finding

logger = logging.getLogger(__name__)

HANDED_OFF_POLICIES = (SidPolicy.VALIDATE, SidPolicy.OFF)
"""The policies under which no verdict changes a call, so that judging can happen elsewhere."""


@dataclass(frozen=True)
class JudgeSettings:
    """What the options say: the policy, and how fans are told apart."""

    policy: SidPolicy = SidPolicy.VALIDATE
    fan_key: FanKeySpec | None = None


class Judge:
    """The live rules, fed each call's request and end as they happened; logs what they find."""

    def __init__(self) -> None:
        self.guard = FanSessionGuard()

    def configure(self, settings: JudgeSettings) -> None:
        """Apply new settings. Raises ValueError for a policy whose verdicts change calls."""
        if settings.policy not in HANDED_OFF_POLICIES:
            raise ValueError(f"the {settings.policy} policy changes calls: it is judged in the proxy")
        if settings.policy is not self.guard.policy:
            self.guard.set_policy(settings.policy)
        self.guard.set_fan_key(settings.fan_key)

    def request(self, exchange: Exchange) -> None:
        log_findings(self.guard.request(exchange).findings)

    def end(self, exchange: Exchange) -> None:
        """The call's end: the rules see its answer, or its failure (an exchange without response)."""
        log_findings(self.guard.response(exchange))

    def finish(self) -> TrafficSummary:
        """The end of the traffic: the rules' last findings, and the summary."""
        log_findings(self.guard.finish())
        return self.guard.summary()


def log_findings(findings: list[Finding]) -> None:
    for finding in findings:
        logger.warning(finding.summary_line())
