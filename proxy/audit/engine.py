"""The rules engine: one instance judges a stream of traffic, live in the proxy or offline.

Traffic arrives as two events per exchange: its request (at `started_at`) and its response (at
`ended_at`). Live, the proxy feeds them as they happen; offline, `audit_exchanges` replays them in
time order. Either way every rule sees the same sequence, so live and offline findings agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

from ..cassette.redact import masked_url
from ..exchange import Exchange
from ..fans import FanKeySpec
from ..findings import Finding, Severity
from ..sessions import SessionTable
from ..ticketmaster import (
    SESSION_HEADER,
    CartCall,
    classify_cart_call,
    resale_sid,
    shown_inventory,
    top_picks_event,
)
from .partner_api import CALLS, RequestKind, injected_fault, request_kind, reserved_cart_id


class Rule:
    """A rule: an id, a severity, what it checks, and hooks that may return findings.

    Rules keep whatever private state they need; the session table is shared through the engine
    because several rules and the SID policy read it.
    """

    id: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    recording_only: ClassVar[bool] = False
    """Judges recordings only: live traffic legitimately carries what it looks for (the apikey)."""
    request_kinds: ClassVar[frozenset[RequestKind]] = CALLS
    """The kinds of request whose requests `on_request` judges; the engine shows it no others."""
    response_kinds: ClassVar[frozenset[RequestKind]] = CALLS
    """The kinds of request whose responses `on_response` judges."""

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        return ()

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        return ()

    def on_finish(self, sessions: SessionTable) -> Iterable[Finding]:
        return ()

    def finding(self, exchange: Exchange, message: str, **evidence: object) -> Finding:
        return Finding(
            rule=self.id,
            severity=self.severity,
            message=message,
            exchange_id=exchange.id,
            method=exchange.request.method,
            url=masked_url(exchange.request.url),
            evidence=dict(evidence),
        )


class AuditEngine:
    """Feeds requests and responses to every enabled rule and keeps the session table current."""

    def __init__(self, rules: Sequence[Rule] | None = None, fan_key: FanKeySpec | None = None) -> None:
        from .rules import all_rules

        self.rules = list(rules) if rules is not None else all_rules()
        self.sessions = SessionTable(fan_key=fan_key)
        self.findings: list[Finding] = []

    @property
    def rules(self) -> list[Rule]:
        return self._rules

    @rules.setter
    def rules(self, rules: Sequence[Rule]) -> None:
        """The rules, and for each kind of request those whose hooks judge it (most requests meet few)."""
        self._rules = list(rules)
        self._on_request = {
            kind: [r for r in self._rules if kind in r.request_kinds and _has_hook(r, "on_request")]
            for kind in RequestKind
        }
        self._on_response = {
            kind: [r for r in self._rules if kind in r.response_kinds and _has_hook(r, "on_response")]
            for kind in RequestKind
        }

    def judges(self, kind: RequestKind) -> bool:
        """Whether any rule judges requests of this kind or their responses."""
        return bool(self._on_request[kind] or self._on_response[kind])

    def request(self, exchange: Exchange) -> list[Finding]:
        """Judge a request as it is about to be sent upstream (its fan is known from here on)."""
        self.sessions.fan_of(exchange)
        rules = self._on_request[kind_of(exchange)]
        return self._collect(rule.on_request(exchange, self.sessions) for rule in rules)

    def add(self, findings: Iterable[Finding]) -> None:
        """Findings the proxy's own decisions made (e.g. a guessed injection), counted with the rules'."""
        self.findings.extend(findings)

    def withdraw(self, findings: Iterable[Finding]) -> None:
        """Take back findings that a more precise one of the proxy's replaces."""
        for finding in findings:
            self.findings.remove(finding)

    def response(self, exchange: Exchange) -> list[Finding]:
        """Learn from a response, then judge it (an injected answer only by the rules about the partner)."""
        kind = kind_of(exchange)
        if kind is RequestKind.TOP_PICKS:
            self._learn_session(exchange)
        elif kind is RequestKind.CART:
            self._learn_cart(exchange)
        rules = self._on_response[kind]
        if injected_fault(exchange.response) is not None:
            rules = [rule for rule in rules if rule.id not in TICKETMASTER_ANSWER_RULES]
        return self._collect(rule.on_response(exchange, self.sessions) for rule in rules)

    def finish(self) -> list[Finding]:
        """End of traffic: rules about what never happened (abandoned carts) speak now."""
        return self._collect(rule.on_finish(self.sessions) for rule in self.rules)

    def _collect(self, batches: Iterable[Iterable[Finding]]) -> list[Finding]:
        found = [finding for batch in batches for finding in batch]
        self.findings.extend(found)
        return found

    def _learn_session(self, exchange: Exchange) -> None:
        response = exchange.response
        event_id = top_picks_event(exchange.request.path)
        if response is None or event_id is None or response.status != 200:
            return
        body = response.json()
        sid = resale_sid(body)
        if sid is not None:
            self.sessions.learn(sid, event_id, self.sessions.fan_of(exchange), shown_inventory(body))

    def _learn_cart(self, exchange: Exchange) -> None:
        """A reserve's cart belongs to the session the reserve carried (its 200 or 202 names the cart)."""
        request, response = exchange.request, exchange.response
        if response is None or classify_cart_call(request.method, request.path) is not CartCall.RESERVE:
            return
        cart_id = reserved_cart_id(response.json())
        sid = request.headers.get(SESSION_HEADER)
        if cart_id is not None and sid:
            self.sessions.bind_cart(cart_id, sid.strip())


def kind_of(exchange: Exchange) -> RequestKind:
    request = exchange.request
    return request_kind(request.method, request.path)


def _has_hook(rule: Rule, hook: str) -> bool:
    return getattr(type(rule), hook) is not getattr(Rule, hook)


def traffic_events(exchanges: Iterable[Exchange]) -> Iterator[tuple[bool, Exchange]]:
    """Requests and ends in time order, as `(is_end, exchange)`.

    An exchange ends with its response, or without one at its recorded end (a failed upstream call,
    as the proxy's error hook ends it live); one with neither never ends. At equal times an end comes
    before another exchange's request (the calls did not overlap), but never before its own request.
    """
    events: list[tuple[float, int, int, bool, Exchange]] = []
    for seq, ex in enumerate(exchanges):
        events.append((ex.started_at, 1, seq, False, ex))
        if ex.response is None and ex.ended_at is None:
            continue
        end = ex.finished_at
        events.append((end, 2 if end <= ex.started_at else 0, seq, True, ex))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    for _, _, _, is_response, ex in events:
        yield is_response, ex


TICKETMASTER_ANSWER_RULES = frozenset({"session-expired"})
"""Rules that judge Ticketmaster's answer itself rather than the partner: an answer tmproxy injected
(`--fault`, marked by its `X-Tmproxy-Fault` header) is not Ticketmaster's, so they never see one."""

REDACTION_HIDES = frozenset({"unencrypted-card"})
"""Rules whose evidence redaction removes from a recording: a plain card number is stored as REDACTED."""


def with_recorded_findings(found: list[Finding], recorded: Iterable[Finding]) -> list[Finding]:
    """The offline findings plus what the proxy found live that redaction has since hidden from the rules."""
    seen = {(f.rule, f.exchange_id) for f in found}
    hidden = [f for f in recorded if f.rule in REDACTION_HIDES and (f.rule, f.exchange_id) not in seen]
    return found + hidden


def audit_exchanges(
    exchanges: Iterable[Exchange], rules: Sequence[Rule] | None = None, fan_key: FanKeySpec | None = None
) -> list[Finding]:
    """Run the rules over recorded traffic, exactly as the proxy would have seen it live."""
    return audit_events(traffic_events(exchanges), rules, fan_key)


def audit_events(
    events: Iterable[tuple[bool, Exchange]],
    rules: Sequence[Rule] | None = None,
    fan_key: FanKeySpec | None = None,
) -> list[Finding]:
    """Run the rules over `traffic_events` (wrapped, say, in a progress bar).

    Fans are as the recording names them; `fan_key` identifies them in recordings that do not
    (plain vcrpy cassettes, HAR and flow files).
    """
    engine = AuditEngine(rules, fan_key)
    for is_response, ex in events:
        if is_response:
            engine.response(ex)
        else:
            engine.request(ex)
    engine.finish()
    return engine.findings
