"""mitmproxy addon: give up on an upstream that does not answer in time.

mitmproxy itself waits up to ten minutes on a silent server; a partner app wants a prompt 502
naming the cause. After `tm_upstream_timeout` seconds without a response the server connection is
closed, which mitmproxy turns into a 502 for the client, and the proxy serves on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import ctx, http

logger = logging.getLogger(__name__)

TIMEOUT_REASON = "upstream did not answer within tm_upstream_timeout"
CLOCK_SLACK_S = 0.001
"""asyncio may run a timer this early (its clock resolution): a flow due by then is due."""


class UpstreamTimeout:
    """One timer for all flows: with the same timeout for every flow, deadlines come in the order flows
    start, so the flows waiting on the upstream are kept in that order and the timer is set for the
    first. A response or error only forgets its flow (a timer per flow cost a heap push and a cancel).
    Only a timeout lowered while flows wait breaks the order: the next flow then puts it right."""

    def __init__(self) -> None:
        self._timeout = 30.0
        self._waiting: dict[str, tuple[float, http.HTTPFlow]] = {}  # by flow id, earliest deadline first
        self._timer: asyncio.TimerHandle | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "tm_upstream_timeout",
            float,
            30.0,
            "Seconds to wait for the upstream's response before answering 502 (0 waits forever).",
        )

    def configure(self, updated: set[str]) -> None:
        if "tm_upstream_timeout" not in updated:
            return
        self._timeout = ctx.options.tm_upstream_timeout  # read once: an option read copies its value

    def request(self, flow: http.HTTPFlow) -> None:
        if self._timeout > 0 and flow.response is None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            self._waiting.pop(flow.id, None)
            in_order = not self._waiting or next(reversed(self._waiting.values()))[0] <= deadline
            self._waiting[flow.id] = (deadline, flow)
            if not in_order:  # the timeout was lowered while flows waited: this one may be due first
                self._waiting = dict(sorted(self._waiting.items(), key=lambda item: item[1][0]))
                self._arm(loop)
            elif self._timer is None:
                self._arm(loop)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._waiting.pop(flow.id, None)

    def response(self, flow: http.HTTPFlow) -> None:
        self._waiting.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._waiting.pop(flow.id, None)

    def done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiting:
            deadline, _ = next(iter(self._waiting.values()))
            self._timer = loop.call_at(deadline, self._expire_due)

    def _expire_due(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + CLOCK_SLACK_S
        while self._waiting:
            flow_id, (deadline, flow) = next(iter(self._waiting.items()))
            if deadline > now:
                break
            del self._waiting[flow_id]
            self._expire(flow)
        self._arm(loop)

    def _expire(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None:
            return
        logger.warning(f"{TIMEOUT_REASON} ({self._timeout:g}s): {flow.request.url}")
        server = ctx.master.addons.get("proxyserver")
        for handler in list(server.connections.values()):
            if handler.client.id != flow.client_conn.id:
                continue
            io = handler.transports.get(flow.server_conn)
            if io is not None and io.handler is not None:
                io.handler.cancel(TIMEOUT_REASON)
