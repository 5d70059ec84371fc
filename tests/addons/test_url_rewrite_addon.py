"""The URL-rewrite addon through mitmproxy's hooks (taddons/tflow), in the order `tmproxy` loads it:
first, before the fan-session rules, the replayer and the recorder."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from addons.convert import exchange_of
from addons.fan_session import FINDINGS_KEY, FanSession
from addons.recorder import Recorder
from addons.replayer import Replayer
from addons.url_rewrite import UrlRewrite
from proxy.cassette import CassetteWriter, load_cassette
from proxy.exchange import Exchange, Request, Response

UPSTREAM = "http://127.0.0.1:9000"
PROXY = "http://127.0.0.1:8080"
RESERVE = "/partners/v1/events/2000527EE48A9334/cart?apikey=k"
POLL = "/partners/v1/polling/cart/POST/t0k3n?apikey=k&cart_id=c1"


def reverse_flow(
    path: str, method: str = "POST", mode: str = f"reverse:{UPSTREAM}", headers=()
) -> http.HTTPFlow:
    """A flow as mitmproxy hands it to addons in reverse mode: the request already aimed at the upstream,
    the client's connection on the proxy's port."""
    request = tutils.treq(
        scheme=b"http",
        host="127.0.0.1",
        port=9000,
        method=method.encode(),
        path=path.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in headers]),
        content=b"",
    )
    flow = tflow.tflow(req=request)
    flow.client_conn.proxy_mode = ProxyMode.parse(mode)
    flow.client_conn.sockname = ("127.0.0.1", 8080)
    flow.client_conn.timestamp_tls_setup = None
    flow.client_conn.sni = None
    return flow


def accepted(flow: http.HTTPFlow, encoding: str | None = None) -> None:
    """The upstream's 202: come back to its polling_url in one second."""
    body = json.dumps({"polling_url": UPSTREAM + POLL, "wait": 1, "cart_id": "c1"}).encode()
    flow.response = http.Response.make(202, body, {"Content-Type": "application/json"})
    if encoding:  # as it travelled (`make` would encode it itself)
        flow.response.headers["Content-Encoding"] = encoding
        flow.response.raw_content = gzip.compress(body)
        flow.response.headers["Content-Length"] = str(len(flow.response.raw_content))


def chain(*addons) -> list:
    return [UrlRewrite(), *addons]


def request(addons, flow) -> None:
    for addon in addons:
        if hasattr(addon, "request"):
            addon.request(flow)


def response(addons, flow) -> None:
    for addon in addons:
        if hasattr(addon, "response"):
            addon.response(flow)


def test_the_client_gets_the_proxys_url_and_the_rules_and_the_recording_keep_the_upstreams(tmp_path: Path):
    cassette = tmp_path / "poll.yaml"
    addons = chain(FanSession(), Recorder())
    with taddons.context(*addons) as tctx:
        tctx.options.update(tm_record=str(cassette))
        reserve = reverse_flow(RESERVE, headers=[("X-TM-FORCE-POLLING", "true")])
        request(addons, reserve)
        accepted(reserve, encoding="gzip")
        response(addons, reserve)

        assert reserve.response is not None
        assert reserve.response.headers["Content-Encoding"] == "gzip"
        assert int(reserve.response.headers["Content-Length"]) == len(reserve.response.raw_content or b"")
        assert json.loads(reserve.response.content or b"")["polling_url"] == PROXY + POLL
        seen = exchange_of(reserve).response
        assert seen is not None and seen.json()["polling_url"] == UPSTREAM + POLL

        poll = reverse_flow(POLL, method="GET")  # at once: the client followed the proxy's URL
        request(addons, poll)
        poll.response = http.Response.make(200, b'{"cart_id": "c1"}', {"Content-Type": "application/json"})
        response(addons, poll)
        assert [f.rule for f in poll.metadata[FINDINGS_KEY]] == ["polling-too-fast"]
        addons[-1].done()

    recorded = load_cassette(cassette).exchanges
    assert recorded[0].response is not None
    assert recorded[0].response.json()["polling_url"].startswith(UPSTREAM + "/partners/v1/polling/")
    assert recorded[1].request.url.startswith(UPSTREAM + "/partners/v1/polling/")


def test_replayed_responses_are_rewritten_and_replay_misses_are_not(tmp_path: Path):
    cassette = tmp_path / "recorded.yaml"
    body = json.dumps({"polling_url": UPSTREAM + POLL, "wait": 1, "cart_id": "c1"}).encode()
    with CassetteWriter(cassette) as writer:
        writer.append(Exchange(Request("POST", UPSTREAM + RESERVE), Response(202, body=body)))
    asyncio.run(replay(cassette))


async def replay(cassette: Path) -> None:
    """In one running loop, as mitmproxy runs its hooks (the replayer's `request` may wait)."""
    rewrite, replayer = UrlRewrite(), Replayer()
    with taddons.context(rewrite, replayer) as tctx:
        tctx.options.update(tm_replay=str(cassette))
        replayed = reverse_flow(RESERVE)
        rewrite.request(replayed)
        await tctx.master.addons.invoke_addon(replayer, HttpRequestHook(replayed))
        rewrite.response(replayed)
        assert replayed.response is not None
        assert replayed.response.json()["polling_url"] == PROXY + POLL

        missed = reverse_flow("/top-picks/v1/events/2000527EE48A9334?apikey=k", method="GET")
        rewrite.request(missed)
        await tctx.master.addons.invoke_addon(replayer, HttpRequestHook(missed))
        rewrite.response(missed)
        assert missed.response is not None and missed.response.status_code == 404
        assert missed.response.json()["request"]["url"].startswith(UPSTREAM + "/top-picks/")


def test_a_referer_at_the_proxy_goes_upstream_as_the_upstreams_before_the_rules_see_it():
    addons = chain(FanSession())
    with taddons.context(*addons):
        flow = reverse_flow(POLL, method="GET", headers=[("Referer", PROXY + "/checkout")])
        request(addons, flow)
        assert flow.request.headers["Referer"] == UPSTREAM + "/checkout"
        assert exchange_of(flow).request.headers.get("Referer") == UPSTREAM + "/checkout"


def test_a_client_on_tls_gets_https_and_the_name_it_asked_for():
    addon = UrlRewrite()
    with taddons.context(addon):
        flow = reverse_flow(RESERVE)
        flow.client_conn.timestamp_tls_setup = 1.0
        flow.client_conn.sni = "tmproxy.test"
        accepted(flow)
        addon.response(flow)
        assert flow.response is not None
        assert flow.response.json()["polling_url"] == "https://tmproxy.test:8080" + POLL


def test_nothing_is_rewritten_in_regular_mode_or_when_turned_off():
    addon = UrlRewrite()
    with taddons.context(addon) as tctx:
        regular = reverse_flow(RESERVE, mode="regular")
        accepted(regular)
        addon.response(regular)
        assert regular.response is not None and regular.response.json()["polling_url"] == UPSTREAM + POLL

        tctx.options.update(tm_rewrite_urls=False)
        off = reverse_flow(RESERVE)
        accepted(off)
        addon.response(off)
        assert off.response is not None and off.response.json()["polling_url"] == UPSTREAM + POLL
