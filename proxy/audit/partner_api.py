"""What the audit rules need to know about Partner API, OAuth and quota traffic.

Plain functions over requests, responses and parsed JSON, beside `proxy.ticketmaster` (which holds
the Fan Session and cart vocabulary shared with the sandbox). Sources: ticketmaster-api-notes.md
and partner-api-faq.txt.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ..exchange import Exchange, Request, Response
from ..ticketmaster import (
    SESSION_EXPIRED_MESSAGE,
    SESSION_HEADER,
    CartCall,
    cart_event,
    classify_cart_call,
    is_polling_path,
    top_picks_event,
)

RATE_LIMIT_STATUS = 429
RATELIMIT_EXPIRY_HEADER = "Ratelimit-Expiry"
RETRY_AFTER_HEADER = "Retry-After"
DEFAULT_QUOTA_WINDOW_S = 60.0
"""Without Ratelimit-Expiry or Retry-After, a 429 blocks for one minute: the quota is per minute."""
FAULT_HEADER = "X-Tmproxy-Fault"
"""Names the fault on an answer tmproxy injected (`--fault`, see `proxy.faults`)."""

_OAUTH_TOKEN_PATH = re.compile(r"/oauth/token/?$", re.IGNORECASE)
_PLAIN_CARD_NUMBER = re.compile(r"^\d{12,19}$")
_PLAIN_CIN = re.compile(r"^\d{3,4}$")
_CARD_SEPARATORS = re.compile(r"[\s-]")
_MAX_JSON_DEPTH = 64

T = TypeVar("T")


class RequestKind(enum.Enum):
    """What a request is to the rules, told from its method and path alone: each rule says which kinds
    it judges (`Rule.request_kinds`, `Rule.response_kinds`), so most requests meet only a few rules."""

    TOP_PICKS = "top picks"
    CART = "cart"  # any call under /events/{id}/cart
    POLLING = "polling"  # under /partners/v1/polling/
    OAUTH = "oauth"
    OTHER = "other"  # any other call: another Partner API call, or one whose URL a 202 named
    STATIC = "static"  # GET or HEAD of a file: script, style, image, font, page


ALL_KINDS = frozenset(RequestKind)
CALLS = ALL_KINDS - {RequestKind.STATIC}
"""What a rule judges unless it says otherwise: everything but static files, which carry no API call
(a polling url, a quota, a token or a card never comes as a .js or a .png)."""
STATIC_SUFFIXES = (
    ".js", ".mjs", ".css", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico",
    ".bmp", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".html", ".htm", ".wasm", ".mp3", ".mp4", ".webm",
)  # fmt: skip


def request_kind(method: str, path: str) -> RequestKind:
    """The kind of a request with this method and path (without its query)."""
    if top_picks_event(path) is not None:
        return RequestKind.TOP_PICKS
    if is_cart_path(path):
        return RequestKind.CART
    if is_polling_path(path):
        return RequestKind.POLLING
    lowered = path.lower()
    if "/oauth" in lowered:
        return RequestKind.OAUTH
    if method.upper() in ("GET", "HEAD") and lowered.endswith(STATIC_SUFFIXES):
        return RequestKind.STATIC
    return RequestKind.OTHER


def injected_fault(response: Response | None) -> str | None:
    """The fault tmproxy injected into an answer; None for the upstream's own answer."""
    return response.headers.get(FAULT_HEADER) if response is not None else None


def announces_expired_session(response: Response) -> bool:
    """SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED anywhere in an answer: where Ticketmaster puts it
    is not documented, so any header value or any part of the body."""
    if any(SESSION_EXPIRED_MESSAGE in value for _, value in response.headers):
        return True
    return SESSION_EXPIRED_MESSAGE.encode() in response.body


def named_session(request: Request) -> str | None:
    """The one session id a call names in X-TM-SESSION-SID (blank is none; several different, none)."""
    named = {v.strip() for v in request.headers.get_all(SESSION_HEADER) if v.strip()}
    return named.pop() if len(named) == 1 else None


def is_cart_path(path: str) -> bool:
    """Any Partner API path under /events/{id}/cart (reserve, commit, release, shipping, payment)."""
    return cart_event(path) is not None


def cart_id_of(request: Request) -> str | None:
    """The cart a commit or release names: `cart_id` in the query, else in a JSON body."""
    from_query = request.query_param("cart_id")
    if from_query:
        return from_query
    return _cart_id_field(request.json())


def reserved_cart_id(body: Any) -> str | None:
    """The `cart_id` of a reserve (or polling) answer."""
    return _cart_id_field(body)


def _cart_id_field(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    value = body.get("cart_id")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True)
class PollingInstruction:
    """A 202 answer: come back to `url` after `wait` seconds."""

    url: str
    wait: float
    cart_id: str | None


def polling_instruction(response: Response) -> PollingInstruction | None:
    """The polling instruction of a 202 `{"polling_url", "wait", "cart_id"}`, or None."""
    if response.status != 202:
        return None
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("polling_url"), str):
        return None
    wait = _number(body.get("wait"))
    if wait is None:
        return None
    return PollingInstruction(url=body["polling_url"], wait=wait, cart_id=_cart_id_field(body))


class PendingPolls(Generic[T]):
    """What to remember about each polling URL until it is fetched.

    A poll matches its 202 by path and query (sorted, without `apikey`): the host may differ
    between recording and replay, and the partner adds its own apikey. Looked up by path first,
    so that the many requests that are not polls cost one dict lookup.
    """

    def __init__(self) -> None:
        self._by_path: dict[str, dict[tuple[tuple[str, str], ...], T]] = {}

    def add(self, url: str, value: T) -> None:
        path, query = url_key(url)
        self._by_path.setdefault(path, {})[query] = value

    def pop(self, url: str) -> T | None:
        """The value remembered for this URL, forgotten from now on; None when it is not awaited."""
        if not self._by_path:  # nearly always: no poll awaited, no URL to split
            return None
        path = urlsplit(url).path
        waiting = self._by_path.get(path)
        if waiting is None:
            return None
        value = waiting.pop(url_key(url)[1], None)
        if not waiting:
            del self._by_path[path]
        return value

    def remaining(self) -> list[T]:
        """What is still awaited, in the order it was added per path."""
        return [value for waiting in self._by_path.values() for value in waiting.values()]


class ReserveAnswers:
    """A reserve's final answer, given at once or at the end of its polling (a 202, then GETs)."""

    def __init__(self) -> None:
        self._polled: PendingPolls[Exchange] = PendingPolls()

    def final(self, exchange: Exchange) -> tuple[Exchange, Any] | None:
        """`(the reserve, its parsed 200 body)` when this response ends a reserve; else None."""
        response = exchange.response
        if response is None:
            return None
        reserve = exchange
        if exchange.request.method.upper() == "GET":
            reserve = self._polled.pop(exchange.request.url) or exchange
        if classify_cart_call(reserve.request.method, reserve.request.path) is not CartCall.RESERVE:
            return None
        instruction = polling_instruction(response)
        if instruction is not None:
            self._polled.add(instruction.url, reserve)
            return None
        return (reserve, response.json()) if response.status == 200 else None


def url_key(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A URL as the partner's calls are compared: path and sorted query, without `apikey` (the host
    differs between recording and replay, and each partner adds its own key)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return parts.path, tuple(sorted((k, v) for k, v in query if k != "apikey"))


def is_token_request(request: Request) -> bool:
    """An OAuth token grant: `POST .../oauth/token`."""
    return request.method.upper() == "POST" and bool(_OAUTH_TOKEN_PATH.search(request.path))


def is_oauth_call(request: Request) -> bool:
    return "/oauth" in request.path.lower()


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: float


def issued_token(response: Response) -> IssuedToken | None:
    """The access token and lifetime of a successful token response."""
    if response.status != 200:
        return None
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        return None
    expires_in = _number(body.get("expires_in"))
    if expires_in is None:
        return None
    return IssuedToken(access_token=body["access_token"], expires_in=expires_in)


def quota_reset_at(response: Response, received_at: float) -> tuple[float, str]:
    """When a 429's quota resets (epoch seconds) and which header said so.

    `Ratelimit-Expiry` (UTC epoch ms) first, then `Retry-After` (seconds or an HTTP date), else
    `DEFAULT_QUOTA_WINDOW_S` after the response.
    """
    expiry_ms = _number(response.headers.get(RATELIMIT_EXPIRY_HEADER))
    if expiry_ms is not None:
        return expiry_ms / 1000, RATELIMIT_EXPIRY_HEADER
    retry_after = _retry_after(response.headers.get(RETRY_AFTER_HEADER), received_at)
    if retry_after is not None:
        return retry_after, RETRY_AFTER_HEADER
    return received_at + DEFAULT_QUOTA_WINDOW_S, "default"


def _retry_after(value: str | None, received_at: float) -> float | None:
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return received_at + seconds
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _number(value: Any) -> float | None:
    """A non-negative number from a JSON number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and value >= 0 and value == value and value != float("inf"):
        return float(value)
    return None


@dataclass(frozen=True)
class CardField:
    """A field of a `card` object found in a body: `where` is its dotted path, e.g. payment.card.number."""

    where: str
    name: str
    value: Any


def card_fields(body: Any) -> Iterator[CardField]:
    """Every field of every object held under a `card` key, anywhere in a parsed JSON body."""
    for where, key, value in json_fields(body):
        if key == "card" and isinstance(value, dict):
            for name, field_value in value.items():
                yield CardField(where=f"{where}.{name}", name=str(name), value=field_value)


def plain_card_value(field: CardField) -> bool:
    """A card number (12-19 digits) or security code (3-4 digits) sent as plain digits, not ciphertext."""
    if isinstance(field.value, bool) or not isinstance(field.value, str | int):
        return False
    digits = _CARD_SEPARATORS.sub("", str(field.value))
    if field.name == "number":
        return bool(_PLAIN_CARD_NUMBER.match(digits))
    if field.name == "cin":
        return bool(_PLAIN_CIN.match(digits))
    return False


def json_fields(value: Any, where: str = "", depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """Every `(dotted path, key, value)` of the objects in a parsed JSON body, depth-first."""
    if depth > _MAX_JSON_DEPTH:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{where}.{key}" if where else str(key)
            yield path, str(key), child
            yield from json_fields(child, path, depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from json_fields(child, f"{where}[{index}]", depth + 1)


def form_fields(request: Request) -> list[tuple[str, str]]:
    """The fields of a form-encoded body (OAuth token grants are forms)."""
    content_type = (request.headers.get("Content-Type") or "").lower()
    if "x-www-form-urlencoded" not in content_type and not is_oauth_call(request):
        return []
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if text.lstrip().startswith(("{", "[")):
        return []
    return parse_qsl(text, keep_blank_values=True)
