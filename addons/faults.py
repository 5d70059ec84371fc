"""mitmproxy addons: Ticketmaster-shaped faults (`proxy.faults`) provoked in live traffic.

    tmproxy run --fault quota:0.3 --fault polling:0.5 --fault-seed 7
    mitmdump -s addons/fault_rewrites.py -s addons/fan_session.py -s addons/faults.py \
        --set tm_faults=quota:0.3 --set tm_faults=polling:0.5 --mode reverse:http://127.0.0.1:9000

Two addons, because the live rules must judge the partner on what it was given:
- `FaultAnswers`, after the fan-session addon (which has judged the request by then), answers a call
  itself: quota, niterun, concurrent, and the polling urls it handed out;
- `FaultRewrites`, before the fan-session addon (so the rules learn the changed answer), holds or
  changes upstream's answer: slow, polling, session-expiry.

An injected answer carries the `X-Tmproxy-Fault` header (so recordings and audits know it), is
marked and commented on the flow (mitmweb), and is logged as one line `[fault:KIND] ...`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ReverseMode

from addons.convert import exchange_of, make_response, request_of, response_of
from addons.fan_session import BLOCKED_KEY
from addons.replayer import MISSED_KEY
from proxy.audit.partner_api import FAULT_HEADER
from proxy.cassette.redact import masked_url
from proxy.faults import FaultInjector, FaultKind, FaultSpecError, new_seed, parse_faults
from proxy.netaddr import url_host
from proxy.recording import origin_of

logger = logging.getLogger(__name__)

FAULT_KEY = "tmproxy.fault"
MARK = ":zap:"


class FaultAnswers:
    """Owns the faults of this proxy (options `tm_faults`, `tm_fault_seed`) and answers calls itself."""

    def __init__(self) -> None:
        self.injector: FaultInjector | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "tm_faults",
            Sequence[str],
            [],
            "Ticketmaster faults to inject: KIND[:RATE][,NAME=VALUE...] with KIND quota, polling, niterun, "
            "concurrent, session-expiry or slow:SECONDS.",
        )
        loader.add_option(
            "tm_fault_seed",
            int | None,
            None,
            "Seed for the faults' chances: the same seed gives the same faults on the same traffic.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & {"tm_faults", "tm_fault_seed"}:
            return
        try:
            specs = parse_faults(ctx.options.tm_faults)
        except FaultSpecError as exc:
            raise exceptions.OptionsError(f"tm_faults: {exc}") from None
        if not specs:
            self.injector = None
            return
        seed = ctx.options.tm_fault_seed
        self.injector = FaultInjector(specs, seed=new_seed() if seed is None else seed)
        logger.warning(f"[fault] injecting {self.injector.describe()}")

    def request(self, flow: http.HTTPFlow) -> None:
        if self.injector is None or not self.injector.answers_requests or flow.response is not None:
            return
        exchange = exchange_of(flow)
        injected = self.injector.answer(exchange.request, exchange.client_host)
        if injected is not None:
            flow.response = make_response(injected.response)
            show(flow, injected.kind, injected.note)


class FaultRewrites:
    """Holds and changes upstream's answers (also replayed ones), with the faults of `FaultAnswers`."""

    async def response(self, flow: http.HTTPFlow) -> None:
        # by name: loaded with `mitmdump -s`, the two halves come from different module objects
        injector: FaultInjector | None = getattr(ctx.master.addons.get("faultanswers"), "injector", None)
        if injector is None or not injector.rewrites_answers or made_by_tmproxy(flow):
            return
        request = request_of(flow)
        seconds = injector.delay(request)
        if seconds:
            await asyncio.sleep(seconds)  # this flow waits; the event loop serves the others
            if flow.response is None:
                return
            flow.response.timestamp_end = time.time()
            flow.response.headers[FAULT_HEADER] = str(FaultKind.SLOW)
            show(flow, FaultKind.SLOW, f"upstream's answer held {seconds:g}s")
        response = response_of(flow)
        assert response is not None, "the response hook has a response"
        injected = injector.rewrite(request, response, client_origin(flow))
        if injected is not None:
            flow.response = make_response(injected.response)
            show(flow, injected.kind, injected.note)


def made_by_tmproxy(flow: http.HTTPFlow) -> bool:
    """Answers that never came from upstream: injected faults, enforce blocks, replay misses."""
    return any(flow.metadata.get(key) for key in (FAULT_KEY, BLOCKED_KEY, MISSED_KEY))


def client_origin(flow: http.HTTPFlow) -> str:
    """Where the partner reached the proxy, for the polling urls it gives: in reverse mode the proxy's
    own address (mitmproxy rewrote the Host header to the upstream's), else the origin it asked for."""
    if isinstance(flow.client_conn.proxy_mode, ReverseMode) and flow.client_conn.sockname:
        host, port = flow.client_conn.sockname[:2]
        scheme = "https" if flow.client_conn.tls_established else "http"
        return f"{scheme}://{url_host(str(host))}:{port}"
    return origin_of(flow.request.url)


def show(flow: http.HTTPFlow, kind: FaultKind, note: str) -> None:
    """Where mitmproxy users look: a mark (unless a finding marked it), a comment and a log line."""
    kinds = flow.metadata.setdefault(FAULT_KEY, [])
    kinds.append(str(kind))
    flow.marked = flow.marked or MARK
    line = f"[fault:{kind}] injected by tmproxy, not Ticketmaster's answer: {note}"
    flow.comment = "\n".join(filter(None, [flow.comment, line]))
    logger.warning(f"{line} ({flow.request.method} {masked_url(flow.request.url)})")


addons = [FaultAnswers()]
