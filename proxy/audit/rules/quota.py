"""Quota rule: no retries before a 429's quota window resets.

Source: ticketmaster-api-notes.md (about 1200 calls/min; `Ratelimit-Expiry` in UTC ms; 429 over
quota) and the FAQ ("Check if your requests are within the quota limit").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...exchange import Exchange
from ...findings import Finding, Severity
from ...sessions import SessionTable
from ..engine import Rule
from ..partner_api import RATE_LIMIT_STATUS, quota_reset_at


@dataclass(frozen=True)
class _Block:
    until: float
    source: str
    limited_by: Exchange


class RateLimitRetry(Rule):
    """Per partner (the client host): the quota is the partner's apikey's, whatever the endpoint.

    The reset time is `Ratelimit-Expiry` (UTC epoch ms), else `Retry-After`, else 60 s after the
    429 (see `quota_reset_at`). Only requests started after the 429 arrived count as retries.
    """

    id = "rate-limit-retry"
    severity = Severity.WARNING
    summary = "A request was sent after a 429 (quota exceeded) before the quota window reset."

    def __init__(self) -> None:
        self._blocked: dict[str, _Block] = {}

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        block = self._blocked.get(exchange.client_host)
        if block is None:
            return
        if exchange.started_at >= block.until:
            del self._blocked[exchange.client_host]
            return
        yield self.finding(
            exchange,
            f"sent {block.until - exchange.started_at:.1f}s before the quota reset announced by a 429 "
            f"({block.source}): wait for the reset instead of retrying",
            quota_reset_at=block.until,
            reset_source=block.source,
            rate_limited=block.limited_by.id,
        )

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        if response is not None and response.status == RATE_LIMIT_STATUS:
            received_at = exchange.finished_at
            until, source = quota_reset_at(response, received_at)
            self._blocked[exchange.client_host] = _Block(until=until, source=source, limited_by=exchange)
        return ()
