"""mitmproxy addon: append each completed interaction to a cassette, redacted, as it completes.

    mitmdump -s addons/fan_session.py -s addons/recorder.py --set tm_record=session.yaml \
        --mode reverse:https://app.ticketmaster.com

Responses the proxy made itself (replayed, replay misses, enforce blocks) are not recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.convert import exchange_of
from addons.fan_session import BLOCKED_KEY, FINDINGS_KEY
from addons.redaction_options import REDACTION_OPTIONS, add_redaction_options, redaction_rules
from addons.replayer import MISSED_KEY, REPLAYED_KEY
from proxy.cassette import CassetteWriter
from proxy.recording import close_recording, open_recording, record_exchange

logger = logging.getLogger(__name__)


class Recorder:
    def __init__(self) -> None:
        self.writer: CassetteWriter | None = None
        self.recorded = 0
        self.refused = 0
        self.record_as = ""

    def load(self, loader: Any) -> None:
        add_recording_options(loader)

    def configure(self, updated: set[str]) -> None:
        if "tm_record_as" in updated:
            self.record_as = ctx.options.tm_record_as  # read once: an option read copies its value
        if not updated & {"tm_record", *REDACTION_OPTIONS}:
            return
        self._close()
        if not ctx.options.tm_record:
            return
        try:
            self.writer = open_recording(ctx.options.tm_record, redaction_rules())
        except ValueError as exc:
            raise exceptions.OptionsError(f"tm_record: {exc}") from None
        for warning in self.writer.warnings:
            logger.warning(warning)

    def response(self, flow: http.HTTPFlow) -> None:
        if self.writer is None or not should_record(flow):
            return
        exchange = exchange_of(flow)
        if exchange.response is None:
            return
        refusal = record_exchange(self.writer, exchange, flow.metadata.get(FINDINGS_KEY, ()), self.record_as)
        if refusal is None:
            self.recorded += 1
        else:
            self.refused += 1
            logger.error(refusal)

    def done(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            close_recording(writer)


def add_recording_options(loader: Any) -> None:
    loader.add_option("tm_record", str, "", "Cassette to append interactions to (empty: no recording).")
    loader.add_option(
        "tm_record_as",
        str,
        "",
        "Record URLs at this origin instead of the upstream's, e.g. https://app.ticketmaster.com "
        "for traffic from the sandbox.",
    )
    add_redaction_options(loader)


def should_record(flow: http.HTTPFlow) -> bool:
    """Whether the flow's answer came from upstream: the proxy's own (replayed, a replay miss, an
    enforce block) are never recorded."""
    return not any(flow.metadata.get(k) for k in (REPLAYED_KEY, MISSED_KEY, BLOCKED_KEY))


addons = [Recorder()]
