"""Injectable clocks, so that expiry and timing logic is testable without sleeping."""

from __future__ import annotations

import math
import threading
import time


class OffsetClock:
    """Wall-clock time shifted by an adjustable offset: the sandbox's clock, which tests move forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


def to_epoch_ms(seconds: float) -> int:
    """Milliseconds since the epoch, rounded down as Java's clock is: a time made "now" is never in
    the future of a clock read right after it (a replayed session would seem not yet started)."""
    return math.floor(seconds * 1000)
