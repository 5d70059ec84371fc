"""mitmproxy addon: the session proxy sends each test's requests to that test's upstream.

The pytest plugin's one proxy serves test after test, each with its own cassette and upstream, while
mitmproxy's reverse mode is fixed when the proxy starts (changing it restarts the server on a new
port). Loaded first, this addon points every request at `tm_route_to` before any other addon sees
it, so the replayer matches, the recorder records and the URL rewrite works as in `tmproxy replay`
or `tmproxy record` of that upstream. It also notes the enforce blocks, which a test may fail on.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.fan_session import BLOCKED_KEY
from proxy.fan_session import BLOCKED_HEADER
from proxy.urlrewrite import Origin

NO_TEST = b"tmproxy session proxy: no test has selected a cassette\n"


class SessionRouter:
    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.blocks: list[str] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            "tm_route_to",
            str,
            "",
            "Send every request to this origin (scheme://host[:port]); empty: answer 503 to all.",
        )

    def configure(self, updated: set[str]) -> None:
        if "tm_route_to" not in updated:
            return
        value = ctx.options.tm_route_to
        origin = Origin.of(value) if value else None
        if value and origin is None:
            raise exceptions.OptionsError(f"tm_route_to: {value!r} is not an http(s) origin")
        self.origin = origin

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        if self.origin is None:
            flow.response = http.Response.make(503, NO_TEST, {"Content-Type": "text/plain"})
            return
        flow.request.scheme = self.origin.scheme
        flow.request.host = self.origin.host
        flow.request.port = self.origin.port

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(BLOCKED_KEY) and flow.response is not None:
            rule = flow.response.headers.get(BLOCKED_HEADER, "")
            self.blocks.append(f"{flow.request.method} {flow.request.path} blocked ({rule})")

    def take_blocks(self) -> list[str]:
        """The blocks since the last call (one test's)."""
        blocks, self.blocks = self.blocks, []
        return blocks
