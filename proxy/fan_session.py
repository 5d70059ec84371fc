"""The X-TM-SESSION-SID policy the proxy applies to cart calls, over the audit engine.

`inject` adds the session the fan was shown when the partner forgot it; `validate` only reports;
`enforce` answers a cart call that lacks a valid session itself, so it never reaches Ticketmaster;
`off` neither changes nor judges the header.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from dataclasses import dataclass, field

from .audit.engine import AuditEngine
from .audit.partner_api import is_cart_path
from .audit.rules import SID_RULES, all_rules
from .audit.rules.fan_session import session_ids
from .exchange import Exchange, Headers, Response
from .findings import Finding
from .ticketmaster import SESSION_HEADER, cart_event

BLOCKING_RULES = ("sid-missing", "sid-expired")
BLOCK_STATUS = 428


class SidPolicy(enum.StrEnum):
    INJECT = "inject"
    VALIDATE = "validate"
    ENFORCE = "enforce"
    OFF = "off"


@dataclass
class RequestVerdict:
    """What the proxy should do with a request: the header to add, the findings, or its own answer."""

    injected_sid: str | None = None
    findings: list[Finding] = field(default_factory=list)
    block: Response | None = None


@dataclass
class TrafficSummary:
    requests: int = 0
    cart_calls: int = 0
    sessions_seen: int = 0
    findings_by_rule: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        rules = ", ".join(f"{rule}={n}" for rule, n in sorted(self.findings_by_rule.items())) or "none"
        return [
            f"requests: {self.requests}",
            f"cart calls: {self.cart_calls}",
            f"sessions seen: {self.sessions_seen}",
            f"findings: {sum(self.findings_by_rule.values())} ({rules})",
        ]


class FanSessionGuard:
    """One proxy's view of the traffic: the SID policy plus every live rule."""

    def __init__(self, policy: SidPolicy = SidPolicy.VALIDATE) -> None:
        self.engine = AuditEngine([])
        self.policy = SidPolicy.VALIDATE
        self.set_policy(policy)
        self._requests = 0
        self._cart_calls = 0

    def set_policy(self, policy: SidPolicy) -> None:
        """Change the policy; `off` also silences the SID rules. Rule state starts afresh."""
        self.policy = policy
        disabled = SID_RULES if policy is SidPolicy.OFF else frozenset()
        self.engine.rules = all_rules(live=True, disabled=disabled)

    def request(self, exchange: Exchange) -> RequestVerdict:
        """Decide on a request before it goes upstream (injection happens before the rules look)."""
        self._requests += 1
        verdict = RequestVerdict()
        if not is_cart_path(exchange.request.path):
            verdict.findings = self.engine.request(exchange)
            return verdict
        self._cart_calls += 1
        if self.policy is SidPolicy.INJECT and not session_ids(exchange.request):
            verdict.injected_sid = self._session_to_inject(exchange)
            if verdict.injected_sid is not None:
                exchange.request.headers.set(SESSION_HEADER, verdict.injected_sid)
        verdict.findings = self.engine.request(exchange)
        if self.policy is SidPolicy.ENFORCE:
            verdict.block = blocking_response(verdict.findings)
        return verdict

    def response(self, exchange: Exchange) -> list[Finding]:
        return self.engine.response(exchange)

    def finish(self) -> list[Finding]:
        return self.engine.finish()

    def summary(self) -> TrafficSummary:
        return TrafficSummary(
            requests=self._requests,
            cart_calls=self._cart_calls,
            sessions_seen=len(self.engine.sessions),
            findings_by_rule=Counter(f.rule for f in self.engine.findings),
        )

    def _session_to_inject(self, exchange: Exchange) -> str | None:
        event = cart_event(exchange.request.path)
        session = self.engine.sessions.newest_valid(exchange.client_host, event, exchange.started_at)
        return session.session_id if session is not None else None


def blocking_response(findings: list[Finding]) -> Response | None:
    """The proxy's own 4xx for a cart call that enforce mode stops, in Ticketmaster's error shape."""
    blocking = [f for f in findings if f.rule in BLOCKING_RULES]
    if not blocking:
        return None
    first = blocking[0]
    body = {
        "error": {
            "message": f"tmproxy enforce: blocked before Ticketmaster: {first.message} "
            f"(rule {first.rule}; send the {SESSION_HEADER} that Top Picks returned in "
            "fanSession.resaleSid.sessionId)",
            "code": f"TMPROXY_{first.rule.upper().replace('-', '_')}",
            "http_code": BLOCK_STATUS,
            "severity": "ERROR",
        },
        "tmproxy": {"rules": [f.rule for f in blocking], "header": SESSION_HEADER},
    }
    return Response(
        status=BLOCK_STATUS,
        headers=Headers([("Content-Type", "application/json"), ("X-Tmproxy-Blocked", first.rule)]),
        body=json.dumps(body).encode(),
        reason="Precondition Required",
    )
