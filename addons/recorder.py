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
from proxy.cassette import CassetteError, CassetteWriter, Redactor, SecretLeakError
from proxy.recording import rebase_exchange

logger = logging.getLogger(__name__)


class Recorder:
    def __init__(self) -> None:
        self.writer: CassetteWriter | None = None
        self.recorded = 0
        self.refused = 0

    def load(self, loader: Any) -> None:
        loader.add_option("tm_record", str, "", "Cassette to append interactions to (empty: no recording).")
        loader.add_option(
            "tm_record_as",
            str,
            "",
            "Record URLs at this origin instead of the upstream's, e.g. https://app.ticketmaster.com "
            "for traffic from the sandbox.",
        )
        add_redaction_options(loader)

    def configure(self, updated: set[str]) -> None:
        if not updated & {"tm_record", *REDACTION_OPTIONS}:
            return
        self._close()
        if not ctx.options.tm_record:
            return
        try:
            self.writer = CassetteWriter(
                ctx.options.tm_record,
                metadata={"recorded_by": "tmproxy"},
                redactor=Redactor(redaction_rules()),
            )
        except CassetteError as exc:
            raise exceptions.OptionsError(f"tm_record: {exc}") from None
        except OSError as exc:
            raise exceptions.OptionsError(
                f"tm_record: {ctx.options.tm_record}: {exc.strerror or exc}"
            ) from None
        for warning in self.writer.warnings:
            logger.warning(warning)

    def response(self, flow: http.HTTPFlow) -> None:
        if self.writer is None or any(flow.metadata.get(k) for k in (REPLAYED_KEY, MISSED_KEY, BLOCKED_KEY)):
            return
        exchange = exchange_of(flow)
        if ctx.options.tm_record_as:
            exchange = rebase_exchange(exchange, ctx.options.tm_record_as)
        try:
            if self.writer.append(exchange, flow.metadata.get(FINDINGS_KEY, ())):
                self.recorded += 1
        except SecretLeakError as exc:
            self.refused += 1
            logger.error(str(exc))
        except OSError as exc:
            self.refused += 1
            logger.error(f"could not record {flow.request.path} to {self.writer.path}: {exc}")

    def done(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except OSError as exc:
                logger.error(f"could not flush {writer.path} to disk: {exc}")


addons = [Recorder()]
