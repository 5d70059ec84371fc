"""Per-API-key call quota over fixed windows on the sandbox clock, with Apigee's response headers.

A key's window opens with its first call and lasts `window` seconds; `Ratelimit-Expiry` is the
window's end in UTC epoch ms. Calls beyond the limit within a window are refused with HTTP 429.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.clock import to_epoch_ms

DEFAULT_QUOTA = 1200
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class QuotaStatus:
    allowed: int
    available: int
    expiry_ms: int
    exceeded: bool

    def headers(self) -> dict[str, str]:
        return {
            "Ratelimit-Quota-Allowed": str(self.allowed),
            "Ratelimit-Quota-Available": str(self.available),
            "Ratelimit-Expiry": str(self.expiry_ms),
        }


def quota_fault(api_key: str) -> dict[str, Any]:
    """The documented 429 body."""
    return {
        "fault": {
            "faultstring": f"Rate limit quota violation. Quota limit exceeded. Identifier : {api_key}",
            "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
        }
    }


@dataclass
class _Window:
    start: float
    used: int = 0


class QuotaTracker:
    """Not thread-safe on its own (the sandbox state holds the lock)."""

    def __init__(self, limit: int = DEFAULT_QUOTA, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self._window = window
        self._windows: dict[str, _Window] = {}

    def hit(self, api_key: str, now: float) -> QuotaStatus:
        """Count one call by `api_key` and say whether it is within the quota."""
        window = self._windows.get(api_key)
        if window is None or now >= window.start + self._window:
            window = self._windows[api_key] = _Window(start=now)
        window.used += 1
        return QuotaStatus(
            allowed=self.limit,
            available=max(0, self.limit - window.used),
            expiry_ms=to_epoch_ms(window.start + self._window),
            exceeded=window.used > self.limit,
        )

    def set_limit(self, limit: int) -> None:
        """A new limit starts every key's window afresh, so tests can count from zero."""
        self.limit = limit
        self._windows.clear()

    def summary(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "keys": {
                key: {"used": w.used, "expiry_ms": to_epoch_ms(w.start + self._window)}
                for key, w in self._windows.items()
            },
        }
