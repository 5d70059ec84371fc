"""Ticketmaster's failures, provoked on purpose: which calls get one, and the answers that carry them.

`--fault KIND[:RATE]` asks for one kind of failure on a share RATE (0 to 1, default 1) of the calls it
can hit. Each answer has the shape Ticketmaster (and the sandbox, which shares the shape builders)
gives, plus an `X-Tmproxy-Fault` header naming the kind, so that neither the partner's developer
nor an audit mistakes it for Ticketmaster's:

| kind | calls | what the partner gets |
|---|---|---|
| `quota` | every call but OAuth | 429 with the quota fault body and `Ratelimit-*` headers; the partner's quota then stays exhausted until `Ratelimit-Expiry` (`reset` seconds later) |
| `polling` | may-poll cart calls answered below 300 | 202 `{polling_url, wait, cart_id}`; tmproxy serves the polling url: 202 again `extra_rounds` times, then upstream's answer |
| `niterun` | availability and cart calls | 503 with error 20001, the nightly maintenance window |
| `concurrent` | cart calls | 409 with error 90009 |
| `session-expiry` | Top Picks that sent `X-TM-SESSION-SID` and got that session back | the same session renewed: fresh times, `SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED` |
| `slow:SECONDS` | every upstream answer | held SECONDS before it reaches the partner |

Whether a call gets a fault is seeded chance: the n-th call of a route (method and path) for a kind
draws from a hash of (seed, kind, route, n). The same traffic with the same seed therefore gets the
same faults, even when unrelated calls interleave differently. Plain Python, no mitmproxy:
`addons/faults.py` applies the decisions.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

from .audit.partner_api import (
    FAULT_HEADER,
    announces_expired_session,
    cart_id_of,
    is_cart_path,
    is_oauth_call,
    named_session,
    reserved_cart_id,
)
from .clock import to_epoch_ms
from .exchange import Headers, Request, Response
from .replay import shift_session_document
from .sandbox.errors import SandboxError, concurrent_cart_call, ticketing_system_down
from .sandbox.quota import DEFAULT_QUOTA, QuotaStatus, quota_fault
from .ticketmaster import (
    is_availability_path,
    is_polling_path,
    mark_session_renewed,
    may_poll,
    polling_answer,
    polling_url,
    resale_sid,
    top_picks_event,
)

POLL_KEPT_S = 300.0
"""A polling url nobody fetched is forgotten after this long: Ticketmaster holds a cart 299 s."""


class FaultKind(enum.StrEnum):
    QUOTA = "quota"
    POLLING = "polling"
    NITERUN = "niterun"
    CONCURRENT = "concurrent"
    SESSION_EXPIRY = "session-expiry"
    SLOW = "slow"


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class FaultSpec:
    """One `--fault`: its kind, the share of eligible calls it hits, and the kind's settings."""

    kind: FaultKind
    rate: float = 1.0
    seconds: float = 0.0  # slow: how long an answer is held
    reset: float = 1.0  # quota: seconds from the 429 to Ratelimit-Expiry
    allowed: int = DEFAULT_QUOTA  # quota: Ratelimit-Quota-Allowed
    wait: float = 1.0  # polling: the 202's `wait`
    extra_rounds: int = 0  # polling: 202s the polling url answers before the real answer

    def __str__(self) -> str:
        """The spec as it is written, settings that differ from the defaults included."""
        head = f"{self.kind}:{_number_text(self.seconds if self.kind is FaultKind.SLOW else self.rate)}"
        default = FaultSpec(self.kind)
        named = [
            f"{name}={_number_text(getattr(self, name))}"
            for name in _SETTINGS[self.kind]
            if getattr(self, name) != getattr(default, name)
        ]
        if self.kind is FaultKind.SLOW and self.rate != 1:
            named.insert(0, f"rate={_number_text(self.rate)}")
        return ",".join([head, *named])


_SETTINGS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.QUOTA: ("reset", "allowed"),
    FaultKind.POLLING: ("wait", "extra_rounds"),
    FaultKind.NITERUN: (),
    FaultKind.CONCURRENT: (),
    FaultKind.SESSION_EXPIRY: (),
    FaultKind.SLOW: (),
}
_INTEGER_SETTINGS = frozenset({"allowed", "extra_rounds"})
FAULT_SYNTAX = "KIND[:RATE][,NAME=VALUE...] (slow:SECONDS[,rate=RATE])"


def parse_fault(text: str) -> FaultSpec:
    """`quota`, `quota:0.3`, `polling:0.5,wait=0,extra_rounds=2`, `slow:0.2`, `slow:2,rate=0.1`."""
    head, *settings = [part.strip() for part in text.strip().split(",")]
    name, _, value = head.partition(":")
    try:
        kind = FaultKind(name.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultSpecError(f"{text!r}: unknown fault {name!r}; known: {known}") from None
    given: dict[str, float] = {}
    if value:
        given["seconds" if kind is FaultKind.SLOW else "rate"] = _parse_number(text, "the value", value)
    allowed = {"rate", *_SETTINGS[kind]}
    for setting in settings:
        key, equals, raw = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or key not in allowed:
            names = ", ".join(sorted(allowed))
            raise FaultSpecError(f"{text!r}: {setting!r} is not a setting of {kind} (settings: {names})")
        if key in given:
            raise FaultSpecError(f"{text!r}: {key} given twice")
        given[key] = _parse_number(text, key, raw)
    if kind is FaultKind.SLOW and "seconds" not in given:
        raise FaultSpecError(f"{text!r}: slow needs the seconds to hold each answer, e.g. slow:0.5")
    return _checked(text, FaultSpec(kind, **{k: _typed(k, v) for k, v in given.items()}))


def _parse_number(text: str, what: str, raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise FaultSpecError(f"{text!r}: {what} must be a number, not {raw.strip()!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FaultSpecError(f"{text!r}: {what} must be a finite number")
    return number


def _typed(name: str, value: float) -> Any:
    return int(value) if name in _INTEGER_SETTINGS and value == int(value) else value


def _checked(text: str, spec: FaultSpec) -> FaultSpec:
    if not 0 <= spec.rate <= 1:
        raise FaultSpecError(f"{text!r}: the rate is a probability from 0 to 1, not {spec.rate:g}")
    for name in ("seconds", "reset", "wait"):
        if getattr(spec, name) < 0:
            raise FaultSpecError(f"{text!r}: {name} must be >= 0")
    for name in _INTEGER_SETTINGS:
        value = getattr(spec, name)
        if not isinstance(value, int) or value < (1 if name == "allowed" else 0):
            raise FaultSpecError(
                f"{text!r}: {name} must be a whole number >= {1 if name == 'allowed' else 0}"
            )
    return spec


def parse_faults(texts: Iterable[str]) -> list[FaultSpec]:
    """Several specs; each kind at most once."""
    specs: dict[FaultKind, FaultSpec] = {}
    for text in texts:
        spec = parse_fault(text)
        if spec.kind in specs:
            raise FaultSpecError(f"{spec.kind} given twice ({specs[spec.kind]} and {text})")
        specs[spec.kind] = spec
    return list(specs.values())


def _number_text(value: float) -> str:
    return f"{value:g}"


def new_seed() -> int:
    """A seed for a run that did not name one (shown, so that the run can be repeated)."""
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class Injected:
    """An answer tmproxy made or changed, with the fault it carries and what it did, for the log."""

    kind: FaultKind
    response: Response
    note: str


@dataclass
class _PendingPoll:
    accepted: Response
    final: Response
    rounds_left: int
    created_at: float


@dataclass
class FaultInjector:
    """One proxy's faults: the decisions, the quota windows it opened and the polling urls it serves.

    `answer` runs before a call goes upstream (the proxy's own answers), `rewrite` and `delay` on
    upstream's answer. A kind whose rate is 0 is never drawn.
    """

    specs: Sequence[FaultSpec] = ()
    seed: int = field(default_factory=new_seed)
    clock: Callable[[], float] = time.time
    injected: Counter[FaultKind] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._active = {spec.kind: spec for spec in self.specs if spec.rate > 0}
        self._draws: Counter[str] = Counter()
        self._quota_until: dict[str, float] = {}
        self._polls: dict[str, _PendingPoll] = {}
        self._renewed: set[str] = set()
        self._polled = 0  # polling urls given: their tokens follow from the seed, as the faults do
        self.answers_requests = bool(self._active.keys() & {*_REQUEST_KINDS, FaultKind.POLLING})
        self.rewrites_answers = rewrites_answers(self.specs)

    def describe(self) -> str:
        return " ".join(str(spec) for spec in self.specs) + f" (seed {self.seed})"

    def summary_line(self) -> str:
        kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(self.injected.items())) or "none"
        return f"faults injected: {self.injected.total()} ({kinds}); {self.describe()}"

    # ---- before upstream --------------------------------------------------------------------------

    def answer(self, request: Request, client_host: str) -> Injected | None:
        """The proxy's own answer to a call, or None to let it go upstream."""
        if not self.answers_requests:
            return None
        poll = self._own_poll(request)
        if poll is not None:
            return poll
        now = self.clock()
        for kind in _REQUEST_KINDS:
            spec = self._active.get(kind)
            if spec is None:
                continue
            if kind is FaultKind.QUOTA:
                injected = self._quota(spec, request, client_host, now)
            elif _hits(kind, request) and self._chance(kind, request):
                error = ticketing_system_down(503) if kind is FaultKind.NITERUN else concurrent_cart_call()
                injected = Injected(
                    kind, _error_response(kind, error), f"{error.http_status} error {error.code}"
                )
            else:
                injected = None
            if injected is not None:
                self.injected[kind] += 1
                return injected
        return None

    def _quota(self, spec: FaultSpec, request: Request, client_host: str, now: float) -> Injected | None:
        """Once a 429 is given, the partner's quota stays exhausted until its Ratelimit-Expiry."""
        if is_oauth_call(request):
            return None
        apikey = request.query_param("apikey") or request.headers.get("x-api-key") or ""
        holder = apikey or client_host
        until = self._quota_until.get(holder)
        if until is not None and now >= until:
            del self._quota_until[holder]
            until = None
        if until is None:
            if not self._chance(FaultKind.QUOTA, request):
                return None
            until = self._quota_until[holder] = to_epoch_ms(now + spec.reset) / 1000  # as the header says
        status = QuotaStatus(allowed=spec.allowed, available=0, expiry_ms=to_epoch_ms(until), exceeded=True)
        response = _json_response(429, quota_fault(apikey), FaultKind.QUOTA, status.headers())
        return Injected(FaultKind.QUOTA, response, f"429 quota exceeded for {until - now:.3g}s more")

    def _own_poll(self, request: Request) -> Injected | None:
        """A GET of a polling url this proxy gave: 202 again while rounds are left, then the real answer.

        Once the answer is given the url is forgotten; a later GET goes upstream, which does not know it.
        """
        path = request.path
        if request.method.upper() != "GET" or not is_polling_path(path):
            return None
        token = path.rstrip("/").rsplit("/", 1)[-1]
        pending = self._polls.get(token)
        if pending is None:
            return None
        self.injected[FaultKind.POLLING] += 1
        if pending.rounds_left > 0:
            pending.rounds_left -= 1
            return Injected(FaultKind.POLLING, pending.accepted, f"202 again ({pending.rounds_left} more)")
        del self._polls[token]
        final = pending.final
        return Injected(FaultKind.POLLING, final, f"{final.status}: upstream's answer, deferred")

    # ---- upstream's answer ------------------------------------------------------------------------

    def delay(self, request: Request) -> float:
        """Seconds to hold upstream's answer to this call (0: none)."""
        spec = self._active.get(FaultKind.SLOW)
        if spec is None or not self._chance(FaultKind.SLOW, request):
            return 0.0
        self.injected[FaultKind.SLOW] += 1
        return spec.seconds

    def rewrite(self, request: Request, response: Response, origin: str) -> Injected | None:
        """Upstream's answer deferred behind a polling url, or a Top Picks session expired; else None.

        `origin` is where the partner reaches the proxy (scheme://host:port): the polling url's.
        """
        if not self.rewrites_answers:
            return None
        polling = self._active.get(FaultKind.POLLING)
        renewable = self._renewable(request, response) if FaultKind.SESSION_EXPIRY in self._active else None
        if (
            polling is not None
            and _deferrable(request, response)
            and self._chance(FaultKind.POLLING, request)
        ):
            injected = self._defer(polling, request, response, origin)
        elif renewable is not None:
            injected = self._expire(renewable, response)
        else:
            return None
        self.injected[injected.kind] += 1
        return injected

    def _defer(self, spec: FaultSpec, request: Request, response: Response, origin: str) -> Injected:
        now = self.clock()
        for token in [t for t, p in self._polls.items() if now - p.created_at > POLL_KEPT_S]:
            del self._polls[token]
        self._polled += 1
        token = (
            hashlib.blake2b(f"{self.seed}|poll|{self._polled}".encode(), digest_size=16).hexdigest().upper()
        )
        cart_id = reserved_cart_id(response.json()) or cart_id_of(request)
        apikey = request.query_param("apikey")
        url = polling_url(origin, request.path, request.method, token, apikey, cart_id)
        wait: float = int(spec.wait) if spec.wait == int(spec.wait) else spec.wait
        accepted = _json_response(202, polling_answer(url, wait, cart_id), FaultKind.POLLING)
        final = _marked(response, FaultKind.POLLING)
        self._polls[token] = _PendingPoll(accepted, final, spec.extra_rounds, now)
        return Injected(FaultKind.POLLING, accepted, f"202 instead of {response.status}, wait {wait}s")

    def _renewable(self, request: Request, response: Response) -> str | None:
        """The session id of a Top Picks call that named its session and got it back unexpired, when
        chance says to renew it: Ticketmaster could have (rule 3 of the fan session). A session is
        renewed once; the renewal lasts."""
        if top_picks_event(request.path) is None or response.status != 200:
            return None
        sid = named_session(request)
        if sid is None or sid in self._renewed or announces_expired_session(response):
            return None
        answered = resale_sid(response.json())
        if (
            answered is None
            or answered.session_id != sid
            or not self._chance(FaultKind.SESSION_EXPIRY, request)
        ):
            return None
        return sid

    def _expire(self, sid: str, response: Response) -> Injected:
        """The same session renewed now, for its former lifetime, with the expired-session message."""
        document = response.json()
        shift_session_document(document, self.clock())
        headers = Headers(response.headers.items())
        for name, value in mark_session_renewed(document).items():
            headers.set(name, value)
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._renewed.add(sid)
        renewed = _marked(replace(response, headers=headers, body=body), FaultKind.SESSION_EXPIRY)
        return Injected(FaultKind.SESSION_EXPIRY, renewed, f"session {sid} renewed as expired")

    # ---- chance -----------------------------------------------------------------------------------

    def _chance(self, kind: FaultKind, request: Request) -> bool:
        """Seeded: the n-th call of this route for this kind draws from hash(seed, kind, route, n)."""
        rate = self._active[kind].rate
        if rate >= 1:
            return True
        path = request.path
        route = f"{kind}|{request.method.upper()}|{'polling' if is_polling_path(path) else path}"
        n = self._draws[route]
        self._draws[route] = n + 1
        digest = hashlib.blake2b(f"{self.seed}|{route}|{n}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < rate * 2**64


_REQUEST_KINDS = (FaultKind.QUOTA, FaultKind.NITERUN, FaultKind.CONCURRENT)
_RESPONSE_KINDS = frozenset({FaultKind.POLLING, FaultKind.SESSION_EXPIRY, FaultKind.SLOW})


def rewrites_answers(specs: Iterable[FaultSpec]) -> bool:
    """Whether these faults may hold or change upstream's answers (else the proxy needs no addon for it)."""
    return any(spec.rate > 0 and spec.kind in _RESPONSE_KINDS for spec in specs)


def _hits(kind: FaultKind, request: Request) -> bool:
    path = request.path
    if kind is FaultKind.NITERUN:
        return is_cart_path(path) or is_availability_path(path)
    return is_cart_path(path)


def _deferrable(request: Request, response: Response) -> bool:
    """Errors are never deferred (as the sandbox does), nor an answer that already polls."""
    return may_poll(request.method, request.path) and response.status < 300 and response.status != 202


def _json_response(
    status: int, body: dict[str, Any], kind: FaultKind, headers: dict[str, str] | None = None
) -> Response:
    fields_ = [("Content-Type", "application/json; charset=utf-8"), *(headers or {}).items()]
    fields_.append((FAULT_HEADER, str(kind)))
    return Response(status, Headers(fields_), json.dumps(body).encode(), HTTPStatus(status).phrase)


def _error_response(kind: FaultKind, error: SandboxError) -> Response:
    return _json_response(error.http_status, error.body(), kind)


def _marked(response: Response, kind: FaultKind) -> Response:
    """Upstream's answer as tmproxy serves it: the fault header added, the length true to the body."""
    headers = Headers(response.headers.items())
    headers.set(FAULT_HEADER, str(kind))
    if "Content-Length" in headers:
        headers.set("Content-Length", str(len(response.body)))
    return replace(response, headers=headers)
