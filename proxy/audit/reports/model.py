"""The report model that every format renders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...exchange import Exchange
from ...findings import Finding, Severity
from ..partner_api import injected_fault


@dataclass
class AuditReport:
    """What one audit saw and found; `rules` are the ids of the rules that ran, in registry order."""

    exchanges: Sequence[Exchange]
    findings: list[Finding]
    rules: list[str] = field(default_factory=list)

    def by_rule(self) -> dict[str, list[Finding]]:
        """Findings grouped by rule: rules that ran first (in order), then any others."""
        groups: dict[str, list[Finding]] = {rule: [] for rule in self.rules}
        for finding in self.findings:
            groups.setdefault(finding.rule, []).append(finding)
        return groups

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def injected(self) -> Counter[str]:
        """Answers tmproxy injected (`--fault`) rather than Ticketmaster gave, by fault."""
        return Counter(kind for ex in self.exchanges if (kind := injected_fault(ex.response)) is not None)

    def summary(self) -> dict[str, object]:
        return {
            "interactions": len(self.exchanges),
            "injected": dict(sorted(self.injected().items())),
            "findings": len(self.findings),
            "by_rule": {rule: len(found) for rule, found in self.by_rule().items()},
            "by_severity": {str(s): self.count(s) for s in sorted(Severity, reverse=True)},
        }

    def headline(self) -> str:
        """One line: how much was audited and what was found."""
        counts = [_plural(self.count(s), str(s)) for s in sorted(Severity, reverse=True) if self.count(s)]
        found = _plural(len(self.findings), "finding") + (f" ({', '.join(counts)})" if counts else "")
        injected = self.injected().total()
        by_tmproxy = f" ({injected} answered by tmproxy --fault, not Ticketmaster)" if injected else ""
        return f"{_plural(len(self.exchanges), 'interaction')}{by_tmproxy} audited, {found}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def visible(value: object) -> str:
    """Text safe to show anywhere: control and other non-printable characters become escapes.

    Recorded traffic is untrusted: a URL with an ANSI sequence must not drive the reader's
    terminal, and characters that XML forbids must not break a JUnit file.
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
