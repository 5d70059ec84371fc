"""mitmproxy addon: the X-TM-SESSION-SID policy and the live audit rules.

    mitmdump -s addons/fan_session.py --set tm_sid=inject

Findings mark the flow and comment it (visible in mitmweb), are logged as one line each, and are
kept in `flow.metadata` for the recorder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.convert import exchange_of, make_response, path_of, refresh_request
from proxy.fan_session import FanSessionGuard, SidPolicy
from proxy.fans import FanKeySpec, FanKeySpecError
from proxy.findings import Finding
from proxy.ticketmaster import SESSION_HEADER

logger = logging.getLogger(__name__)

FINDINGS_KEY = "tmproxy.findings"
BLOCKED_KEY = "tmproxy.blocked"
ENDED_KEY = "tmproxy.ended"


class FanSession:
    def __init__(self) -> None:
        self.guard = FanSessionGuard()

    def load(self, loader: Any) -> None:
        add_fan_session_options(loader)

    def configure(self, updated: set[str]) -> None:
        if "tm_fan_key" in updated:
            self.guard.set_fan_key(fan_key_option())
        if "tm_sid" in updated and (policy := sid_policy_option()) is not self.guard.policy:
            self.guard.set_policy(policy)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        path = path_of(flow.request.path)
        if path is not None and self.guard.passes(flow.request.method, path):
            flow.metadata[ENDED_KEY] = True  # judged by no rule, neither now nor at its end
            return
        verdict = self.guard.request(exchange_of(flow))
        if verdict.injected_sid is not None:
            flow.request.headers[SESSION_HEADER] = verdict.injected_sid
            refresh_request(flow)
            logger.info(f"injected {SESSION_HEADER} {verdict.injected_sid} into {flow.request.path}")
        report(flow, verdict.findings)
        if verdict.block is not None:
            self._end(flow)  # before the proxy's own answer: the call never reached Ticketmaster
            flow.response = make_response(verdict.block)
            flow.metadata[BLOCKED_KEY] = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._end(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A call that failed (upstream down, client gone) still ends, or it would look in flight forever."""
        self._end(flow)

    def _end(self, flow: http.HTTPFlow) -> None:
        if not flow.metadata.get(ENDED_KEY):
            flow.metadata[ENDED_KEY] = True
            report(flow, self.guard.response(exchange_of(flow)))

    def restart(self) -> list[Finding]:
        """Start afresh, as a new proxy would (the session proxy's next test); returns every finding
        on the traffic seen so far, those its end brings included."""
        self.guard.finish()
        findings = list(self.guard.engine.findings)
        self.guard = FanSessionGuard(self.guard.policy, self.guard.engine.sessions.fan_key)
        return findings

    def done(self) -> None:
        for finding in self.guard.finish():
            logger.warning(finding.summary_line())


def add_fan_session_options(loader: Any) -> None:
    loader.add_option(
        "tm_sid",
        str,
        SidPolicy.VALIDATE.value,
        f"{SESSION_HEADER} policy on Partner API cart calls: inject, validate, enforce or off.",
        choices=[p.value for p in SidPolicy],
    )
    loader.add_option(
        "tm_fan_key",
        str,
        "",
        "How to tell fans behind one address apart when a call carries no bearer token: "
        "header:NAME or cookie:NAME (empty: by client address).",
    )


def sid_policy_option() -> SidPolicy:
    try:
        return SidPolicy(ctx.options.tm_sid)
    except ValueError:
        choices = ", ".join(p.value for p in SidPolicy)
        raise exceptions.OptionsError(
            f"tm_sid must be one of {choices}, not {ctx.options.tm_sid!r}"
        ) from None


def fan_key_option() -> FanKeySpec | None:
    try:
        return FanKeySpec.parse(ctx.options.tm_fan_key) if ctx.options.tm_fan_key else None
    except FanKeySpecError as exc:
        raise exceptions.OptionsError(f"tm_fan_key: {exc}") from None


def report(flow: http.HTTPFlow, findings: Sequence[Finding]) -> None:
    """Show findings where mitmproxy users look: a mark, a comment, a log line each."""
    if not findings:
        return
    flow.metadata.setdefault(FINDINGS_KEY, []).extend(findings)
    flow.marked = ":warning:"
    notes = [f"[{f.rule}] {f.message}" for f in findings]
    flow.comment = "\n".join(filter(None, [flow.comment, *notes]))
    for finding in findings:
        logger.warning(finding.summary_line())


addons = [FanSession()]
