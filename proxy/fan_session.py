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

from .audit.engine import AuditEngine, Rule
from .audit.partner_api import cart_id_of, is_cart_path, request_kind
from .audit.rules import SID_RULES, all_rules
from .audit.rules.fan_session import SidMissing, asked_ids, session_ids
from .exchange import Exchange, Headers, Response
from .fans import FAN_KEY_KINDS, FanKeySpec
from .findings import Finding, Severity
from .sessions import SessionChoice
from .ticketmaster import SESSION_HEADER, CartCall, cart_event, classify_cart_call

BLOCKING_RULES = ("sid-missing", "sid-expired")
BLOCK_STATUS = 428
BLOCKED_HEADER = "X-Tmproxy-Blocked"  # names the rule that blocked the call


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
    fans_by_kind: Counter[str] = field(default_factory=Counter)
    findings_by_rule: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        rules = ", ".join(f"{rule}={n}" for rule, n in sorted(self.findings_by_rule.items())) or "none"
        kinds = ", ".join(
            f"{kind} {self.fans_by_kind[kind]}" for kind in FAN_KEY_KINDS if self.fans_by_kind[kind]
        )
        return [
            f"requests: {self.requests}",
            f"cart calls: {self.cart_calls}",
            f"sessions seen: {self.sessions_seen}",
            f"fans: {sum(self.fans_by_kind.values())}" + (f" ({kinds})" if kinds else ""),
            f"findings: {sum(self.findings_by_rule.values())} ({rules})",
        ]


class SidInjectedGuess(Rule):
    """Not an audit rule: the proxy's own `inject` decision, reported when it was not sure."""

    id = "sid-injected-guess"
    severity = Severity.WARNING
    summary = "inject added a session that no Top Picks of this fan showed for the ticket: a guess."


class SidInjectAmbiguous(Rule):
    """Not an audit rule: `inject` refused to choose between sessions it cannot tell apart."""

    id = "sid-inject-ambiguous"
    severity = Severity.ERROR
    summary = "Several fans' sessions showed the ticket and nothing tells the fans apart: nothing injected."


class FanSessionGuard:
    """One proxy's view of the traffic: the SID policy plus every live rule."""

    def __init__(self, policy: SidPolicy = SidPolicy.VALIDATE, fan_key: FanKeySpec | None = None) -> None:
        self.engine = AuditEngine([], fan_key)
        self.policy = SidPolicy.VALIDATE
        self.set_policy(policy)
        self._requests = 0
        self._cart_calls = 0

    def set_fan_key(self, fan_key: FanKeySpec | None) -> None:
        """How fans behind one address are told apart when their calls carry no bearer token."""
        self.engine.sessions.fan_key = fan_key

    def set_policy(self, policy: SidPolicy) -> None:
        """Change the policy; `off` also silences the SID rules. Rule state starts afresh."""
        self.policy = policy
        disabled = SID_RULES if policy is SidPolicy.OFF else frozenset()
        self.engine.rules = all_rules(live=True, disabled=disabled)

    def passes(self, method: str, path: str) -> bool:
        """Whether a request with this method and path (no query) is one that no rule judges (a static
        file): it is counted, and needs no `request` or `response`, so the proxy need not convert it."""
        if self.engine.judges(request_kind(method, path)):
            return False
        self._requests += 1
        return True

    def request(self, exchange: Exchange) -> RequestVerdict:
        """Decide on a request before it goes upstream (injection happens before the rules look)."""
        self._requests += 1
        verdict = RequestVerdict()
        if not is_cart_path(exchange.request.path):
            verdict.findings = self.engine.request(exchange)
            return verdict
        self._cart_calls += 1
        choice = None
        if self.policy is SidPolicy.INJECT and not session_ids(exchange.request):
            choice = self._choose(exchange)
            if choice.session is not None:
                verdict.injected_sid = choice.session.session_id
                exchange.request.headers.set(SESSION_HEADER, verdict.injected_sid)
        verdict.findings = self.engine.request(exchange)
        if choice is not None:
            verdict.findings = self._report_choice(exchange, choice, verdict.findings)
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
            fans_by_kind=self.engine.sessions.fans_by_kind(),
            findings_by_rule=Counter(f.rule for f in self.engine.findings),
        )

    def _choose(self, exchange: Exchange) -> SessionChoice:
        request = exchange.request
        sessions = self.engine.sessions
        wanted = (
            asked_ids(request) if classify_cart_call(request.method, request.path) is CartCall.RESERVE else []
        )
        return sessions.choose(
            sessions.fan_of(exchange),
            cart_event(request.path),
            wanted,
            cart_id_of(request),
            exchange.started_at,
        )

    def _report_choice(
        self, exchange: Exchange, choice: SessionChoice, found: list[Finding]
    ) -> list[Finding]:
        """Say when injection guessed or refused to; an ambiguity replaces the rules' `sid-missing`."""
        if choice.guessed and choice.session is not None:
            extra = SidInjectedGuess().finding(
                exchange,
                f"injected {SESSION_HEADER} {choice.session.session_id} as a guess: {choice.why}",
                session=choice.session.session_id,
                fan_key=self.engine.sessions.fan_of(exchange).kind,
            )
        elif choice.ambiguous:
            extra = SidInjectAmbiguous().finding(
                exchange,
                f"nothing injected: {choice.why}",
                sessions=[s.session_id for s in choice.ambiguous],
            )
            replaced = [f for f in found if f.rule == SidMissing.id]
            self.engine.withdraw(replaced)
            found = [f for f in found if f not in replaced]
        else:
            return found
        self.engine.add([extra])
        return [*found, extra]


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
        headers=Headers([("Content-Type", "application/json"), (BLOCKED_HEADER, first.rule)]),
        body=json.dumps(body).encode(),
        reason="Precondition Required",
    )
