"""In-process replay: a tmproxy cassette served to requests, urllib3, aiohttp and httpx with no proxy.

    with tmproxy.replay("cassettes/compliant.yaml") as cassette:
        requests.get("https://app.ticketmaster.com/top-picks/v1/events/2000527EE48A9334",
                     params={"apikey": "anything", "selection": "resale"})
    print(cassette.usage.summary_line())

vcrpy already patches those clients (`vcr.patch.CassettePatcherBuilder`); its stubs ask a cassette object
whether it can play a request, for the response, and to append what went live. `IndexCassette` is that
object over tmproxy's `ReplayIndex`: one dict lookup per request where vcrpy scans every interaction,
fan sessions shifted to now as the replay proxy does, a miss raised as `ReplayMiss` naming the closest
recordings, and recordings appended redacted by tmproxy's writer.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.patch import CassettePatcherBuilder
from vcr.request import Request as VcrRequest
from vcr.util import read_body

from .cassette import CassetteWriter, RedactionRules, Redactor, interaction_to_exchange
from .cassette.format import TMPROXY_KEY, body_from_yaml, request_to_dict, response_to_dict
from .cassette_cache import replay_index
from .exchange import Headers, Request
from .recording import CassettePlan, RecordMode, replayed_response
from .replay import EXHAUST, REPEAT_LAST, NearMissReport, OnExhausted, ReplayIndex, ReplayResult, ReplayUsage

F = TypeVar("F", bound=Callable[..., Any])


class ReplayMiss(CannotOverwriteExistingCassetteException):
    """A request the cassette has no response for, in a record mode that does not record it.

    A vcrpy `CannotOverwriteExistingCassetteException`, so suites that catch vcrpy's miss keep working;
    `report` is the near-miss report (the closest recordings and what differs), as the proxy's 404 has it.
    """

    def __init__(self, report: NearMissReport, cassette: IndexCassette, failed_request: VcrRequest) -> None:
        self.report = report
        self.cassette = cassette
        self.failed_request = failed_request
        self.similar_requests: list[Any] = []
        self.reason = "already_played" if report.exhausted else "no_match"  # vcrpy's names
        lines = [
            f"tmproxy replay: no recorded response for {report.method} {report.url}: {report.reason}",
            f"cassette {cassette.path} (record_mode {cassette.record_mode.value!r})",
        ]
        if report.candidates:
            lines.append("closest recordings:")
            lines += [f"  {n}. {c.describe()}" for n, c in enumerate(report.candidates, start=1)]
        lines.append("record it with record_mode='new_episodes', or change the request to match a recording")
        Exception.__init__(self, "\n".join(lines))


def _header_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _body_bytes(body: Any) -> bytes:
    """The request body as bytes. aiohttp's stub passes `json=`/`data=` objects as they were given:
    a mapping is taken as JSON (what Ticketmaster's APIs take), a list of pairs as a form."""
    if body is None or isinstance(body, bytes | str):
        return body_from_yaml(body)
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, list) and all(isinstance(f, tuple) and len(f) == 2 for f in body):
        return urlencode(body).encode("ascii")
    if isinstance(body, Mapping | list):
        return json.dumps(body).encode("utf-8")
    return repr(body).encode("utf-8")


def tm_request(request: VcrRequest) -> Request:
    """vcrpy's request as tmproxy's: what the index keys on and the writer stores."""
    headers = Headers((str(k), _header_value(v)) for k, v in request.headers.items())
    return Request(
        method=request.method, url=request.uri, headers=headers, body=_body_bytes(read_body(request))
    )


def vcr_response(result: ReplayResult, now: float) -> dict[str, Any]:
    """A recorded response as vcrpy's stubs build their client responses from it, the session shifted."""
    assert result.exchange is not None, "only a hit has a response"
    served = response_to_dict(replayed_response(result.exchange, now))
    body = served["body"]["string"]
    served["body"]["string"] = body.encode("utf-8") if isinstance(body, str) else body
    return served


class IndexCassette:
    """What vcrpy's stubs need of a `vcr.cassette.Cassette`, answered by tmproxy's index and writer.

    A stub may ask about one request more than once (urllib3 connects, then asks for the response), so
    each request's result is kept with it and the index plays it once.
    """

    skip_patchers: tuple[str, ...] = ()
    custom_patches: tuple[Any, ...] = ()

    def __init__(
        self,
        path: Path,
        record_mode: RecordMode,
        plan: CassettePlan,
        index: ReplayIndex,
        writer: CassetteWriter | None,
    ) -> None:
        self.path = path
        self._path = str(path)  # vcrpy names its patched classes after it
        self.record_mode = record_mode
        self.plan = plan
        self.index = index
        self.writer = writer
        self.recorded = 0
        self._results: weakref.WeakKeyDictionary[VcrRequest, ReplayResult] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @property
    def write_protected(self) -> bool:
        return self.writer is None

    def filter_request(self, request: VcrRequest) -> VcrRequest:
        return request

    def _result(self, request: VcrRequest) -> ReplayResult:
        with self._lock:
            result = self._results.get(request)
            if result is None:
                result = self._results[request] = self.index.play(tm_request(request))
        return result

    def can_play_response_for(self, request: VcrRequest) -> bool:
        """True for a hit; a miss goes live when the record mode records it, else raises `ReplayMiss`."""
        if not self.plan.replay:
            return False
        result = self._result(request)
        if result.hit:
            return True
        if self.writer is None:
            raise self._miss(request, result)
        return False

    def play_response(self, request: VcrRequest) -> dict[str, Any]:
        result = self._result(request)
        if not result.hit:
            raise self._miss(request, result)
        return vcr_response(result, time.time())

    def _miss(self, request: VcrRequest, result: ReplayResult) -> ReplayMiss:
        assert result.near_miss is not None, "a miss comes with its report"
        return ReplayMiss(result.near_miss, self, request)

    def find_requests_with_most_matches(
        self, request: VcrRequest
    ) -> list[tuple[VcrRequest, list[str], list[str]]]:
        """aiohttp's stub looks for the recording of a redirect's target: the index finds it by the request."""
        return [(request, [], [])]

    def append(self, request: VcrRequest, response: Mapping[str, Any]) -> None:
        """A live answer (record modes once on a new cassette, new_episodes, all), redacted and appended."""
        if self.writer is None:
            return
        now = time.time()
        interaction = {
            "request": request_to_dict(tm_request(request)),
            "response": response,
            TMPROXY_KEY: {"id": uuid.uuid4().hex, "started_at": now, "ended_at": now},
        }
        exchange, _ = interaction_to_exchange(interaction, self.recorded)
        if self.writer.append(exchange):
            with self._lock:
                self.recorded += 1


class InProcessReplay:
    """`replay(...)`: a context manager (giving itself) and a decorator for sync and async functions.

    Each `with` (or each call of a decorated function) loads the cassette afresh and patches the clients
    for its duration; `usage` and `recorded` tell what the last one served, missed and appended.
    """

    def __init__(
        self,
        cassette: str | Path,
        *,
        record_mode: RecordMode | str = RecordMode.NONE,
        repeat: OnExhausted = REPEAT_LAST,
        rules: RedactionRules | None = None,
    ) -> None:
        try:
            self.record_mode = RecordMode(record_mode)
        except ValueError:
            modes = ", ".join(m.value for m in RecordMode)
            raise ValueError(f"record_mode must be one of {modes}, not {record_mode!r}") from None
        if repeat not in (REPEAT_LAST, EXHAUST):
            raise ValueError(f"repeat must be {REPEAT_LAST!r} or {EXHAUST!r}, not {repeat!r}")
        self.path = Path(cassette)
        self.repeat = repeat
        self.rules = rules or RedactionRules()
        self._cassette: IndexCassette | None = None
        self._patches: contextlib.ExitStack | None = None

    def _fresh(self) -> InProcessReplay:
        return InProcessReplay(self.path, record_mode=self.record_mode, repeat=self.repeat, rules=self.rules)

    def _open(self) -> IndexCassette:
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if not exists and self.record_mode is RecordMode.NONE:
            raise FileNotFoundError(
                f"no cassette {self.path}: record it with record_mode='once' (record_mode is 'none')"
            )
        # from this process's cache: a suite replays the same cassettes test after test
        index = replay_index(self.path, self.rules, self.repeat) if exists else None
        plan = CassettePlan.for_record_mode(self.record_mode, bool(index))
        if index is None or not plan.replay:
            index = ReplayIndex([], rules=self.rules, on_exhausted=self.repeat)
        writer = None
        if plan.record:
            writer = CassetteWriter(
                self.path, metadata={"recorded_by": "tmproxy.replay"}, redactor=Redactor(self.rules)
            )
        return IndexCassette(self.path, self.record_mode, plan, index, writer)

    def __enter__(self) -> InProcessReplay:
        if self._patches is not None:
            raise RuntimeError(f"tmproxy.replay({str(self.path)!r}) is already in use: make a new one")
        cassette = self._open()
        patches = contextlib.ExitStack()
        if cassette.writer is not None:
            patches.callback(cassette.writer.close)
        try:
            for patcher in CassettePatcherBuilder(cassette).build():
                patches.enter_context(patcher)
        except BaseException:
            patches.close()
            raise
        self._cassette, self._patches = cassette, patches
        return self

    def __exit__(self, *exc: object) -> None:
        patches, self._patches = self._patches, None
        if patches is not None:
            patches.close()

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await function(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return function(*args, **kwargs)

        return cast(F, run)

    def _opened(self) -> IndexCassette:
        if self._cassette is None:
            raise RuntimeError("the cassette has not been used yet: enter `with tmproxy.replay(...)` first")
        return self._cassette

    @property
    def usage(self) -> ReplayUsage:
        """Served, repeats, misses, and the recorded interactions never asked for."""
        return self._opened().index.usage()

    @property
    def recorded(self) -> int:
        """Interactions appended to the cassette (record modes once on a new cassette, new_episodes, all)."""
        return self._opened().recorded


def replay(
    cassette: str | Path,
    *,
    record_mode: RecordMode | str = RecordMode.NONE,
    repeat: OnExhausted = REPEAT_LAST,
    rules: RedactionRules | None = None,
) -> InProcessReplay:
    """Serve `cassette` to requests, urllib3, aiohttp and httpx in this process (see the module doc).

    `record_mode`: vcrpy's meanings (`none` replays only; `once` records a missing cassette; `new_episodes`
    records misses; `all` records everything), recorded through tmproxy's redacting writer. `repeat`:
    after the last recording of a repeated request, serve it again (`repeat_last`) or miss (`exhaust`).
    """
    return InProcessReplay(cassette, record_mode=record_mode, repeat=repeat, rules=rules)
