"""Judging and recording a proxy's calls, in the order the proxy saw them, away from the proxy.

mitmproxy forwards every call on one event loop, on one core. The rules (which must see every Top
Picks answer and every cart call) and the recorder (redaction, rendering, the write) cost a third to a
half of that loop's CPU. When their verdicts need not change the traffic (the `validate` and `off`
policies: nothing injected, nothing blocked), the proxy hands each call to a `Judge` in another process
(addons/judge_process.py) and goes on forwarding. The `Judge` does what the fan-session and recorder
addons do in process, in the same order: the request, then its end, then its recording with the
findings it earned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .cassette import CassetteWriter, RedactionRules
from .exchange import Exchange
from .fan_session import FanSessionGuard, SidPolicy, TrafficSummary
from .fans import FanKeySpec
from .findings import Finding
from .recording import close_recording, open_recording, record_exchange

logger = logging.getLogger(__name__)

HANDED_OFF_POLICIES = (SidPolicy.VALIDATE, SidPolicy.OFF)
"""The policies under which no verdict changes a call, so that judging can happen elsewhere."""


@dataclass(frozen=True)
class JudgeSettings:
    """What the options say: the policy, how fans are told apart, and where (and how) to record."""

    policy: SidPolicy = SidPolicy.VALIDATE
    fan_key: FanKeySpec | None = None
    record_path: str = ""
    record_as: str = ""
    redaction: RedactionRules = field(default_factory=RedactionRules)


@dataclass
class JudgeSummary:
    traffic: TrafficSummary
    recorded: int = 0
    refused: int = 0


class Judge:
    """The live rules and the cassette writer, fed each call's request and end as they happened."""

    def __init__(self) -> None:
        self.guard = FanSessionGuard()
        self.settings = JudgeSettings()
        self.writer: CassetteWriter | None = None
        self.recorded = 0
        self.refused = 0
        self._findings: dict[str, list[Finding]] = {}

    def configure(self, settings: JudgeSettings) -> list[str]:
        """Apply new settings; the writer's warnings. Raises ValueError saying why the settings cannot be
        used (a cassette that cannot be opened: then nothing is recorded until settings that work)."""
        if settings.policy not in HANDED_OFF_POLICIES:
            raise ValueError(f"the {settings.policy} policy changes calls: it is judged in the proxy")
        if settings.policy is not self.guard.policy:
            self.guard.set_policy(settings.policy)
        self.guard.set_fan_key(settings.fan_key)
        reopen = (settings.record_path, settings.redaction) != (
            self.settings.record_path,
            self.settings.redaction,
        )
        if reopen:
            self.close()
            self.settings = replace(self.settings, record_path="")  # until the new cassette opens
            if settings.record_path:
                self.writer = open_recording(settings.record_path, settings.redaction)
        self.settings = settings
        return list(self.writer.warnings) if reopen and self.writer is not None else []

    def request(self, exchange: Exchange) -> None:
        findings = self.guard.request(exchange).findings
        log_findings(findings)
        if findings:
            self._findings[exchange.id] = findings

    def end(self, exchange: Exchange, judged: bool, record: bool) -> None:
        """The call's end: the rules see its answer (or its failure), then it is recorded if asked."""
        findings = self._findings.pop(exchange.id, [])
        if judged:
            ended = self.guard.response(exchange)
            log_findings(ended)
            findings += ended
        if record and self.writer is not None and exchange.response is not None:
            refusal = record_exchange(self.writer, exchange, findings, self.settings.record_as)
            if refusal is None:
                self.recorded += 1
            else:
                self.refused += 1
                logger.error(refusal)

    def finish(self) -> JudgeSummary:
        """The end of the traffic: the rules' last findings, the writer closed, the summary."""
        log_findings(self.guard.finish())
        self.close()
        return JudgeSummary(self.guard.summary(), self.recorded, self.refused)

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            close_recording(writer)


def log_findings(findings: list[Finding]) -> None:
    for finding in findings:
        logger.warning(finding.summary_line())
