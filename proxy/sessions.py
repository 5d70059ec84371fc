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
    shown_prices: dict[str, float] = field(default_factory=dict)

    def is_expired(self, when: float) -> bool:
        """Expired at epoch second `when` (Ticketmaster's times are epoch ms)."""
        return when * 1000 >= self.expire_ms


RETENTION_S = 24 * 3600
"""Sessions expired this long before the newest session started are forgotten: a proxy may run for weeks."""


class SessionTable:
    """Sessions by id and by client, each in the order they were last seen, so lookups start at the newest."""

    def __init__(self, retention_s: float = RETENTION_S) -> None:
        self.retention_s = retention_s
        self._by_id: dict[str, FanSession] = {}
        self._by_client: dict[str, dict[str, FanSession]] = {}

    def learn(self, sid: ResaleSid, event_id: str, client: str, prices: dict[str, float]) -> FanSession:
        """Record what a Top Picks response showed.

        The same incarnation seen again keeps the first price shown for each offer, as Ticketmaster
        pins the price the session first saw; a new start time is a new incarnation with new prices.
        """
        known = self._forget(sid.session_id)
        if known is not None and known.start_ms == sid.start_ms:
            for offer, price in prices.items():
                known.shown_prices.setdefault(offer, price)
            known.expire_ms = sid.expire_ms
            known.client = client or known.client
            session = known
        else:
            session = FanSession(
                session_id=sid.session_id,
                start_ms=sid.start_ms,
                expire_ms=sid.expire_ms,
                event_id=event_id,
                client=client,
                shown_prices=dict(prices),
            )
        self._by_id[session.session_id] = session
        self._by_client.setdefault(session.client, {})[session.session_id] = session
        self._evict_expired_before(sid.start_ms - int(self.retention_s * 1000))
        return session

    def _forget(self, session_id: str) -> FanSession | None:
        session = self._by_id.pop(session_id, None)
        if session is not None:
            of_client = self._by_client[session.client]
            del of_client[session_id]
            if not of_client:
                del self._by_client[session.client]
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

    def get(self, session_id: str) -> FanSession | None:
        return self._by_id.get(session_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[FanSession]:
        return iter(list(self._by_id.values()))

    def newest_valid(self, client: str, event_id: str | None, when: float) -> FanSession | None:
        """The session to inject: this client's newest unexpired one (same event preferred), else anyone's."""
        client_any: FanSession | None = None
        for session in reversed(self._by_client.get(client, {}).values()):
            if session.is_expired(when):
                continue
            if event_id is None or session.event_id == event_id:
                return session
            client_any = client_any or session
        if client_any is not None:
            return client_any
        return next((s for s in reversed(self._by_id.values()) if not s.is_expired(when)), None)

    def shown_price(self, client: str, ticket_or_offer: str) -> float | None:
        """The price this client's newest session that showed this ticket or offer showed for it."""
        for session in reversed(self._by_client.get(client, {}).values()):
            if ticket_or_offer in session.shown_prices:
                return session.shown_prices[ticket_or_offer]
        return None
