"""Fan sessions as the proxy learns them from Top Picks responses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .ticketmaster import ResaleSid


@dataclass
class FanSession:
    """One incarnation of a resale session id: a renewal after expiry replaces it."""

    session_id: str
    start_ms: int
    expire_ms: int
    event_id: str
    client: str
    seen_at: float
    shown_prices: dict[str, float] = field(default_factory=dict)

    def is_expired(self, when: float) -> bool:
        """Expired at epoch second `when` (Ticketmaster's times are epoch ms)."""
        return when * 1000 >= self.expire_ms

    @property
    def duration_ms(self) -> int:
        return self.expire_ms - self.start_ms


class SessionTable:
    """Sessions by id, in the order they were seen, so 'newest for this client' is cheap."""

    def __init__(self) -> None:
        self._by_id: dict[str, FanSession] = {}

    def learn(
        self, sid: ResaleSid, event_id: str, client: str, seen_at: float, prices: dict[str, float]
    ) -> FanSession:
        """Record what a Top Picks response showed.

        The same incarnation seen again keeps the first price shown for each offer, as Ticketmaster
        pins the price the session first saw; a new start time is a new incarnation with new prices.
        """
        known = self._by_id.get(sid.session_id)
        if known is not None and known.start_ms == sid.start_ms:
            for offer, price in prices.items():
                known.shown_prices.setdefault(offer, price)
            known.expire_ms = sid.expire_ms
            known.client = client or known.client
            self._by_id.pop(sid.session_id)
            self._by_id[sid.session_id] = known
            return known
        self._by_id.pop(sid.session_id, None)
        session = FanSession(
            session_id=sid.session_id,
            start_ms=sid.start_ms,
            expire_ms=sid.expire_ms,
            event_id=event_id,
            client=client,
            seen_at=seen_at,
            shown_prices=dict(prices),
        )
        self._by_id[sid.session_id] = session
        return session

    def get(self, session_id: str) -> FanSession | None:
        return self._by_id.get(session_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[FanSession]:
        return iter(list(self._by_id.values()))

    def newest_valid(self, client: str, event_id: str | None, when: float) -> FanSession | None:
        """The session to inject: this client's newest unexpired one (same event preferred), else anyone's."""
        fallback: FanSession | None = None
        client_any: FanSession | None = None
        for session in reversed(self._by_id.values()):
            if session.is_expired(when):
                continue
            if session.client == client:
                if event_id is None or session.event_id == event_id:
                    return session
                client_any = client_any or session
            fallback = fallback or session
        return client_any or fallback

    def shown_price(self, client: str, ticket_or_offer: str) -> tuple[FanSession, float] | None:
        """The newest session of this client that showed a price for this ticket or offer."""
        for session in reversed(self._by_id.values()):
            if session.client == client and ticket_or_offer in session.shown_prices:
                return session, session.shown_prices[ticket_or_offer]
        return None
