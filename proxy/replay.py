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
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from proxy.cassette.errors import CassetteError
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
from proxy.replay_store import ExchangeStore, KeyParts, RecordStore, write_records
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

    def parts(self) -> KeyParts:
        return (self.method, self.host, self.path, self.query, self.body)


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


def _key_hash(key: KeyParts) -> int:
    """Python's hash, different in each process: the table is never stored."""
    return hash(key)


def _sorted_by_hash(hashes: array[int]) -> array[int]:
    """The positions in `hashes`, ordered by hash (equal hashes in position order). A bucket sort on
    the top bits, in arrays: `sorted` would hold two Python ints per recording at once, and the
    process kept most of the memory they took (measured: half a megabyte more for 10,000 recordings)."""
    count = len(hashes)
    shift = 64 - max(1, (count - 1).bit_length())
    buckets = array("q", bytes(8 * ((1 << (64 - shift)) + 1)))
    for h in hashes:
        buckets[((h + _UNSIGNED) >> shift) + 1] += 1
    buckets = array("q", accumulate(buckets))  # bucket b holds positions buckets[b] to buckets[b + 1]
    placed = array("q", buckets)
    ordered = array("q", bytes(8 * count))
    for position, h in enumerate(hashes):
        bucket = (h + _UNSIGNED) >> shift
        ordered[placed[bucket]] = position
        placed[bucket] += 1
    for bucket in range(len(buckets) - 1):
        first, last = buckets[bucket], buckets[bucket + 1]
        if last - first > 1:
            ordered[first:last] = array("q", sorted(ordered[first:last], key=hashes.__getitem__))
    return ordered


_UNSIGNED = 1 << 63  # hashes are signed; a bucket is the top bits of the hash as unsigned


@dataclass(frozen=True, slots=True)
class _KeyTable:
    """The recordings grouped by request key, found by the key's hash in sorted arrays: a few bytes per
    recording, where a dict of keys took hundreds. Key k's recordings, in recorded order, are
    `order[starts[k]:starts[k + 1]]`; `hashes[k]` is its hash (equal hashes are told apart by the key
    parts the store holds)."""

    hashes: array[int]
    starts: array[int]
    order: array[int]

    @classmethod
    def build(cls, entry_hashes: array[int], store: RecordStore) -> _KeyTable:
        count = len(entry_hashes)
        # At most one key per recording: made at that size, cut to the number of keys at the end.
        hashes = array("q", bytes(8 * count))
        starts, order = array("I", bytes(4 * count + 4)), array("I", bytes(4 * count))
        by_hash = _sorted_by_hash(entry_hashes)
        keys = placed = first = 0
        while first < count:
            h = entry_hashes[by_hash[first]]
            last = first + 1
            while last < count and entry_hashes[by_hash[last]] == h:
                last += 1
            if last - first == 1:
                groups: Iterable[list[int]] = ([by_hash[first]],)
            else:  # one request recorded again and again, or (rarely) different keys with one hash
                by_key: dict[KeyParts, list[int]] = {}
                for index in by_hash[first:last]:
                    by_key.setdefault(store.head(index)[0], []).append(index)
                groups = by_key.values()
            for group in groups:
                hashes[keys] = h
                starts[keys] = placed
                order[placed : placed + len(group)] = array("I", group)
                keys += 1
                placed += len(group)
            first = last
        starts[keys] = placed
        del hashes[keys:], starts[keys + 1 :]
        return cls(hashes, starts, order)

    def __len__(self) -> int:
        return len(self.hashes)

    def candidates(self, key: KeyParts) -> range:
        """The key numbers whose hash is this key's."""
        h = _key_hash(key)
        first = bisect_left(self.hashes, h)
        last = first
        while last < len(self.hashes) and self.hashes[last] == h:
            last += 1
        return range(first, last)

    def recordings(self, number: int) -> int:
        return self.starts[number + 1] - self.starts[number]

    def firsts(self) -> list[int]:
        """The first recording of each key, in recorded order."""
        return sorted(self.order[start] for start in self.starts[:-1])


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
        store = ExchangeStore()
        hashes = array("q")
        for key, exchange in _keyed(exchanges, self.rules, hashes):
            store.append(key, exchange)
        self._use(store, _KeyTable.build(hashes, store))

    def _use(self, store: RecordStore, keys: _KeyTable) -> None:
        """Play on these recordings, with nothing played yet."""
        self._store = store
        self._keys = keys
        self._played = array("I", bytes(4 * len(keys)))  # plays of each key
        self._served = array("I", bytes(4 * len(store)))  # plays of each recording
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
        """The index of a cassette file, built as it is read: each interaction is converted, written to
        the index's temporary file (`RecordFile`) and let go, so neither every exchange nor every key is
        ever in memory. Raises CassetteError as `load_cassette` does, and when the temporary file
        cannot be written."""
        stream = cassette if isinstance(cassette, CassetteStream) else open_cassette(cassette)
        index = cls((), rules=rules, on_exhausted=on_exhausted, near_miss_limit=near_miss_limit,
                    near_miss_scan=near_miss_scan)  # fmt: skip
        hashes = array("q")
        exchanges = (exchange for exchange, _ in stream.interactions)
        try:
            store = write_records(_keyed(exchanges, index.rules, hashes))
        except OSError as exc:
            raise CassetteError(
                f"cannot keep its recordings in a temporary file: {exc}", stream.path
            ) from None
        index._use(store, _KeyTable.build(hashes, store))
        return index

    def __len__(self) -> int:
        return len(self._store)

    def fresh(self, on_exhausted: OnExhausted | None = None) -> ReplayIndex:
        """An index over the same recordings with nothing played yet: a session proxy's tests each get
        one from a cached index, without reading the cassette again. The recordings are shared."""
        copy = ReplayIndex((), rules=self.rules, on_exhausted=on_exhausted or self.on_exhausted,
                           near_miss_limit=self.near_miss_limit, near_miss_scan=self.near_miss_scan)  # fmt: skip
        copy._use(self._store, self._keys)
        return copy

    def recorded_urls(self) -> Iterator[str]:
        """The URL of each recorded request, in recorded order (to infer the upstream)."""
        return (self._store.head(index)[3] for index in range(len(self._store)))

    def play(self, request: Request) -> ReplayResult:
        """The next recorded exchange for this request, or a miss with its near-miss report."""
        parts = request_key(request, self.rules).parts()
        recorded = 0  # recordings of this request, when it was recorded
        with self._lock:
            for number in self._keys.candidates(parts):
                index = self._next(number)
                first = self._keys.order[self._keys.starts[number]]
                stored, exchange = self._store.entry(first if index is None else index)
                if stored != parts:  # another key with the same hash
                    continue
                if index is None:
                    recorded = self._keys.recordings(number)
                    break
                self._played[number] += 1
                self._served[index] += 1
                return ReplayResult(exchange, repeated=self._served[index] > 1)
            self._misses += 1
        if recorded:
            reason = f"all {recorded} recorded responses for this request were already played"
        else:
            reason = "no recorded request matches"
        report = self.near_miss(request, reason, exhausted=bool(recorded))
        log.info("%s", report.summary_line())
        return ReplayResult(None, near_miss=report)

    def _next(self, number: int) -> int | None:
        """The recording key `number` plays next (the caller counts the play), None when exhausted."""
        position = self._played[number]
        count = self._keys.recordings(number)
        if position >= count:
            if self.on_exhausted == EXHAUST:
                return None
            position = count - 1
        return self._keys.order[self._keys.starts[number] + position]

    def near_miss(
        self, request: Request, reason: str = "no recorded request matches", exhausted: bool = False
    ) -> NearMissReport:
        """The closest recorded requests and how each differs from this one (does not count as a play)."""
        key = request_key(request, self.rules)
        ranked = heapq.nsmallest(
            self.near_miss_limit,
            (_candidate(recorded, line, key) for recorded, line in self._keys_to_rank(key)),
            key=lambda c: c.distance,
        )
        url = redact_url(request.url, self.rules, set())
        return NearMissReport(request.method, url, reason, tuple(ranked), exhausted)

    def _keys_to_rank(self, key: RequestKey) -> list[tuple[RequestKey, RequestLine]]:
        """Distinct recorded keys, each with its first recording's request line, read back from the store:
        those with the request's path first, then the others, in recorded order; `near_miss_scan` at most."""
        same_path: list[tuple[RequestKey, RequestLine]] = []
        others: list[tuple[RequestKey, RequestLine]] = []
        for index in self._keys.firsts():
            parts, exchange_id, method, url = self._store.head(index)
            kept = same_path if parts[2] == key.path else others
            if len(kept) < self.near_miss_scan:
                kept.append((RequestKey(*parts), (exchange_id, method, url)))
        return same_path + others[: max(0, self.near_miss_scan - len(same_path))]

    def usage(self) -> ReplayUsage:
        with self._lock:
            served = self._served.tolist()
            misses = self._misses
        return ReplayUsage(
            recorded=len(self._store),
            served=sum(served),
            repeats=sum(n - 1 for n in served if n),
            misses=misses,
            unused=tuple(self._store.entry(i)[1] for i, n in enumerate(served) if not n),
        )


RequestLine = tuple[str, str, str]
"""A recording's id, method and URL."""


def _keyed(
    exchanges: Iterable[Exchange], rules: RedactionRules, hashes: array[int]
) -> Iterator[tuple[KeyParts, Exchange]]:
    """The exchanges with a response, each after its key parts, whose hashes are appended to `hashes`."""
    for exchange in exchanges:
        if exchange.response is not None:
            parts = request_key(exchange.request, rules).parts()
            hashes.append(_key_hash(parts))
            yield parts, exchange


def _candidate(recorded: RequestKey, line: RequestLine, requested: RequestKey) -> Candidate:
    distance, diff = key_differences(recorded, requested)
    return Candidate(*line, distance, diff)


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
