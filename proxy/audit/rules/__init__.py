"""The audit rules, one small class each. `all_rules()` gives a fresh, stateful set for one engine.

A rule class may set `recording_only = True`: it judges recordings (offline) and is left out of
live auditing, where the traffic legitimately carries what it looks for (e.g. the apikey).
Each rule is documented in docs/rules.md.
"""

from __future__ import annotations

from ..engine import Rule
from .cart import AbandonedCart, CommitNotPut, ConcurrentCartCalls, PollingTooFast
from .fan_session import (
    PriceMismatch,
    SessionExpired,
    SidExpired,
    SidMalformed,
    SidMismatch,
    SidMissing,
    SidUnknown,
)
from .quota import RateLimitRetry
from .reactions import NoBackoffAfter503, PollingAbandoned, StalePriceAfterExpiry
from .security import ExpiredAccessToken, SecretInRecording, UnencryptedCard

RULE_CLASSES: list[type[Rule]] = [
    SidMissing,
    SidMalformed,
    SidUnknown,
    SidExpired,
    SidMismatch,
    SessionExpired,
    PriceMismatch,
    ConcurrentCartCalls,
    AbandonedCart,
    CommitNotPut,
    PollingTooFast,
    RateLimitRetry,
    PollingAbandoned,
    NoBackoffAfter503,
    StalePriceAfterExpiry,
    UnencryptedCard,
    ExpiredAccessToken,
    SecretInRecording,
]

SID_RULES = frozenset({"sid-missing", "sid-malformed", "sid-unknown", "sid-expired", "sid-mismatch"})


def all_rules(disabled: frozenset[str] = frozenset(), live: bool = False) -> list[Rule]:
    """A fresh set of rules for one engine: offline by default; `live=True` for the proxy."""
    return [cls() for cls in RULE_CLASSES if cls.id not in disabled and not (live and cls.recording_only)]


def rule_ids(live: bool = False) -> list[str]:
    return [cls.id for cls in RULE_CLASSES if not (live and cls.recording_only)]
