"""Fan Session rules: the X-TM-SESSION-SID header on cart calls, expired sessions, price stability.

Source: resale-fan-session.txt. A resale reserve must carry the session id that Top Picks issued,
so that the price charged is the price the fan was shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ...exchange import Exchange, Request
from ...fans import CLIENT
from ...findings import Finding, Severity
from ...sessions import SessionTable
from ...ticketmaster import (
    SESSION_EXPIRED_MESSAGE,
    SESSION_HEADER,
    CartCall,
    cart_event,
    charged_items,
    classify_cart_call,
    looks_like_session_id,
    reserved_resale,
    reserved_tickets,
)
from ..engine import Rule
from ..partner_api import RequestKind, ReserveAnswers, is_cart_path

PRICE_TOLERANCE = 0.005


def session_ids(request: Request) -> list[str]:
    """The non-empty X-TM-SESSION-SID values a request carries (an empty header carries no id)."""
    return [v.strip() for v in request.headers.get_all(SESSION_HEADER) if v.strip()]


def asked_ids(request: Request) -> list[str]:
    """The ticket and offer ids a reserve asks for."""
    return [t.ticket_id for t in reserved_tickets(request.json())]


def is_resale_reserve(request: Request, sessions: SessionTable) -> bool:
    """A reserve asking for a resale listing, or for an offer or ticket Top Picks showed as resale."""
    if classify_cart_call(request.method, request.path) is not CartCall.RESERVE:
        return False
    return sessions.any_resale(asked_ids(request))


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
    request_kinds = frozenset({RequestKind.CART})

    def __init__(self) -> None:
        self._answers = ReserveAnswers()

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        if is_resale_reserve(request, sessions) and not session_ids(request):
            yield self.finding(exchange, MISSING_MESSAGE)

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        """What was not known as resale when the reserve left: Ticketmaster reserved resale inventory."""
        answer = self._answers.final(exchange)
        if answer is None:
            return
        reserve, body = answer
        if session_ids(reserve.request) or is_resale_reserve(reserve.request, sessions):
            return
        resale = reserved_resale(body)
        if resale:
            yield self.finding(
                reserve,
                f"{MISSING_MESSAGE} (Ticketmaster reserved it as resale inventory)",
                tickets=[item.ticket_id for item in resale],
            )


MISSING_MESSAGE = (
    f"resale reserve sent without {SESSION_HEADER}: the fan may pay a different price than Top Picks showed"
)


class SidMalformed(Rule):
    id = "sid-malformed"
    severity = Severity.WARNING
    summary = "An X-TM-SESSION-SID value that cannot be a session id (not a UUID, or several different ids)."
    request_kinds = frozenset({RequestKind.CART})

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
    request_kinds = frozenset({RequestKind.CART})

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        sid = single_well_formed_id(exchange.request)
        if sid is not None and is_cart_path(exchange.request.path) and sessions.get(sid) is None:
            yield self.finding(exchange, f"{SESSION_HEADER} {sid} was never issued by a Top Picks response")


class SidExpired(Rule):
    id = "sid-expired"
    severity = Severity.WARNING
    summary = "A session id used on a cart call after its expiry: the price is no longer guaranteed."
    request_kinds = frozenset({RequestKind.CART})

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


class SidMismatch(Rule):
    id = "sid-mismatch"
    severity = Severity.ERROR
    summary = (
        "A reserve carries a session id issued to another fan, or whose Top Picks never showed its tickets."
    )
    request_kinds = frozenset({RequestKind.CART})

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        request = exchange.request
        sid = single_well_formed_id(request)
        if sid is None or classify_cart_call(request.method, request.path) is not CartCall.RESERVE:
            return
        session = sessions.get(sid)
        if session is None:
            return  # sid-unknown's case
        asked = asked_ids(request)
        fan = sessions.fan_of(exchange)
        other_fan = session.fan.differs_from(fan)
        evidence: dict[str, object] = {"session": sid, "fan_key": other_fan or fan.kind, "tickets": asked}
        event = cart_event(request.path)
        if other_fan is not None and other_fan != CLIENT:
            yield self.finding(
                exchange,
                f"{SESSION_HEADER} {sid} was issued to another fan (the {other_fan} differs): "
                "this fan's cart would be priced under someone else's session",
                **evidence,
                issued_to=session.fan.kind,
            )
        elif event is not None and session.event_id != event:
            yield self.finding(
                exchange,
                f"{SESSION_HEADER} {sid} was issued by Top Picks of event {session.event_id}, not {event}",
                **evidence,
                session_event=session.event_id,
            )
        elif asked and not session.showed(asked):
            showed = [s.session_id for s in sessions.showing(asked)]
            if showed:
                yield self.finding(
                    exchange,
                    f"the Top Picks of {SESSION_HEADER} {sid} never showed {', '.join(a[:48] for a in asked)}; "
                    f"session {showed[0]} did",
                    **evidence,
                    showing_sessions=showed,
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
        self._answers = ReserveAnswers()

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        """Judge a reserve's answer: given directly, or at the end of its polling."""
        answer = self._answers.final(exchange)
        if answer is not None:
            reserve, body = answer
            yield from self._check_charges(exchange, reserve, body, sessions)

    def _check_charges(
        self, exchange: Exchange, reserve: Exchange, answer: object, sessions: SessionTable
    ) -> Iterator[Finding]:
        asked = {t.ticket_id: t.price_amount for t in reserved_tickets(reserve.request.json())}
        shown_to = _shown_price_source(reserve, sessions)
        for item in charged_items(answer):
            shown = shown_to([k for k in (item.ticket_id, item.offer_id) if k])
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


def _shown_price_source(reserve: Exchange, sessions: SessionTable) -> Callable[[list[str]], float | None]:
    """Where the fan's shown price comes from: the session the reserve carried (or was given), else
    this fan's newest session that showed the ticket; never another fan's."""
    sid = single_well_formed_id(reserve.request)
    session = sessions.get(sid) if sid else None
    if session is not None:
        return session.shown_price
    fan = sessions.fan_of(reserve)
    return lambda ids: sessions.shown_price(fan, ids)
