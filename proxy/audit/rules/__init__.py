"""The audit rules, one small class each. `all_rules()` gives a fresh, stateful set for one engine."""

from __future__ import annotations

from ..engine import Rule
from .fan_session import PriceMismatch, SessionExpired, SidExpired, SidMalformed, SidMissing, SidUnknown

RULE_CLASSES: list[type[Rule]] = [
    SidMissing,
    SidMalformed,
    SidUnknown,
    SidExpired,
    SessionExpired,
    PriceMismatch,
]

SID_RULES = frozenset({"sid-missing", "sid-malformed", "sid-unknown", "sid-expired"})


def all_rules(live: bool = False, disabled: frozenset[str] = frozenset()) -> list[Rule]:
    return [cls() for cls in RULE_CLASSES if cls.id not in disabled]


def rule_ids() -> list[str]:
    return [cls.id for cls in RULE_CLASSES]
