"""Fan sessions: the three documented X-TM-SESSION-SID rules, and the prices each session saw.

Rules for a Top Picks call (documented):
  1. no header: a new session with a new uuid4;
  2. a known, unexpired id: that same session (same id, start and expiry);
  3. a known, expired id: a new session WITH THAT SAME ID, fresh start and expiry, and the caller
     adds SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED to the response.
Sandbox choices (UNCONFIRMED): a blank header counts as absent; a well-formed uuid the sandbox
never issued (e.g. from before a reset) gets a new session with a NEW uuid, as if no header had been
sent; a malformed value is refused with a 400 (INVALID_INPUT).
A session is expired once `now >= sessionExpireTime`; `sessionExpireTime = sessionStartTime + ttl`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from proxy.clock import to_epoch_ms
from proxy.sandbox.catalog import PriceBreakdown
from proxy.sandbox.errors import invalid_input
from proxy.ticketmaster import SESSION_HEADER, looks_like_session_id


@dataclass
class FanSession:
    session_id: str
    start_ms: int
    expire_ms: int
    seen: dict[str, PriceBreakdown] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        return to_epoch_ms(now) >= self.expire_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "resaleSid": {
                "sessionId": self.session_id,
                "sessionStartTime": self.start_ms,
                "sessionExpireTime": self.expire_ms,
            }
        }

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "sessionStartTime": self.start_ms,
            "sessionExpireTime": self.expire_ms,
            "expired": self.expired(now),
            "seen": {ticket: price.total for ticket, price in self.seen.items()},
        }


class SessionTable:
    """Sessions by id; not thread-safe on its own (the sandbox state holds the lock)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: dict[str, FanSession] = {}

    def for_top_picks(self, header: str | None, now: float) -> tuple[FanSession, bool]:
        """The session a Top Picks call uses, and whether it was renewed after expiring."""
        sid = (header or "").strip()
        if not sid:
            return self._create(str(uuid.uuid4()), now), False
        if not looks_like_session_id(sid):
            raise invalid_input(f"malformed {SESSION_HEADER} header")
        session = self._sessions.get(sid)
        if session is None:
            return self._create(str(uuid.uuid4()), now), False
        if session.expired(now):
            return self._create(sid, now), True
        return session, False

    def valid(self, header: str | None, now: float) -> FanSession | None:
        """The unexpired session a cart call names, or None (absent, unknown, malformed, expired)."""
        session = self._sessions.get((header or "").strip())
        if session is None or session.expired(now):
            return None
        return session

    def all(self) -> list[FanSession]:
        return list(self._sessions.values())

    def _create(self, sid: str, now: float) -> FanSession:
        start = to_epoch_ms(now)
        session = FanSession(sid, start, start + to_epoch_ms(self.ttl))
        self._sessions[sid] = session
        return session
