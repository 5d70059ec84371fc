"""The fault addons through mitmproxy's hooks (taddons/tflow), beside the fan-session addon as tmproxy chains them."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils
from traffic import EVENT, reserve_body, reserve_response

from addons.fan_session import BLOCKED_KEY, FINDINGS_KEY, FanSession
from addons.faults import FAULT_KEY, MARK, FaultAnswers, FaultRewrites

CART = f"/partners/v1/events/{EVENT}/cart"


def tm_flow(method: str, path: str, body: bytes = b"") -> http.HTTPFlow:
    req = tutils.treq(host="app.ticketmaster.com", port=443, scheme=b"https", method=method.encode(),
                      path=path.encode(), headers=http.Headers(), content=body)  # fmt: skip
    flow = tflow.tflow(req=req)
    flow.response = None
    return flow


def upstream_answers(flow: http.HTTPFlow, body: dict) -> None:
    flow.response = http.Response.make(200, json.dumps(body), {"Content-Type": "application/json"})


class Chain:
    """The addons in tmproxy's order: rewrites, fan session, answers; each hook in turn."""

    def __init__(self) -> None:
        self.rewrites, self.fan_session, self.answers = FaultRewrites(), FanSession(), FaultAnswers()

    def request(self, flow: http.HTTPFlow) -> None:
        self.fan_session.request(flow)
        self.answers.request(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        asyncio.run(self.rewrites.response(flow))
        self.fan_session.response(flow)


def test_the_options_and_a_bad_spec_named():
    answers = FaultAnswers()
    with taddons.context(answers) as tctx:
        assert tctx.options.tm_faults == [] and tctx.options.tm_fault_seed is None
        with pytest.raises(exceptions.OptionsError, match="tm_faults: 'quota:2'"):
            tctx.configure(answers, tm_faults=["quota:2"])
        tctx.configure(answers, tm_faults=["quota:0.5"], tm_fault_seed=9)
        assert answers.injector is not None and answers.injector.describe() == "quota:0.5 (seed 9)"
        tctx.configure(answers, tm_faults=[])
        assert answers.injector is None


def test_an_injected_answer_is_marked_commented_and_logged(caplog):
    chain = Chain()
    with taddons.context(chain.rewrites, chain.fan_session, chain.answers) as tctx:
        tctx.configure(chain.answers, tm_faults=["niterun"])
        caplog.set_level(logging.WARNING)
        flow = tm_flow("GET", f"/partners/v1/events/{EVENT}/availability?apikey=secret-key")
        chain.request(flow)
        assert flow.response is not None and flow.response.status_code == 503
        chain.response(flow)
    assert flow.marked == MARK and flow.metadata[FAULT_KEY] == ["niterun"]
    assert "[fault:niterun] injected by tmproxy, not Ticketmaster's answer" in flow.comment
    line = next(r.getMessage() for r in caplog.records if "[fault:niterun]" in r.getMessage())
    assert "apikey=REDACTED" in line and "secret-key" not in line


def test_a_call_the_enforce_policy_blocked_gets_no_fault():
    chain = Chain()
    with taddons.context(chain.rewrites, chain.fan_session, chain.answers) as tctx:
        tctx.configure(chain.fan_session, tm_sid="enforce")
        tctx.configure(chain.answers, tm_faults=["concurrent", "polling"])
        flow = tm_flow("POST", f"{CART}?apikey=k", json.dumps(reserve_body()).encode())
        chain.request(flow)
        chain.response(flow)
    assert flow.metadata.get(BLOCKED_KEY) and flow.response is not None and flow.response.status_code == 428
    assert FAULT_KEY not in flow.metadata


def test_the_rules_judge_the_changed_answer_the_partner_got():
    chain = Chain()
    with taddons.context(chain.rewrites, chain.fan_session, chain.answers) as tctx:
        tctx.configure(chain.answers, tm_faults=["polling:1,wait=5"])
        reserve = tm_flow("POST", f"{CART}?apikey=k", json.dumps(reserve_body()).encode())
        reserve.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9000")
        reserve.client_conn.sockname = ("127.0.0.1", 8080)
        reserve.client_conn.timestamp_tls_setup = None  # the app talks plain HTTP to the proxy
        chain.request(reserve)
        upstream_answers(reserve, reserve_response(120.0))
        chain.response(reserve)
        assert reserve.response is not None and reserve.response.status_code == 202
        polling_url = reserve.response.json()["polling_url"]
        assert polling_url.startswith("http://127.0.0.1:8080/partners/v1/polling/cart/POST/")

        path = polling_url.split("8080", 1)[1]
        poll = tm_flow("GET", path)
        chain.request(poll)  # at once, though the 202 said to wait 5 s
        assert poll.response is not None and poll.response.status_code == 200
        assert poll.response.json()["cart_id"] == "cart-1"
    assert [f.rule for f in poll.metadata[FINDINGS_KEY]] == ["polling-too-fast"]


def test_in_regular_mode_the_polling_url_is_at_the_origin_the_app_asked_for():
    chain = Chain()
    with taddons.context(chain.rewrites, chain.fan_session, chain.answers) as tctx:
        tctx.configure(chain.answers, tm_faults=["polling"])
        release = tm_flow("DELETE", f"{CART}?apikey=k&cart_id=c1")
        chain.request(release)
        release.response = http.Response.make(204)
        chain.response(release)
    assert release.response is not None
    assert release.response.json()["polling_url"].startswith(
        "https://app.ticketmaster.com/partners/v1/polling/"
    )


def test_slow_holds_the_answer_without_blocking_the_event_loop():
    rewrites, answers = FaultRewrites(), FaultAnswers()

    async def hold() -> None:
        flow = tm_flow("GET", f"/top-picks/v1/events/{EVENT}?apikey=k")
        upstream_answers(flow, {"picks": []})
        answered = flow.response.timestamp_end
        held = asyncio.create_task(rewrites.response(flow))
        await asyncio.sleep(0)  # the hook starts, and gives the loop back while it holds the answer
        assert not held.done()
        await held
        assert flow.response.headers["X-Tmproxy-Fault"] == "slow"
        assert flow.response.timestamp_end >= answered + 0.05  # the partner got it this much later
        assert flow.response.json() == {"picks": []}

    with taddons.context(rewrites, answers) as tctx:
        tctx.configure(answers, tm_faults=["slow:0.05"])
        asyncio.run(hold())
