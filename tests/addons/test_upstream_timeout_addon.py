"""The upstream timeout's one timer, through the addon's hooks."""

from __future__ import annotations

import asyncio
import logging

from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from addons.upstream_timeout import TIMEOUT_REASON, UpstreamTimeout


class Expiries(logging.Handler):
    """The timeout's warnings as they are logged, and an event for the first."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.first = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if TIMEOUT_REASON in record.getMessage():
            self.lines.append(record.getMessage())
            self.first.set()


def test_a_flow_started_after_the_timeout_was_lowered_expires_on_the_lowered_one() -> None:
    async def scenario() -> list[str]:
        addon, expiries = UpstreamTimeout(), Expiries()
        logger = logging.getLogger("addons.upstream_timeout")
        logger.addHandler(expiries)
        try:
            with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
                tctx.configure(addon, tm_upstream_timeout=30)
                slow = tflow.tflow()
                slow.request.path = "/started-under-30s"
                addon.request(slow)
                tctx.configure(addon, tm_upstream_timeout=0.05)
                quick = tflow.tflow()
                quick.request.path = "/started-under-50ms"
                addon.request(quick)
                await asyncio.wait_for(expiries.first.wait(), timeout=10)  # not the 30 s of the first
                addon.done()
        finally:
            logger.removeHandler(expiries)
        return expiries.lines

    lines = asyncio.run(scenario())
    assert len(lines) == 1
    assert "/started-under-50ms" in lines[0]
