"""How resale prices move: deterministically with sandbox time, and on explicit reprices.

The current face value of a listing is

    base_face * drift(seed, ticket id, bucket) * factor          (or a fixed face value, see below)

where `bucket = floor((now - origin) / interval)`, `origin` is when the sandbox (or its last reset)
started on the sandbox clock, and `drift` is a hash-derived multiplier in [0.85, 1.25]. The same seed
therefore shows the same prices at the same sandbox age, and advancing the clock by `interval`
moves them. `interval <= 0` switches time drift off. Explicit reprices either multiply `factor`
(all listings of an event, or one) or pin a listing's all-in price, which later factors scale.
A listing's fees never change, so the all-in price moves with the face value.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from proxy.sandbox.catalog import Listing, PriceBreakdown

DEFAULT_REPRICE_INTERVAL = 900.0
_DRIFT_STEPS = 41


@dataclass
class _Adjustment:
    factor: float = 1.0
    fixed_face: float | None = None


class ResalePricer:
    """Current resale prices; not thread-safe on its own (the sandbox state holds the lock)."""

    def __init__(self, seed: int, origin: float, interval: float = DEFAULT_REPRICE_INTERVAL) -> None:
        self._seed = seed
        self._origin = origin
        self._interval = interval
        self._adjustments: dict[str, _Adjustment] = {}

    def price(self, listing: Listing, now: float) -> PriceBreakdown:
        return PriceBreakdown(self._face_value(listing, now), listing.service, listing.facility)

    def scale(self, listing: Listing, factor: float) -> None:
        adjustment = self._adjustments.setdefault(listing.ticket_id, _Adjustment())
        if adjustment.fixed_face is not None:
            adjustment.fixed_face = round(adjustment.fixed_face * factor, 2)
        else:
            adjustment.factor *= factor

    def set_total(self, listing: Listing, total: float) -> None:
        """Pin the all-in per-ticket price; the face value is what remains after the fixed fees."""
        face = round(total - listing.service - listing.facility, 2)
        if face <= 0:
            raise ValueError(f"price {total} does not cover the listing's fees")
        self._adjustments[listing.ticket_id] = _Adjustment(fixed_face=face)

    def _face_value(self, listing: Listing, now: float) -> float:
        adjustment = self._adjustments.get(listing.ticket_id, _Adjustment())
        if adjustment.fixed_face is not None:
            return adjustment.fixed_face
        drift = self._drift(listing.ticket_id, self._bucket(now))
        return round(listing.base_face * drift * adjustment.factor, 2)

    def _bucket(self, now: float) -> int:
        if self._interval <= 0:
            return 0
        return max(0, math.floor((now - self._origin) / self._interval))

    def _drift(self, ticket_id: str, bucket: int) -> float:
        digest = hashlib.sha256(f"{self._seed}:{ticket_id}:{bucket}".encode()).digest()
        step = int.from_bytes(digest[:8], "big") % _DRIFT_STEPS
        return 0.85 + step / 100
