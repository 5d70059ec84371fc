"""Fan Session rules: the X-TM-SESSION-SID header on cart calls, expired sessions, price stability.

Source: resale-fan-session.txt. A resale reserve must carry the session id that Top Picks issued,
so that the price charged is the price the fan was shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ...exchange import Exchange, Request
from ...findings import Finding, Severity
from ...sessions import FanSession, SessionTable
from ...ticketmaster import (
    SESSION_EXPIRED_MESSAGE,
    SESSION_HEADER,
    CartCall,
    charged_items,
    classify_cart_call,
    is_resale_ticket,
    looks_like_session_id,
    reserved_tickets,
)
from ..engine import Rule
from ..partner_api import PendingPolls, is_cart_path, polling_instruction

PRICE_TOLERANCE = 0.005


def session_ids(request: Request) -> list[str]:
    """The non-empty X-TM-SESSION-SID values a request carries (an empty header carries no id)."""
    return [v.strip() for v in request.headers.get_all(SESSION_HEADER) if v.strip()]


def is_resale_reserve(request: Request) -> bool:
    if classify_cart_call(request.method, request.path) is not CartCall.RESERVE:
        return False
    return any(is_resale_ticket(t.ticket_id) for t in reserved_tickets(request.json()))


def single_well_formed_id(request: Request) -> str | None:
    """The session id when the request carries exactly one well-formed id (repeats allowed)."""
    ids = set(session_ids(request))
    if len(ids) != 1:
        return None
    (sid,) = ids
    return sid if looks_like_session_id(sid) else None


class SidMissing(Rule):
    id = "sid-missing"
    severity = Severity.ERROR
    summary = "A cart reserve for resale tickets was sent without X-TM-SESSION-SID: the price may change."

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        if is_resale_reserve(request) and not session_ids(request):
            yield self.finding(
                exchange,
                f"resale reserve sent without {SESSION_HEADER}: the fan may pay a different price "
                "than Top Picks showed",
            )


class SidMalformed(Rule):
    id = "sid-malformed"
    severity = Severity.WARNING
    summary = "An X-TM-SESSION-SID value that cannot be a session id (not a UUID, or several different ids)."

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        ids = session_ids(request)
        if not is_cart_path(request.path) or not ids:
            return
        if len(set(ids)) > 1:
            yield self.finding(exchange, f"{len(set(ids))} different {SESSION_HEADER} values on one request")
        elif not looks_like_session_id(ids[0]):
            yield self.finding(exchange, f"{SESSION_HEADER} {ids[0][:64]!r} is not a session id (UUID)")


class SidUnknown(Rule):
    id = "sid-unknown"
    severity = Severity.WARNING
    summary = "A session id that no earlier Top Picks response issued."

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        sid = single_well_formed_id(exchange.request)
        if sid is not None and is_cart_path(exchange.request.path) and sessions.get(sid) is None:
            yield self.finding(exchange, f"{SESSION_HEADER} {sid} was never issued by a Top Picks response")


class SidExpired(Rule):
    id = "sid-expired"
    severity = Severity.WARNING
    summary = "A session id used on a cart call after its expiry: the price is no longer guaranteed."

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        sid = single_well_formed_id(exchange.request)
        session = sessions.get(sid) if sid is not None and is_cart_path(exchange.request.path) else None
        if session is not None and session.is_expired(exchange.started_at):
            late = exchange.started_at - session.expire_ms / 1000
            yield self.finding(
                exchange,
                f"{SESSION_HEADER} {sid} expired {late:.0f}s before this cart call: refresh Top Picks first",
                session_expire_ms=session.expire_ms,
            )


class SessionExpired(Rule):
    id = "session-expired"
    severity = Severity.WARNING
    summary = f"A response carried {SESSION_EXPIRED_MESSAGE}: the fan may see a different price."

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        if response is None:
            return
        where = _expired_message_location(response.headers.items(), response.body)
        if where:
            yield self.finding(exchange, f"{SESSION_EXPIRED_MESSAGE} in the response {where}", where=where)


def _expired_message_location(headers: list[tuple[str, str]], body: bytes) -> str | None:
    """Where the message travelled: a plain search, as it may sit in any field, array or header."""
    if any(SESSION_EXPIRED_MESSAGE in v for _, v in headers):
        return "headers"
    return "body" if SESSION_EXPIRED_MESSAGE.encode() in body else None


class PriceMismatch(Rule):
    id = "price-mismatch"
    severity = Severity.ERROR
    summary = (
        "A reserve charged a different price than the fan was shown in Top Picks or than the request named."
    )

    def __init__(self) -> None:
        self._polled_reserves: PendingPolls[Exchange] = PendingPolls()

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        """Judge a reserve's answer: given directly, or at the end of its polling."""
        response = exchange.response
        if response is None:
            return
        reserve = exchange
        if exchange.request.method.upper() == "GET":
            reserve = self._polled_reserves.pop(exchange.request.url) or exchange
        if classify_cart_call(reserve.request.method, reserve.request.path) is not CartCall.RESERVE:
            return
        instruction = polling_instruction(response)
        if instruction is not None:
            self._polled_reserves.add(instruction.url, reserve)
        elif response.status == 200:
            yield from self._check_charges(exchange, reserve.request, response.json(), sessions)

    def _check_charges(
        self, exchange: Exchange, request: Request, answer: object, sessions: SessionTable
    ) -> Iterator[Finding]:
        asked = {t.ticket_id: t.price_amount for t in reserved_tickets(request.json())}
        sid = single_well_formed_id(request)
        session = sessions.get(sid) if sid else None
        for item in charged_items(answer):
            shown = _shown_price(sessions, session, exchange.client_host, item.ticket_id, item.offer_id)
            if shown is not None and abs(shown - item.unit_price) > PRICE_TOLERANCE:
                yield self.finding(
                    exchange,
                    f"ticket {item.ticket_id[:48]} charged {item.unit_price:.2f} but Top Picks showed {shown:.2f}",
                    shown=shown,
                    charged=item.unit_price,
                    ticket=item.ticket_id,
                )
                continue
            amount = asked.get(item.ticket_id)
            if amount is not None and abs(amount - item.unit_price) > PRICE_TOLERANCE:
                yield self.finding(
                    exchange,
                    f"ticket {item.ticket_id[:48]} charged {item.unit_price:.2f} but the reserve asked for {amount:.2f}",
                    requested=amount,
                    charged=item.unit_price,
                    ticket=item.ticket_id,
                )


def _shown_price(
    sessions: SessionTable,
    session: FanSession | None,
    client: str,
    ticket_id: str,
    offer_id: str | None,
) -> float | None:
    """The price the fan saw: in the request's own session, else in this client's newest session that showed it."""
    keys = [k for k in (ticket_id, offer_id) if k]
    if session is not None:
        for key in keys:
            if key in session.shown_prices:
                return session.shown_prices[key]
    for key in keys:
        shown = sessions.shown_price(client, key)
        if shown is not None:
            return shown
    return None
