"""tmproxy's addons as one link of mitmproxy's chain (`proxy.mitm_master.AddonBundle`), driven
through a real mitmproxy master's own event dispatch."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import tflow, tutils
from traffic import EVENT, reserve_body

from addons.fan_session import FINDINGS_KEY, FanSession
from addons.faults import FaultAnswers, FaultRewrites
from addons.upstream_timeout import UpstreamTimeout
from proxy.mitm_master import AddonBundle, Announce, ProxySettings, build_master


class Failing:
    def request(self, flow: http.HTTPFlow) -> None:
        raise RuntimeError("this addon is broken")

    async def response(self, flow: http.HTTPFlow) -> None:
        raise RuntimeError("this addon is broken again")


class Seen:
    def __init__(self) -> None:
        self.events: list[str] = []

    def request(self, flow: http.HTTPFlow) -> None:
        self.events.append("request")

    async def response(self, flow: http.HTTPFlow) -> None:
        await asyncio.sleep(0)
        self.events.append("response")


def reserve_without_sid() -> http.HTTPFlow:
    request = tutils.treq(
        host="app.ticketmaster.com", port=443, scheme=b"https", method=b"POST",
        path=f"/partners/v1/events/{EVENT}/cart?apikey=k".encode(),
        headers=http.Headers([(b"Content-Type", b"application/json")]),
        content=json.dumps(reserve_body()).encode(),
    )  # fmt: skip
    return tflow.tflow(req=request)


def with_master(addons: list[Any], body: Any) -> Any:
    """Build tmproxy's master around `addons` and run `body(master)` on its event loop."""

    async def main() -> Any:
        master = build_master(ProxySettings(listen_port=0), addons, Announce(lambda url: None))
        return await body(master)

    return asyncio.run(main())


def test_tmproxy_addons_are_one_link_of_the_chain_and_found_by_name():
    fan_session, timeout = FanSession(), UpstreamTimeout()

    async def body(master: Any) -> None:
        bundles = [a for a in master.addons.chain if isinstance(a, AddonBundle)]
        assert len(bundles) == 1 and bundles[0].members == [fan_session, timeout]
        assert master.addons.get("fansession") is fan_session
        assert master.addons.get("upstreamtimeout") is timeout

    with_master([fan_session, timeout], body)


def test_a_failing_addon_is_logged_and_the_others_still_judge_the_request(caplog):
    fan_session, seen = FanSession(), Seen()
    flow = reserve_without_sid()

    async def body(master: Any) -> None:
        await master.addons.handle_lifecycle(HttpRequestHook(flow))
        flow.response = http.Response.make(200, b"{}", {"Content-Type": "application/json"})
        await master.addons.handle_lifecycle(HttpResponseHook(flow))

    caplog.set_level(logging.WARNING)
    with_master([Failing(), fan_session, seen], body)
    assert "this addon is broken" in caplog.text and "this addon is broken again" in caplog.text
    assert [f.rule for f in flow.metadata[FINDINGS_KEY]] == ["sid-missing"]
    assert seen.events == ["request", "response"]  # once each: async hooks awaited, nothing twice


def test_an_invalid_option_is_refused_as_without_the_bundle():
    async def body(master: Any) -> None:
        with pytest.raises(exceptions.OptionsError, match="tm_sid"):
            master.options.update(tm_sid="sometimes")
        assert master.options.tm_sid == "validate"

    with_master([FanSession()], body)


def test_the_rewriting_fault_addon_finds_the_answering_one():
    answers = FaultAnswers()

    async def body(master: Any) -> None:
        master.options.update(tm_faults=["quota:1"], tm_fault_seed=1)
        assert master.addons.get("faultanswers") is answers
        assert answers.injector is not None

    with_master([FaultRewrites(), FanSession(), answers], body)
