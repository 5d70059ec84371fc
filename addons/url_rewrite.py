"""mitmproxy addon: in reverse mode, the upstream's absolute URLs come back pointing at the proxy.

    mitmdump -s addons/url_rewrite.py -s addons/fan_session.py -s addons/recorder.py \
        --mode reverse:http://127.0.0.1:9000

A 202's `polling_url` or a redirect's `Location` at the upstream's origin would send the partner app
around the proxy; the client gets them at the proxy's origin (scheme, host and port as it reached the
proxy), and the proxy's origin in its requests (JSON, Referer, Origin) goes back upstream as the
upstream's. The rewrite itself is `proxy.urlrewrite`.

Load it first. Its `request` then runs before the other addons see the request, and its `response`
takes the flow's `Exchange` before rewriting, so the rules and the recorder keep the upstream's
response while the client gets the rewritten one. Replayed responses are rewritten like live ones;
the proxy's own answers (replay misses, enforce blocks) are left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import connection, ctx, http
from mitmproxy.proxy.mode_specs import ReverseMode

from addons.convert import exchange_of, travelling_request, travelling_response, update_message
from addons.fan_session import BLOCKED_KEY
from addons.replayer import MISSED_KEY
from proxy.urlrewrite import (
    REQUEST_URL_HEADERS,
    RESPONSE_URL_HEADERS,
    Origin,
    rewrite_request,
    rewrite_response,
)

logger = logging.getLogger(__name__)


class UrlRewrite:
    def __init__(self) -> None:
        self.enabled = True
        self._known: dict[tuple[str, str, str, int], tuple[Origin, Origin]] = {}

    def load(self, loader: Any) -> None:
        loader.add_option(
            "tm_rewrite_urls",
            bool,
            True,
            "Reverse mode: absolute URLs at the upstream's origin in responses (polling_url, Location, "
            "Content-Location, JSON) point at the proxy, and the proxy's in requests back at the upstream.",
        )

    def configure(self, updated: set[str]) -> None:
        if "tm_rewrite_urls" in updated:
            self.enabled = ctx.options.tm_rewrite_urls  # read once: an option read copies its value

    def request(self, flow: http.HTTPFlow) -> None:
        origins = self._origins(flow)
        if origins is None or flow.response is not None:
            return
        upstream, proxy = origins
        if not may_move(flow.request, REQUEST_URL_HEADERS, proxy):
            return
        request = travelling_request(flow)
        moved = rewrite_request(request, proxy, upstream)
        if moved is not request:
            update_message(flow.request, moved)

    def response(self, flow: http.HTTPFlow) -> None:
        origins = self._origins(flow)
        if (
            origins is None
            or flow.response is None
            or flow.metadata.get(MISSED_KEY)
            or flow.metadata.get(BLOCKED_KEY)
        ):
            return
        upstream, proxy = origins
        if not may_move(flow.response, RESPONSE_URL_HEADERS, upstream):
            return
        response = travelling_response(flow.response)
        moved = rewrite_response(response, upstream, proxy)
        if moved is not response:
            exchange_of(flow)  # taken now: the rules and the recorder keep what the upstream sent
            update_message(flow.response, moved)
            logger.debug(f"pointed {upstream} URLs in the response to {flow.request.path} at {proxy}")

    def _origins(self, flow: http.HTTPFlow) -> tuple[Origin, Origin] | None:
        """The upstream's origin and the proxy's as this client reached it; None when not rewriting.

        Kept per connection and upstream for the connection's next requests (a keep-alive client
        sends many); forgotten when the client disconnects."""
        client = flow.client_conn
        if not self.enabled or not isinstance(client.proxy_mode, ReverseMode):
            return None
        key = (client.id, flow.request.scheme, flow.request.host, flow.request.port)
        known = self._known.get(key)
        if known is None:
            proxy = proxy_origin(client)
            if proxy is None:
                return None
            known = self._known[key] = (Origin.at(*key[1:]), proxy)
        return known

    def client_disconnected(self, client: connection.Client) -> None:
        for key in [key for key in self._known if key[0] == client.id]:
            del self._known[key]


_TELLING: dict[tuple[str, ...], frozenset[bytes]] = {}
"""The raw header names that may carry something to move, by the URL headers asked for (two sets)."""


def may_move(message: http.Message, url_headers: tuple[str, ...], source: Origin) -> bool:
    """Whether `proxy.urlrewrite` could find anything at `source` to move, told from the raw message
    without converting it: no URL header, and a body that is not UTF-8, or is ASCII naming neither the
    host nor a \\u escape, leave nothing to move (most answers: static files, JSON without URLs)."""
    telling = _TELLING.get(url_headers)
    if telling is None:
        telling = _TELLING[url_headers] = frozenset(
            {name.lower().encode() for name in url_headers} | {b"content-encoding"}
        )
    if any(name.lower() in telling for name, _ in message.headers.fields):
        return True
    body = message.raw_content
    if not body:
        return False
    if not body.isascii():
        return _is_utf8(body)  # only JSON text is rewritten: an image or a font never is
    if b"\\u" in body or not source.host.isascii():
        return True
    return source.host.encode() in body.lower()


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def proxy_origin(client: connection.Client) -> Origin | None:
    """The origin the client reached: https when it spoke TLS to the proxy, the server name it asked
    for (else the local address its connection came in on), and that port.

    mitmproxy has replaced the request's Host header with the upstream's before any hook runs, so
    the connection is what is left of how the client addressed the proxy."""
    if not client.sockname or not client.sockname[0]:
        return None
    host, port = client.sockname[0], client.sockname[1]
    scheme = "https" if client.tls_established else "http"
    return Origin.at(scheme, (client.sni if client.tls_established else None) or str(host), int(port))


addons = [UrlRewrite()]
