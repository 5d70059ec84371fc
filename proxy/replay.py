"""The replay index: recorded exchanges found again by a normalized request key, in constant time.

The key is what identifies a call to Ticketmaster, not how it travelled: method, host, path, the query
parameters as a sorted multiset without the apikey and other redacted parameters, and the body (JSON
compared canonically, forms as sorted pairs, anything else by hash). No headers: the apikey, the
`Authorization` token and the `X-TM-SESSION-SID` change between a recording and a replay.

Repeated identical requests get the recorded responses in order; after the last one, `repeat_last`
serves the last again and `exhaust` misses. A miss comes with a near-miss report naming the closest
recorded requests and how each differs, for the addon's JSON error body and log line.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode

from proxy.cassette.reader import CassetteStream, open_cassette
from proxy.cassette.redact import (
    PLACEHOLDER,
    RedactionRules,
    is_form,
    is_oauth_request,
    normalize_name,
    parse_json_body,
    redact_json_value,
    redact_url,
)
from proxy.clock import to_epoch_ms
from proxy.exchange import Exchange, Headers, Request, Response, parse_json
from proxy.ticketmaster import resale_sid

log = logging.getLogger(__name__)

OnExhausted = Literal["repeat_last", "exhaust"]
REPEAT_LAST: OnExhausted = "repeat_last"
EXHAUST: OnExhausted = "exhaust"

_JSON = "json:"
_FORM = "form:"
_BYTES = "bytes:"


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request as the index sees it; hashable, and comparable part by part for near misses."""

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: str


def normalized_query(pairs: Iterable[tuple[str, str]], rules: RedactionRules) -> tuple[tuple[str, str], ...]:
    """Query parameters as a sorted multiset, without the apikey and the other redacted parameters."""
    return tuple(sorted((k, v) for k, v in pairs if normalize_name(k) not in rules.secret_params))


def canonical_body(request: Request, rules: RedactionRules) -> str:
    """The body in a form where only meaning counts; redacted fields compare equal whatever their value."""
    body = request.body
    if not body:
        return ""
    content_type = request.headers.get("Content-Type") or ""
    if len(body) > _MEMO_BODY_MAX:
        return _canonical(body, content_type, is_oauth_request(request), rules)
    return _memo_canonical(body, content_type, is_oauth_request(request), rules)


_MEMO_BODY_MAX = 4096


def _canonical(body: bytes, content_type: str, oauth: bool, rules: RedactionRules) -> str:
    parsed = parse_json_body(body)
    if parsed is not None:
        redacted = redact_json_value(parsed, rules, oauth)
        return _JSON + json.dumps(redacted, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if is_form(body, content_type):
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            pairs = []
        if pairs:
            secret = rules.secret_params
            masked = [(k, PLACEHOLDER if normalize_name(k) in secret else v) for k, v in pairs]
            return _FORM + urlencode(sorted(masked))
    return f"{_BYTES}{len(body)}:{hashlib.sha256(body).hexdigest()}"


# A replay sees the same request bodies again and again; parsing, redacting and dumping one (a cart
# call's JSON) was the most of a lookup. Small bodies only: the cache holds them.
_memo_canonical = lru_cache(maxsize=1024)(_canonical)


def request_key(request: Request, rules: RedactionRules) -> RequestKey:
    return RequestKey(
        method=request.method.upper(),
        host=request.host.lower(),
        path=request.path or "/",
        query=normalized_query(request.query, rules),
        body=canonical_body(request, rules),
    )


# Near misses -----------------------------------------------------------------------------------------


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for k, v in pairs:
        grouped.setdefault(k, []).append(v)
    return grouped


def _one_or_all(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def pairs_difference(
    recorded: Iterable[tuple[str, str]], requested: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """Parameters the request added, removed or changed compared with the recording (empty if equal)."""
    old, new = _grouped(recorded), _grouped(requested)
    diff: dict[str, Any] = {}
    added = {k: _one_or_all(v) for k, v in new.items() if k not in old}
    removed = {k: _one_or_all(v) for k, v in old.items() if k not in new}
    changed = {
        k: {"recorded": _one_or_all(old[k]), "request": _one_or_all(v)}
        for k, v in new.items()
        if k in old and sorted(old[k]) != sorted(v)
    }
    for name, part in (("added", added), ("removed", removed), ("changed", changed)):
        if part:
            diff[name] = part
    return diff


def json_differences(recorded: Any, requested: Any, path: str = "$", limit: int = 10) -> list[str]:
    """JSON paths where two documents differ (at most `limit`)."""
    out: list[str] = []
    _collect_json_differences(recorded, requested, path, out, limit)
    return out


def _collect_json_differences(old: Any, new: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit or old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            _collect_json_differences(old.get(key), new.get(key), f"{path}.{key}", out, limit)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _collect_json_differences(a, b, f"{path}[{i}]", out, limit)
    else:
        out.append(path)


def _describe_body(body: str) -> str:
    if not body:
        return "empty"
    if body.startswith(_BYTES):
        return f"{body.split(':')[1]} bytes"
    return "JSON" if body.startswith(_JSON) else "form"


def body_difference(recorded: str, requested: str) -> dict[str, Any]:
    """How two canonical bodies differ: JSON paths, form fields, or just their kinds and sizes."""
    if recorded == requested:
        return {}
    if recorded.startswith(_JSON) and requested.startswith(_JSON):
        return {"json_paths": json_differences(json.loads(recorded[5:]), json.loads(requested[5:]))}
    if recorded.startswith(_FORM) and requested.startswith(_FORM):
        return {"form": pairs_difference(parse_qsl(recorded[5:]), parse_qsl(requested[5:]))}
    return {"recorded": _describe_body(recorded), "request": _describe_body(requested)}


def _path_distance(old: str, new: str) -> int:
    a, b = old.strip("/").split("/"), new.strip("/").split("/")
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def key_differences(recorded: RequestKey, requested: RequestKey) -> tuple[int, dict[str, Any]]:
    """A distance (smaller is closer) and the parts that differ, each with what was recorded and asked."""
    diff: dict[str, Any] = {}
    distance = 0
    for part in ("method", "host", "path"):
        old, new = getattr(recorded, part), getattr(requested, part)
        if old != new:
            diff[part] = {"recorded": old, "request": new}
            distance += 2 * _path_distance(old, new) if part == "path" else 4
    query = pairs_difference(recorded.query, requested.query)
    if query:
        diff["query"] = query
        distance += sum(len(v) for v in query.values())
    body = body_difference(recorded.body, requested.body)
    if body:
        diff["body"] = body
        distance += 3
    return distance, diff


@dataclass(frozen=True)
class Candidate:
    """A recorded request close to a missed one, and how they differ."""

    exchange_id: str
    method: str
    url: str
    distance: int
    differences: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "interaction": self.exchange_id,
            "method": self.method,
            "url": self.url,
            "differences": self.differences,
        }

    def describe(self) -> str:
        parts = ", ".join(_describe_part(name, value) for name, value in self.differences.items())
        return f"{self.method} {self.url} ({parts or 'identical, but already played'})"


def _describe_part(name: str, value: dict[str, Any]) -> str:
    if name in ("method", "host", "path"):
        return f"{name} {value['recorded']} -> {value['request']}"
    if name == "query":
        return "query " + "; ".join(f"{kind} {', '.join(names)}" for kind, names in value.items())
    if "json_paths" in value:
        return "body differs at " + ", ".join(value["json_paths"])
    return "body differs"


@dataclass(frozen=True)
class NearMissReport:
    """Why a request found no recorded response, and the closest recorded requests."""

    method: str
    url: str
    reason: str
    candidates: tuple[Candidate, ...] = ()
    exhausted: bool = False  # the request was recorded, and every recording of it was played

    def to_dict(self) -> dict[str, Any]:
        """The addon's JSON error body."""
        return {
            "error": "tmproxy replay: no recorded response for this request",
            "reason": self.reason,
            "request": {"method": self.method, "url": self.url},
            "closest": [c.to_dict() for c in self.candidates],
        }

    def summary_line(self) -> str:
        """One log line."""
        line = f"replay miss: {self.method} {self.url}: {self.reason}"
        if self.candidates:
            line += "; closest: " + " | ".join(c.describe() for c in self.candidates)
        return line


# The index ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plays:
    """The recorded exchanges for one key, in recorded order, and how many times the key was played."""

    indices: list[int] = field(default_factory=list)
    played: int = 0


class _Recorded(NamedTuple):
    """A recorded exchange as the index keeps one read from a file: plain values, equal ones (header
    lists, bodies, methods...) stored once, and a fresh `Exchange` made for each play. An Exchange
    (dataclasses, a Headers object, its caches) takes several times the memory."""

    id: str
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    reason: str
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    started_at: float
    ended_at: float | None
    client: str
    fan: tuple[tuple[str, str], ...] | None

    @classmethod
    def of(cls, exchange: Exchange, response: Response, shared: dict[Any, Any]) -> _Recorded:
        """`shared` maps each value to its first equal one."""

        def one(value: Any) -> Any:
            return shared.setdefault(value, value)

        request = exchange.request
        return cls(
            exchange.id,
            one(request.method),
            request.url,
            one(tuple(request.headers)),
            one(request.body),
            response.status,
            one(response.reason),
            one(tuple(response.headers)),
            one(response.body),
            exchange.started_at,
            exchange.ended_at,
            one(exchange.client),
            None if exchange.fan is None else one(tuple(exchange.fan.items())),
        )

    def exchange(self) -> Exchange:
        return Exchange(
            Request(self.method, self.url, Headers(self.request_headers), self.request_body),
            Response(self.status, Headers(self.response_headers), self.response_body, self.reason),
            started_at=self.started_at,
            ended_at=self.ended_at,
            client=self.client,
            id=self.id,
            fan=None if self.fan is None else dict(self.fan),
        )


def _exchange(entry: Exchange | _Recorded) -> Exchange:
    return entry if isinstance(entry, Exchange) else entry.exchange()


def _request_line(entry: Exchange | _Recorded) -> tuple[str, str, str]:
    """Id, method and URL, for near misses and the usage summary."""
    if isinstance(entry, Exchange):
        return entry.id, entry.request.method, entry.request.url
    return entry.id, entry.method, entry.url


@dataclass(frozen=True)
class ReplayResult:
    """The recorded exchange to serve, or (on a miss) the near-miss report."""

    exchange: Exchange | None
    near_miss: NearMissReport | None = None
    repeated: bool = False

    @property
    def hit(self) -> bool:
        return self.exchange is not None


@dataclass(frozen=True)
class ReplayUsage:
    """For the exit summary: what was served, what missed, what was never asked for."""

    recorded: int
    served: int
    repeats: int
    misses: int
    unused: tuple[Exchange, ...]

    def summary_line(self) -> str:
        return (
            f"replay: {self.served} responses served ({self.repeats} repeats) from {self.recorded} "
            f"recorded interactions, {len(self.unused)} unused, {self.misses} misses"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "served": self.served,
            "repeats": self.repeats,
            "misses": self.misses,
            "unused": [
                {"interaction": e.id, "method": e.request.method, "url": e.request.url} for e in self.unused
            ],
        }


class ReplayIndex:
    """Built once from recorded exchanges (those without a response are skipped); thread-safe lookups.

    `near_miss_limit`: candidates in a report. `near_miss_scan`: at most this many distinct recorded
    requests are ranked for a miss (those with the same path first), which caps the cost of a miss.
    Plays give back the exchanges given (`from_cassette`: a fresh copy of the recorded one each time).
    """

    def __init__(
        self,
        exchanges: Iterable[Exchange],
        *,
        rules: RedactionRules | None = None,
        on_exhausted: OnExhausted = REPEAT_LAST,
        near_miss_limit: int = 3,
        near_miss_scan: int = 10_000,
    ) -> None:
        if on_exhausted not in (REPEAT_LAST, EXHAUST):
            raise ValueError(f"on_exhausted must be {REPEAT_LAST!r} or {EXHAUST!r}, not {on_exhausted!r}")
        self.rules = rules or RedactionRules()
        self.on_exhausted = on_exhausted
        self.near_miss_limit = near_miss_limit
        self.near_miss_scan = near_miss_scan
        self._entries: list[Exchange | _Recorded] = []
        self._plays: dict[RequestKey, _Plays] = {}
        self._by_path: dict[str, list[RequestKey]] | None = None  # made on the first near miss
        for exchange in exchanges:
            self._add(exchange, exchange)
        self._served = Counter[int]()
        self._misses = 0
        self._lock = threading.Lock()

    @classmethod
    def from_cassette(
        cls,
        cassette: str | Path | CassetteStream,
        *,
        rules: RedactionRules | None = None,
        on_exhausted: OnExhausted = REPEAT_LAST,
        near_miss_limit: int = 3,
        near_miss_scan: int = 10_000,
    ) -> ReplayIndex:
        """The index of a cassette file, built as it is read: each interaction is converted, kept in a
        compact form (`_Recorded`) and let go, so no list of every exchange ever exists. Raises
        CassetteError as `load_cassette` does."""
        stream = cassette if isinstance(cassette, CassetteStream) else open_cassette(cassette)
        index = cls((), rules=rules, on_exhausted=on_exhausted, near_miss_limit=near_miss_limit,
                    near_miss_scan=near_miss_scan)  # fmt: skip
        shared: dict[Any, Any] = {}
        for exchange, _ in stream.interactions:
            if exchange.response is not None:
                index._add(exchange, _Recorded.of(exchange, exchange.response, shared), shared)
        return index

    def _add(
        self, exchange: Exchange, entry: Exchange | _Recorded, shared: dict[Any, Any] | None = None
    ) -> None:
        """`shared`: as in `_Recorded.of`, for the key's parts (methods, hosts, queries, bodies repeat)."""
        if exchange.response is None:
            return
        key = request_key(exchange.request, self.rules)
        if shared is not None:
            key = RequestKey(*(shared.setdefault(part, part) for part in (key.method, key.host, key.path,
                                                                          key.query, key.body)))  # fmt: skip
        plays = self._plays.get(key)
        if plays is None:
            plays = self._plays[key] = _Plays()
        plays.indices.append(len(self._entries))
        self._entries.append(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, on_exhausted: OnExhausted | None = None) -> ReplayIndex:
        """An index over the same recordings with nothing played yet: a session proxy's tests each get
        one from a cached index, without reading the cassette again. The recordings are shared."""
        copy = ReplayIndex((), rules=self.rules, on_exhausted=on_exhausted or self.on_exhausted,
                           near_miss_limit=self.near_miss_limit, near_miss_scan=self.near_miss_scan)  # fmt: skip
        copy._entries = self._entries
        copy._plays = {key: _Plays(plays.indices) for key, plays in self._plays.items()}
        return copy

    def recorded_urls(self) -> Iterator[str]:
        """The URL of each recorded request, in recorded order (to infer the upstream)."""
        return (_request_line(entry)[2] for entry in self._entries)

    def play(self, request: Request) -> ReplayResult:
        """The next recorded exchange for this request, or a miss with its near-miss report."""
        key = request_key(request, self.rules)
        with self._lock:
            plays = self._plays.get(key)
            index = self._next(plays) if plays else None
            if index is not None:
                self._served[index] += 1
                repeated = self._served[index] > 1
            else:
                self._misses += 1
        if index is not None:
            return ReplayResult(_exchange(self._entries[index]), repeated=repeated)
        if plays:
            reason = f"all {len(plays.indices)} recorded responses for this request were already played"
        else:
            reason = "no recorded request matches"
        report = self.near_miss(request, reason, exhausted=bool(plays))
        log.info("%s", report.summary_line())
        return ReplayResult(None, near_miss=report)

    def _next(self, plays: _Plays) -> int | None:
        position = plays.played
        if position >= len(plays.indices):
            if self.on_exhausted == EXHAUST:
                return None
            position = len(plays.indices) - 1
        plays.played += 1
        return plays.indices[position]

    def near_miss(
        self, request: Request, reason: str = "no recorded request matches", exhausted: bool = False
    ) -> NearMissReport:
        """The closest recorded requests and how each differs from this one (does not count as a play)."""
        key = request_key(request, self.rules)
        ranked = heapq.nsmallest(
            self.near_miss_limit,
            (self._candidate(recorded, key) for recorded in self._keys_to_rank(key)),
            key=lambda c: c.distance,
        )
        url = redact_url(request.url, self.rules, set())
        return NearMissReport(request.method, url, reason, tuple(ranked), exhausted)

    def _keys_to_rank(self, key: RequestKey) -> list[RequestKey]:
        with self._lock:
            if self._by_path is None:
                self._by_path = {}
                for recorded in self._plays:
                    self._by_path.setdefault(recorded.path, []).append(recorded)
        same_path = self._by_path.get(key.path, [])
        others = (k for k in self._plays if k.path != key.path)
        budget = max(0, self.near_miss_scan - len(same_path))
        return same_path[: self.near_miss_scan] + [k for _, k in zip(range(budget), others, strict=False)]

    def _candidate(self, recorded: RequestKey, requested: RequestKey) -> Candidate:
        exchange_id, method, url = _request_line(self._entries[self._plays[recorded].indices[0]])
        distance, diff = key_differences(recorded, requested)
        return Candidate(exchange_id, method, url, distance, diff)

    def usage(self) -> ReplayUsage:
        with self._lock:
            served = self._served.copy()
            misses = self._misses
        return ReplayUsage(
            recorded=len(self._entries),
            served=sum(served.values()),
            repeats=sum(n - 1 for n in served.values()),
            misses=misses,
            unused=tuple(_exchange(e) for i, e in enumerate(self._entries) if not served[i]),
        )


# Session-aware time shifting -------------------------------------------------------------------------


def _like(original: Any, epoch_ms: int) -> Any:
    """A new time written as the original was: numeric strings stay strings, floats floats."""
    if isinstance(original, str):
        return str(epoch_ms)
    if isinstance(original, float):
        return float(epoch_ms)
    return epoch_ms


def shift_session_times(body: bytes, now: float) -> bytes:
    """A recorded Top Picks body whose `fanSession.resaleSid` starts at `now` (epoch s), same duration.

    A replayed fan session would otherwise be long expired. Bodies without a usable resaleSid are
    returned unchanged. The same as `shift_session_document` and a compact `json.dumps`, but a body is
    parsed and dumped once (`_SessionTemplate`), not at every play.
    """
    template = _session_template(body)
    return body if template is None else template.at(now)


@dataclass(frozen=True)
class _SessionTemplate:
    """A Top Picks body dumped once with markers for its two session times, and what to put there."""

    pieces: tuple[bytes, bytes, bytes]  # before the first time, between them, after the second
    first_is_start: bool
    start_like: Any  # the recorded values, whose types the new ones keep
    expire_like: Any
    duration_ms: int

    def at(self, now: float) -> bytes:
        start = to_epoch_ms(now)
        times = (_json_scalar(_like(self.start_like, start)),
                 _json_scalar(_like(self.expire_like, start + self.duration_ms)))  # fmt: skip
        first, second = times if self.first_is_start else times[::-1]
        before, between, after = self.pieces
        return b"".join((before, first, between, second, after))


def _json_scalar(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


@lru_cache(maxsize=256)  # replays play the same recordings again and again
def _session_template(body: bytes) -> _SessionTemplate | None:
    document = parse_json(body)
    sid = resale_sid(document)
    if sid is None:
        return None
    times = document["fanSession"]["resaleSid"]
    start_like, expire_like = times["sessionStartTime"], times["sessionExpireTime"]
    start_mark, expire_mark = (f"tmproxy-{uuid.uuid4().hex}" for _ in range(2))
    times["sessionStartTime"], times["sessionExpireTime"] = start_mark, expire_mark
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    start_at, expire_at = text.index(f'"{start_mark}"'.encode()), text.index(f'"{expire_mark}"'.encode())
    marks = sorted([(start_at, len(start_mark) + 2), (expire_at, len(expire_mark) + 2)])
    (first_at, first_len), (second_at, second_len) = marks
    pieces = (text[:first_at], text[first_at + first_len : second_at], text[second_at + second_len :])
    return _SessionTemplate(
        pieces, start_at < expire_at, start_like, expire_like, sid.expire_ms - sid.start_ms
    )


def shift_session_document(document: Any, now: float) -> bool:
    """`shift_session_times` on a parsed body, in place; False when it has no usable resaleSid.

    Numbers stay numbers and numeric strings stay strings.
    """
    sid = resale_sid(document)
    if sid is None:
        return False
    times = document["fanSession"]["resaleSid"]
    start = to_epoch_ms(now)
    times["sessionStartTime"] = _like(times["sessionStartTime"], start)
    times["sessionExpireTime"] = _like(times["sessionExpireTime"], start + sid.expire_ms - sid.start_ms)
    return True


def shift_response_session(response: Response, now: float) -> Response:
    """`shift_session_times` on a response, with its Content-Length kept true."""
    body = shift_session_times(response.body, now)
    if body is response.body:
        return response
    headers = Headers(response.headers.items())
    if "Content-Length" in headers:
        headers.set("Content-Length", str(len(body)))
    return replace(response, body=body, headers=headers)
