"""Cart flow rules: concurrency, abandoned carts, the commit method and polling pace.

Sources: partner-api-faq.txt ("The API does not support concurrent calls to any cart end point";
carts "left unpurchased and not deleted" get a partner polled more; commit "method type is PUT")
and the polling contract in ticketmaster-api-notes.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...exchange import Exchange, Response
from ...findings import Finding, Severity
from ...sessions import SessionTable
from ...ticketmaster import CartCall, classify_cart_call, is_commit_attempt
from ..engine import Rule
from ..partner_api import (
    PendingPolls,
    RequestKind,
    cart_id_of,
    is_cart_path,
    polling_instruction,
    reserved_cart_id,
)

IN_FLIGHT_LIMIT_S = 120.0
"""A cart call still unanswered after this long is taken as failed: a recording keeps no response
for a call that errored, and without a limit every later call would look concurrent with it."""

POLL_TOLERANCE_S = 0.01
"""Recorded times have millisecond resolution; a poll this close to its due time is on time."""


class ConcurrentCartCalls(Rule):
    id = "concurrent-cart-calls"
    severity = Severity.ERROR
    summary = "A cart call started while another cart call of the same fan was still unanswered."
    request_kinds = frozenset({RequestKind.CART})
    response_kinds = frozenset({RequestKind.CART})

    def __init__(self) -> None:
        self._in_flight: dict[tuple[str, str], dict[str, Exchange]] = {}

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        """Per fan: a partner's backend serves many fans at once from one address, each with their own cart."""
        if not is_cart_path(exchange.request.path):
            return
        calls = self._in_flight.setdefault(sessions.fan_of(exchange).key, {})
        for key, other in list(calls.items()):
            if exchange.started_at - other.started_at > IN_FLIGHT_LIMIT_S:
                del calls[key]
        if calls:
            others = list(calls.values())
            first = others[0]
            yield self.finding(
                exchange,
                f"cart call started while {len(others)} other cart call(s) of this fan were unanswered "
                f"(first: {first.request.method} {first.request.path}): the API does not support "
                "concurrent cart calls",
                concurrent_with=[other.id for other in others],
            )
        calls[exchange.id] = exchange

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        calls = self._in_flight.get(sessions.fan_of(exchange).key)
        if calls is not None:
            calls.pop(exchange.id, None)
        return ()


@dataclass
class _OpenCart:
    reserve: Exchange
    cart_id: str


class AbandonedCart(Rule):
    """Carts are opened by a reserve's 200 (or by the 200 that ends its polling) and closed by a
    commit (PUT) or release (DELETE) naming the cart that was answered without an error."""

    id = "abandoned-cart"
    severity = Severity.WARNING
    summary = "A reserved cart was neither committed (PUT) nor released (DELETE) by the end of the traffic."

    def __init__(self) -> None:
        self._open: dict[str, _OpenCart] = {}
        self._pending_reserves: PendingPolls[Exchange] = PendingPolls()

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request, response = exchange.request, exchange.response
        if response is None:
            return ()
        kind = classify_cart_call(request.method, request.path)
        reserve = exchange if kind is CartCall.RESERVE else self._pending_reserve(exchange)
        if reserve is not None:
            self._follow_reserve(reserve, response)
        elif kind in (CartCall.COMMIT, CartCall.RELEASE) and response.status < 400:
            cart_id = cart_id_of(request)
            if cart_id is not None:
                self._open.pop(cart_id, None)
        return ()

    def on_finish(self, sessions: SessionTable) -> Iterable[Finding]:
        for cart in self._open.values():
            yield self.finding(
                cart.reserve,
                f"cart {cart.cart_id[:48]} was reserved but never committed (PUT) or released (DELETE): "
                "release abandoned carts, or Ticketmaster polls the partner more often",
                cart_id=cart.cart_id,
            )
        self._open.clear()

    def _pending_reserve(self, exchange: Exchange) -> Exchange | None:
        """The reserve that a poll answers, when this exchange is a GET of a reserve's polling URL."""
        if exchange.request.method.upper() != "GET":
            return None
        return self._pending_reserves.pop(exchange.request.url)

    def _follow_reserve(self, reserve: Exchange, response: Response) -> None:
        """A reserve (or its poll) answered: poll on, or open the cart it reserved."""
        instruction = polling_instruction(response)
        if instruction is not None:
            self._pending_reserves.add(instruction.url, reserve)
            return
        cart_id = reserved_cart_id(response.json()) if response.status == 200 else None
        if cart_id is not None:
            self._open[cart_id] = _OpenCart(reserve=reserve, cart_id=cart_id)


class CommitNotPut(Rule):
    id = "commit-not-put"
    severity = Severity.ERROR
    summary = "A cart commit was attempted with a method other than PUT (Ticketmaster answers 21001)."
    request_kinds = frozenset({RequestKind.CART})

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        if request.method.upper() == "PUT" or not is_cart_path(request.path):
            return
        if is_commit_attempt(request.method, request.path, request.json()):
            yield self.finding(
                exchange,
                f"commit sent with {request.method.upper()}: a commit must be a PUT on the cart "
                "(else 'Invalid reserve request data structure')",
            )


@dataclass(frozen=True)
class _DuePoll:
    due_at: float
    wait: float
    instructed_by: Exchange


class PollingTooFast(Rule):
    id = "polling-too-fast"
    severity = Severity.WARNING
    summary = "A polling URL was fetched before the `wait` seconds that its 202 answer asked for."

    def __init__(self) -> None:
        self._due: PendingPolls[_DuePoll] = PendingPolls()

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        if exchange.request.method.upper() != "GET":
            return
        due = self._due.pop(exchange.request.url)
        if due is not None and exchange.started_at < due.due_at - POLL_TOLERANCE_S:
            early = due.due_at - exchange.started_at
            yield self.finding(
                exchange,
                f"polled {early:.2f}s too early: the 202 asked to wait {due.wait:g}s",
                wait=due.wait,
                early_by=round(early, 3),
                polling_answer=due.instructed_by.id,
            )

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        instruction = polling_instruction(response) if response is not None else None
        if instruction is not None:
            answered_at = exchange.finished_at
            self._due.add(
                instruction.url,
                _DuePoll(
                    due_at=answered_at + instruction.wait, wait=instruction.wait, instructed_by=exchange
                ),
            )
        return ()
