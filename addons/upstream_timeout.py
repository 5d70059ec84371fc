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


class UpstreamTimeout:
    def __init__(self) -> None:
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def load(self, loader: Any) -> None:
        loader.add_option(
            "tm_upstream_timeout",
            float,
            30.0,
            "Seconds to wait for the upstream's response before answering 502 (0 waits forever).",
        )

    def request(self, flow: http.HTTPFlow) -> None:
        timeout = ctx.options.tm_upstream_timeout
        if timeout > 0 and flow.response is None:
            loop = asyncio.get_running_loop()
            self._timers[flow.id] = loop.call_later(timeout, self._expire, flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow)

    def _cancel(self, flow: http.HTTPFlow) -> None:
        timer = self._timers.pop(flow.id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, flow: http.HTTPFlow) -> None:
        self._timers.pop(flow.id, None)
        if flow.response is not None or flow.error is not None:
            return
        logger.warning(f"{TIMEOUT_REASON} ({ctx.options.tm_upstream_timeout:g}s): {flow.request.url}")
        server = ctx.master.addons.get("proxyserver")
        for handler in list(server.connections.values()):
            if handler.client.id != flow.client_conn.id:
                continue
            io = handler.transports.get(flow.server_conn)
            if io is not None and io.handler is not None:
                io.handler.cancel(TIMEOUT_REASON)
