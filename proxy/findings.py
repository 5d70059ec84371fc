"""Findings: what the rules say about traffic, live or offline."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    INFO = 10
    WARNING = 20
    ERROR = 30

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Severity:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {name!r}: use info, warning or error") from None


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one exchange."""

    rule: str
    severity: Severity
    message: str
    exchange_id: str
    method: str = ""
    url: str = ""
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def summary_line(self) -> str:
        """One concise log line that names the rule."""
        return f"[{self.rule}] {self.severity}: {self.message} ({self.method} {self.url})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "message": self.message,
            "interaction": self.exchange_id,
            "request": {"method": self.method, "uri": self.url},
            "evidence": self.evidence,
        }
