"""mitmproxy addon: serve responses from a cassette, offline.

    mitmdump -s addons/replayer.py --set tm_replay=cassettes/compliant.yaml \
        --set connection_strategy=lazy --mode reverse:https://app.ticketmaster.com

A miss is answered with a 404 that names the closest recorded requests, or forwarded upstream
(`tm_on_miss=forward`, where the recorder appends it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.convert import exchange_of, make_response
from addons.redaction_options import REDACTION_OPTIONS, add_redaction_options, redaction_rules
from proxy.cassette import CassetteError
from proxy.cassette_cache import replay_index
from proxy.exchange import Exchange
from proxy.recording import OnMiss, miss_response, recorded_latency, replayed_response
from proxy.replay import EXHAUST, REPEAT_LAST, ReplayIndex

logger = logging.getLogger(__name__)

REPLAYED_KEY = "tmproxy.replayed"
MISSED_KEY = "tmproxy.replay_miss"


class Replayer:
    def __init__(self) -> None:
        self.index: ReplayIndex | None = None
        self.latency_recorded = False
        self.on_miss = OnMiss.ERROR

    def load(self, loader: Any) -> None:
        loader.add_option("tm_replay", str, "", "Cassette to serve responses from (empty: no replay).")
        loader.add_option(
            "tm_on_miss",
            str,
            OnMiss.ERROR.value,
            "A request with no recording: error (404 naming the closest recordings) or forward upstream.",
            choices=[m.value for m in OnMiss],
        )
        loader.add_option(
            "tm_latency",
            str,
            "none",
            "Serve replayed responses at once (none) or after their recorded duration (recorded).",
            choices=["none", "recorded"],
        )
        loader.add_option(
            "tm_repeat",
            str,
            REPEAT_LAST,
            "After the last recording of a repeated request: serve it again (repeat_last) or miss (exhaust).",
            choices=[REPEAT_LAST, EXHAUST],
        )
        add_redaction_options(loader)

    def configure(self, updated: set[str]) -> None:
        # read once: an option read copies its value, and these are asked on every request
        self.latency_recorded = ctx.options.tm_latency == "recorded"
        self.on_miss = OnMiss(ctx.options.tm_on_miss)
        if not updated & {"tm_replay", "tm_repeat", *REDACTION_OPTIONS}:
            return
        if not ctx.options.tm_replay:
            self.index = None
            return
        try:
            # cached: the pytest plugin's session proxy switches between a few cassettes, test by test
            self.index = replay_index(ctx.options.tm_replay, redaction_rules(), ctx.options.tm_repeat)
        except CassetteError as exc:
            raise exceptions.OptionsError(f"tm_replay: {exc}") from None
        logger.info(f"replaying {len(self.index)} interactions from {ctx.options.tm_replay}")

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Serve the recording at once, or hand mitmproxy a wait for its recorded duration first."""
        if self.index is None or flow.response is not None:
            return None
        result = self.index.play(exchange_of(flow).request)
        if result.exchange is not None:
            if self.latency_recorded:
                return self._serve_later(flow, result.exchange)
            serve(flow, result.exchange)
        elif self.on_miss is OnMiss.ERROR and result.near_miss is not None:
            logger.warning(result.near_miss.summary_line())
            flow.response = make_response(miss_response(result.near_miss))
            flow.metadata[MISSED_KEY] = True
        return None

    async def _serve_later(self, flow: http.HTTPFlow, recorded: Exchange) -> None:
        await asyncio.sleep(recorded_latency(recorded))
        serve(flow, recorded)


def serve(flow: http.HTTPFlow, recorded: Exchange) -> None:
    flow.response = make_response(replayed_response(recorded, time.time()))
    flow.metadata[REPLAYED_KEY] = recorded.id


addons = [Replayer()]
