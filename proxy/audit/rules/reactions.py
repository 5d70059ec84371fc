"""Reaction rules: how the partner app behaves after Ticketmaster's failures.

Together with `polling-too-fast` and `rate-limit-retry` they judge what `tmproxy --fault` provokes,
and the same answers when Ticketmaster gives them. Sources: the polling contract and the nightly
maintenance window (503) in ticketmaster-api-notes.md, partner-api-faq.txt ("It can happen during
niterun"), and rule 3 of resale-fan-session.txt (SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...cassette.redact import masked_url
from ...exchange import Exchange
from ...findings import Finding, Severity
from ...sessions import SessionTable
from ...ticketmaster import (
    SESSION_EXPIRED_MESSAGE,
    CartCall,
    classify_cart_call,
    resale_sid,
    top_picks_event,
)
from ..engine import Rule
from ..partner_api import (
    PendingPolls,
    RequestKind,
    announces_expired_session,
    named_session,
    polling_instruction,
    url_key,
)

BACKOFF_S = 1.0
"""A retry of a call sooner than this after its 503 is no back-off."""


@dataclass(frozen=True)
class _Accepted:
    answer: Exchange
    polling_url: str
    wait: float


class PollingAbandoned(Rule):
    """A 202 hands the outcome of the call (the cart, the commit) to its polling url: an app that
    never fetches it does not know whether it holds a cart or bought the tickets."""

    id = "polling-abandoned"
    severity = Severity.WARNING
    summary = "A 202 answer's polling_url was never fetched: the app never learnt the outcome of its call."

    def __init__(self) -> None:
        self._awaited: PendingPolls[_Accepted] = PendingPolls()

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        if exchange.request.method.upper() == "GET":
            self._awaited.pop(exchange.request.url)
        return ()

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        instruction = polling_instruction(response) if response is not None else None
        if instruction is not None:
            self._awaited.add(instruction.url, _Accepted(exchange, instruction.url, instruction.wait))
        return ()

    def on_finish(self, sessions: SessionTable) -> Iterable[Finding]:
        for accepted in self._awaited.remaining():
            yield self.finding(
                accepted.answer,
                f"answered 202 with a polling_url to fetch after {accepted.wait:g}s, which was never "
                "fetched: follow the polling url until it answers, or the outcome of the call is unknown",
                polling_url=masked_url(accepted.polling_url),
                wait=accepted.wait,
            )
        self._awaited = PendingPolls()


@dataclass(frozen=True)
class _Unavailable:
    until: float
    answered_at: float
    answer: Exchange


class NoBackoffAfter503(Rule):
    """Per partner (client host): the same call (method, path, query without the apikey; bodies
    differ, a card is encrypted anew each time) sent again less than `BACKOFF_S` after a 503."""

    id = "no-backoff-after-503"
    severity = Severity.WARNING
    summary = "The same call was sent again within a second of a 503 (Ticketmaster down or in maintenance)."

    def __init__(self) -> None:
        # in order of `until`: 503s arrive in time order, and a repeated one moves to the end
        self._unavailable: dict[tuple[str, object], _Unavailable] = {}

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        now = exchange.started_at
        while self._unavailable:
            oldest_key, oldest = next(iter(self._unavailable.items()))
            if oldest.until > now:
                break
            del self._unavailable[oldest_key]
        if not self._unavailable:  # nearly always: no 503 in the last second, nothing to compare
            return
        outage = self._unavailable.pop(_call_key(exchange), None)
        if outage is not None and now >= outage.answered_at:
            after = now - outage.answered_at
            yield self.finding(
                exchange,
                f"sent again {after:.2f}s after a 503 answered the same call: back off (Ticketmaster may "
                "be down or in its nightly maintenance window) instead of retrying at once",
                unavailable=outage.answer.id,
                retried_after=round(after, 3),
            )

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        if response is not None and response.status == 503:
            key = _call_key(exchange)
            answered = exchange.finished_at
            self._unavailable.pop(key, None)
            self._unavailable[key] = _Unavailable(answered + BACKOFF_S, answered, exchange)
        return ()


def _call_key(exchange: Exchange) -> tuple[str, object]:
    return exchange.client_host, (exchange.request.method.upper(), url_key(exchange.request.url))


class StalePriceAfterExpiry(Rule):
    """By session id: an answer announcing SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED for a session
    (in its Top Picks body, else the session the call named) makes the session's prices stale until a
    Top Picks answer for it comes without the message. A reserve naming it meanwhile is flagged."""

    id = "stale-price-after-expiry"
    severity = Severity.WARNING
    summary = f"A reserve was sent after {SESSION_EXPIRED_MESSAGE} without a new Top Picks in between."
    request_kinds = frozenset({RequestKind.CART})

    def __init__(self) -> None:
        self._stale: dict[str, Exchange] = {}

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        if classify_cart_call(request.method, request.path) is not CartCall.RESERVE:
            return
        sid = named_session(request)
        expired_by = self._stale.get(sid) if sid is not None else None
        if expired_by is not None:
            yield self.finding(
                exchange,
                f"reserve sent with session {sid} after Ticketmaster answered {SESSION_EXPIRED_MESSAGE} "
                "for it, with no new Top Picks in between: show the fan the current prices first",
                expired_by=expired_by.id,
            )

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        if response is None:
            return ()
        announced = announces_expired_session(response)
        is_top_picks = top_picks_event(exchange.request.path) is not None
        if not announced and not (is_top_picks and self._stale):
            return ()
        answered = resale_sid(response.json()) if is_top_picks else None
        sid = answered.session_id if answered is not None else named_session(exchange.request)
        if sid is None:
            return ()
        if announced:
            self._stale[sid] = exchange
        elif is_top_picks and response.status == 200:
            self._stale.pop(sid, None)
        return ()
