"""Fan sessions as the proxy learns them from Top Picks responses, filed by the fan they were issued to.

A partner's backend calls Ticketmaster for many fans from one address, so a session belongs to a fan
(see `proxy.fans`), and remembers what its Top Picks showed: which offers and tickets, at which
prices, and which of them are resale. That is what injection, the price check and `sid-mismatch` use.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .exchange import Exchange
from .fans import CLIENT, Fan, FanKeySpec, fan_of
from .ticketmaster import ResaleSid, ShownInventory, is_resale_ticket


@dataclass
class FanSession:
    """One incarnation of a resale session id: a renewal after expiry replaces it."""

    session_id: str
    start_ms: int
    expire_ms: int
    event_id: str
    fan: Fan
    shown: ShownInventory
    seen_seq: int = 0
    """When the table last learned it, in the table's own order: newest first means highest first."""

    def is_expired(self, when: float) -> bool:
        """Expired at epoch second `when` (Ticketmaster's times are epoch ms)."""
        return when * 1000 >= self.expire_ms

    def showed(self, ids: Iterable[str]) -> bool:
        return any(i in self.shown.ids for i in ids)

    def shown_price(self, ids: Iterable[str]) -> float | None:
        return next((self.shown.prices[i] for i in ids if i in self.shown.prices), None)


@dataclass(frozen=True)
class SessionChoice:
    """The session `inject` adds to a cart call, and whether that was certain."""

    session: FanSession | None
    guessed: bool = False
    why: str = ""
    ambiguous: tuple[FanSession, ...] = ()


K = TypeVar("K")

RETENTION_S = 24 * 3600
"""Sessions expired this long before the newest session started are forgotten: a proxy may run for weeks."""


class SessionTable:
    """Sessions by id, by fan and by what they showed; each index in the order sessions were last seen."""

    def __init__(self, retention_s: float = RETENTION_S, fan_key: FanKeySpec | None = None) -> None:
        self.retention_s = retention_s
        self.fan_key = fan_key
        self._by_id: dict[str, FanSession] = {}
        self._by_fan: dict[tuple[str, str], dict[str, FanSession]] = {}
        self._by_shown: dict[str, dict[str, FanSession]] = {}
        self._resale: Counter[str] = Counter()
        self._carts: dict[str, str] = {}
        self._carts_of: dict[str, list[str]] = {}
        self._seq = itertools.count(1)

    def fan_of(self, exchange: Exchange) -> Fan:
        """Who a call was made for, keyed as this table keys fans."""
        return fan_of(exchange, self.fan_key)

    def learn(self, sid: ResaleSid, event_id: str, fan: Fan, shown: ShownInventory) -> FanSession:
        """Record what a Top Picks response showed, and to whom.

        The same incarnation seen again keeps the first price shown for each offer, as Ticketmaster
        pins the price the session first saw; a new start time is a new incarnation with new prices
        (the tickets it showed before still count as shown). A session stays its first fan's: another
        fan presenting its id does not make it theirs.
        """
        known = self._forget(sid.session_id)
        owner = fan
        if known is not None and (
            known.fan.differs_from(fan) is not None or len(fan.keys) < len(known.fan.keys)
        ):
            owner = known.fan
        if known is not None and known.start_ms == sid.start_ms:
            for offer, price in shown.prices.items():
                known.shown.prices.setdefault(offer, price)
            prices = known.shown.prices
        else:
            prices = dict(shown.prices)
        before = known.shown if known is not None else ShownInventory()
        session = FanSession(
            session_id=sid.session_id,
            start_ms=sid.start_ms,
            expire_ms=sid.expire_ms,
            event_id=event_id,
            fan=owner,
            shown=ShownInventory(before.ids | shown.ids, prices, before.resale_ids | shown.resale_ids),
            seen_seq=next(self._seq),
        )
        self._file(session)
        self._evict_expired_before(sid.start_ms - int(self.retention_s * 1000))
        return session

    def _file(self, session: FanSession) -> None:
        self._by_id[session.session_id] = session
        self._by_fan.setdefault(session.fan.key, {})[session.session_id] = session
        for shown_id in session.shown.ids:
            self._by_shown.setdefault(shown_id, {})[session.session_id] = session
        self._resale.update(session.shown.resale_ids)

    def _forget(self, session_id: str) -> FanSession | None:
        session = self._by_id.pop(session_id, None)
        if session is None:
            return None
        _remove(self._by_fan, session.fan.key, session_id)
        for shown_id in session.shown.ids:
            _remove(self._by_shown, shown_id, session_id)
        self._resale.subtract(session.shown.resale_ids)
        for resale_id in session.shown.resale_ids:
            if self._resale[resale_id] <= 0:
                del self._resale[resale_id]
        return session

    def _evict_expired_before(self, horizon_ms: int) -> None:
        """Forget the least recently seen sessions while they expired before `horizon_ms` (amortised O(1)).

        The horizon is on Ticketmaster's clock (the newest session's start), never the proxy's.
        """
        while self._by_id:
            oldest = next(iter(self._by_id.values()))
            if oldest.expire_ms >= horizon_ms:
                return
            self._forget(oldest.session_id)
            for cart_id in self._carts_of.pop(oldest.session_id, ()):
                self._carts.pop(cart_id, None)

    def get(self, session_id: str) -> FanSession | None:
        return self._by_id.get(session_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[FanSession]:
        return iter(list(self._by_id.values()))

    def fans_by_kind(self) -> Counter[str]:
        """How many fans the sessions belong to, by the kind of key that tells them apart."""
        return Counter(kind for kind, _ in self._by_fan)

    # ---- what Ticketmaster said is resale --------------------------------------------------------

    def is_resale(self, ticket_or_offer: str) -> bool:
        """A resale listing id, or an offer or ticket id that a known Top Picks response showed as resale."""
        return is_resale_ticket(ticket_or_offer) or ticket_or_offer in self._resale

    def any_resale(self, ids: Iterable[str]) -> bool:
        return any(self.is_resale(i) for i in ids)

    # ---- which sessions --------------------------------------------------------------------------

    def showing(self, ids: Iterable[str]) -> list[FanSession]:
        """The sessions whose Top Picks showed any of these ids, newest first."""
        found = {s.session_id: s for i in ids for s in self._by_shown.get(i, {}).values()}
        return sorted(found.values(), key=lambda s: s.seen_seq, reverse=True)

    def of_fan(self, fan: Fan) -> Iterator[FanSession]:
        """This fan's sessions, newest first: filed under any of its keys and not another fan's."""
        lists = [reversed(self._by_fan.get(key, {}).values()) for key in fan.all_keys()]
        merged = heapq.merge(*lists, key=lambda s: -s.seen_seq)
        return (s for s in merged if s.fan.differs_from(fan) is None)

    def bind_cart(self, cart_id: str, session_id: str) -> None:
        """Remember the session a cart was reserved under, for the cart's later calls."""
        if session_id in self._by_id:
            self._carts[cart_id] = session_id
            self._carts_of.setdefault(session_id, []).append(cart_id)

    def cart_session(self, cart_id: str) -> FanSession | None:
        session_id = self._carts.get(cart_id)
        return self._by_id.get(session_id) if session_id is not None else None

    def shown_price(self, fan: Fan, ids: list[str]) -> float | None:
        """The price this fan's newest session that showed one of these ids showed for it."""
        for session in self.showing(ids):
            if session.fan.differs_from(fan) is None:
                return session.shown_price(ids)
        return None

    def choose(
        self, fan: Fan, event_id: str | None, wanted: list[str], cart_id: str | None, when: float
    ) -> SessionChoice:
        """The session to inject into a cart call of this fan, or why there is no sure one.

        A cart's later calls get the session its reserve carried; a reserve gets this fan's newest
        session whose Top Picks showed a ticket it asks for. Sessions known only by the client address
        cannot be told apart: when several of them showed the ticket the choice is ambiguous and nothing
        is chosen. Without a sure session, the fan's newest for the event (else any unkeyed session) is
        a guess, and says why.
        """
        bound = self.cart_session(cart_id) if cart_id else None
        if bound is not None and not bound.is_expired(when):
            return SessionChoice(bound, why="the session its reserve carried")
        if wanted:
            showed = [
                s for s in self.showing(wanted) if not s.is_expired(when) and not s.fan.differs_from(fan)
            ]
            keyed = [s for s in showed if s.fan.kind != CLIENT]
            if keyed or len(showed) == 1:
                return SessionChoice((keyed or showed)[0], why="this fan's Top Picks showed the ticket")
            if showed:
                return SessionChoice(None, why=_ambiguous(showed, fan), ambiguous=tuple(showed))
            why = f"no unexpired session of this fan ({fan.kind}) showed {_ids(wanted)}"
        else:
            why = f"no unexpired session of this fan ({fan.kind}) for event {event_id}"
        mine = _same_event_first([s for s in self.of_fan(fan) if not s.is_expired(when)], event_id)
        if mine is not None and not wanted and mine.event_id == event_id:
            return SessionChoice(mine, why="this fan's newest session for the event")
        if mine is not None:
            return SessionChoice(mine, guessed=True, why=f"{why}: guessed this fan's newest session")
        unkeyed = [
            s for s in reversed(self._by_id.values()) if s.fan.kind == CLIENT and not s.is_expired(when)
        ]
        anyone = _same_event_first(unkeyed, event_id)
        if anyone is not None:
            return SessionChoice(
                anyone, guessed=True, why=f"{why}: guessed the newest session from {anyone.fan.client}"
            )
        return SessionChoice(None, why=why)


def _remove(index: dict[K, dict[str, FanSession]], key: K, session_id: str) -> None:
    sessions = index.get(key)
    if sessions is not None:
        sessions.pop(session_id, None)
        if not sessions:
            del index[key]


def _same_event_first(sessions: list[FanSession], event_id: str | None) -> FanSession | None:
    return next((s for s in sessions if s.event_id == event_id), sessions[0] if sessions else None)


def _ids(ids: list[str]) -> str:
    return ", ".join(i[:48] for i in ids)


def _ambiguous(sessions: list[FanSession], fan: Fan) -> str:
    return (
        f"{len(sessions)} sessions known only by the client address {fan.client} showed the ticket "
        f"({', '.join(s.session_id for s in sessions)}) and nothing tells their fans apart: "
        "send the member's bearer token or set a fan key (--fan-key header:NAME)"
    )
