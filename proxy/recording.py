"""What `record` and `replay` do for each record mode, and where a cassette's traffic went.

vcrpy's record modes, for a proxy: `once` records a new cassette and only replays an existing one;
`new_episodes` replays what is recorded and records what is not; `all` records everything and replays
nothing; `none` only replays. Replay with `--on-miss forward` is `new_episodes` by another name.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from .cassette import CassetteError, CassetteWriter, RedactionRules, Redactor, SecretLeakError
from .exchange import Exchange, Headers, Response
from .findings import Finding
from .replay import NearMissReport, shift_response_session
from .ticketmaster import top_picks_event
from .urlrewrite import Origin, rewrite_request, rewrite_response

logger = logging.getLogger(__name__)


class RecordMode(enum.StrEnum):
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    NONE = "none"


class OnMiss(enum.StrEnum):
    ERROR = "error"
    FORWARD = "forward"


@dataclass(frozen=True)
class CassettePlan:
    replay: bool
    record: bool
    on_miss: OnMiss

    @classmethod
    def for_record_mode(cls, mode: RecordMode, cassette_has_interactions: bool) -> CassettePlan:
        if mode is RecordMode.ONCE:
            if cassette_has_interactions:
                return cls(replay=True, record=False, on_miss=OnMiss.ERROR)
            return cls(replay=False, record=True, on_miss=OnMiss.FORWARD)
        if mode is RecordMode.NEW_EPISODES:
            return cls(replay=True, record=True, on_miss=OnMiss.FORWARD)
        if mode is RecordMode.ALL:
            return cls(replay=False, record=True, on_miss=OnMiss.FORWARD)
        return cls(replay=True, record=False, on_miss=OnMiss.ERROR)

    @classmethod
    def for_replay(cls, on_miss: OnMiss) -> CassettePlan:
        return cls(replay=True, record=on_miss is OnMiss.FORWARD, on_miss=on_miss)

    def options(self, cassette: str, record_as: str = "") -> dict[str, str]:
        """The replayer's and the recorder's mitmproxy options that carry out this plan."""
        return {
            "tm_on_miss": self.on_miss.value,
            "tm_replay": cassette if self.replay else "",
            "tm_record": cassette if self.record else "",
            "tm_record_as": record_as,
        }


def rebase_url(url: str, origin: str) -> str:
    """The same path and query at another origin: sandbox traffic recorded as Ticketmaster's."""
    parts, target = urlsplit(url), urlsplit(origin)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def rebase_exchange(exchange: Exchange, origin: str) -> Exchange:
    """The exchange as if it had gone to `origin`: URL, Host header, and the URLs at the old origin
    that either side carries (a 202's polling_url, a Location), so a replay of it stays at `origin`."""
    headers = Headers(exchange.request.headers.items())
    if "Host" in headers:
        headers.set("Host", urlsplit(origin).netloc)
    request = replace(exchange.request, url=rebase_url(exchange.request.url, origin), headers=headers)
    response = exchange.response
    source, target = Origin.of(exchange.request.url), Origin.of(origin)
    if source is not None and target is not None:
        request = rewrite_request(request, source, target)
        if response is not None:
            response = rewrite_response(response, source, target)
    return replace(exchange, request=request, response=response)


def open_recording(path: str, rules: RedactionRules) -> CassetteWriter:
    """The writer a proxy records through. Raises ValueError saying why the cassette cannot be used."""
    try:
        return CassetteWriter(path, metadata={"recorded_by": "tmproxy"}, redactor=Redactor(rules))
    except CassetteError as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None


def close_recording(writer: CassetteWriter) -> None:
    """Flush and close; a failure is logged (the proxy is stopping, there is nobody else to tell)."""
    try:
        writer.close()
    except OSError as exc:
        logger.error(f"could not flush {writer.path} to disk: {exc}")


def record_exchange(
    writer: CassetteWriter, exchange: Exchange, findings: Iterable[Finding], record_as: str = ""
) -> str | None:
    """Append one finished exchange (at `record_as`'s origin if given); why it was refused, or None.

    A refusal (the canary found a secret, the disk failed) writes nothing and is the caller's to report."""
    if record_as:
        exchange = rebase_exchange(exchange, record_as)
    try:
        writer.append(exchange, findings)
    except SecretLeakError as exc:
        return str(exc)
    except OSError as exc:
        return f"could not record {exchange.request.path} to {writer.path}: {exc}"
    return None


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


class UpstreamUnknownError(ValueError):
    pass


def infer_upstream(urls: Iterable[str]) -> str:
    """The one origin a cassette's requests went to; several (or none) must be named by the user.

    Any iterable of request URLs, e.g. a replay index's `recorded_urls()`."""
    origins = sorted({origin_of(url) for url in urls})
    if len(origins) == 1:
        return origins[0]
    if not origins:
        raise UpstreamUnknownError(
            "the cassette has no interactions to infer an upstream from: use --upstream"
        )
    listed = ", ".join(origins[:5]) + (" ..." if len(origins) > 5 else "")
    raise UpstreamUnknownError(
        f"the cassette holds {len(origins)} hosts ({listed}): name one with --upstream"
    )


MISS_STATUS = 404
MISS_HEADER = "X-Tmproxy-Replay"


def miss_response(report: NearMissReport) -> Response:
    """The replay's answer to a request it has no recording for: what missed and the closest recordings."""
    return Response(
        status=MISS_STATUS,
        headers=Headers([("Content-Type", "application/json"), (MISS_HEADER, "miss")]),
        body=json.dumps(report.to_dict(), indent=2).encode(),
        reason="Not Recorded",
    )


def replayed_response(recorded: Exchange, now: float) -> Response:
    """A recorded response as served now: a replayed fan session is shifted to be valid now."""
    response = recorded.response
    assert response is not None, "the replay index only holds exchanges with a response"
    if top_picks_event(recorded.request.path) is not None:
        return shift_response_session(response, now)
    return response


def recorded_latency(recorded: Exchange) -> float:
    if recorded.ended_at is None:
        return 0.0
    return max(0.0, recorded.ended_at - recorded.started_at)
