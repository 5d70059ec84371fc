"""Redaction: the secrets of an exchange replaced by placeholders before anything is written.

Three layers, from precise to paranoid:
1. structured rules: the `apikey` query parameter, secret headers, cookies, OAuth fields in query strings,
   form and JSON bodies, card data in JSON bodies, plus extra names and regexes from `RedactionRules`;
2. the scrub: every secret value seen so far (in memory only; access tokens until they have expired,
   see `Redactor`) is replaced wherever else it turns up, raw, URL-encoded or JSON-escaped (e.g. the
   apikey echoed in a 429 fault string);
3. the canary (`Redactor.check`): the writer's last look at the serialized text, which raises
   `SecretLeakError` instead of writing a secret.

Every placeholder is the string `REDACTED` (`PLACEHOLDER`), so a vcrpy user matches a redacted cassette
with `filter_query_parameters=[("apikey", "REDACTED")]`.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import accumulate
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote_plus

from proxy.cassette.errors import SecretLeakError
from proxy.cassette.format import decoded_exchange
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.findings import Finding

log = logging.getLogger(__name__)

PLACEHOLDER = "REDACTED"
MIN_SECRET_LENGTH = 6
MAX_JSON_DEPTH = 100
"""JSON nested deeper than this cannot be walked safely (recursion); what lies deeper is replaced whole."""


def is_redacted(value: str) -> bool:
    """True for a value that a redacting recorder replaced: empty, or starting with the placeholder."""
    return not value.strip() or value.strip().upper().startswith(PLACEHOLDER)


def normalize_name(name: str) -> str:
    """Names compared without case, `-` or `_`: `access_token`, `accessToken`, `Access-Token` are one."""
    return name.lower().replace("_", "").replace("-", "")


def _names(*names: str) -> frozenset[str]:
    return frozenset(normalize_name(n) for n in names)


# Secret wherever they appear: query strings, form bodies, JSON bodies at any depth.
SECRET_FIELDS = _names(
    "apikey", "client_secret", "access_token", "refresh_token", "id_token", "encryption_key", "password"
)
# `code` is the OAuth authorization code in a query string or form body; in JSON it is usually an
# error code (`{"error": {"code": 20052}}`), so there it is secret only in an OAuth payload.
OAUTH_CODE = "code"
OAUTH_MARKERS = _names("grant_type", "client_id", "redirect_uri")
# Card data is secret inside an object under a `card` key; `number` elsewhere is e.g. a page number.
CARD_KEYS = _names("card", "cards")
CARD_FIELDS = _names("number", "cin")
SECRET_HEADERS = frozenset({"x-api-key"})
AUTHORIZATION_HEADERS = frozenset({"authorization", "proxy-authorization"})

_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_LOOKS_LIKE_FORM = re.compile(rb"^[\w.%+\-\[\]]+=[^&\s]*(?:&[\w.%+\-\[\]]+=[^&\s]*)*$")
_LOOKS_LIKE_JSON = re.compile(rb"\s*[\[{]")


@dataclass(frozen=True)
class RedactionRules:
    """Redaction beyond the built-in rules, as the configuration asks; the built-in rules always apply.

    `headers`: header names replaced whole. `query_params`: query parameter names. `fields`: JSON keys
    (any depth) and form field names. `patterns`: regexes whose matches are replaced in URLs, header
    values and text bodies. `scrub_seen_values`: replace known secret values wherever else they appear.
    `min_secret_length`: shorter values (and plain words under 16 letters) are never scrubbed or
    searched for, since they would hit ordinary text.
    """

    headers: frozenset[str] = frozenset()
    query_params: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()
    scrub_seen_values: bool = True
    min_secret_length: int = MIN_SECRET_LENGTH

    @classmethod
    def build(
        cls,
        headers: Iterable[str] = (),
        query_params: Iterable[str] = (),
        fields: Iterable[str] = (),
        patterns: Iterable[str | re.Pattern[str]] = (),
        scrub_seen_values: bool = True,
        min_secret_length: int = MIN_SECRET_LENGTH,
    ) -> RedactionRules:
        """Rules from plain configuration values (lists of names, regex strings)."""
        return cls(
            headers=frozenset(headers),
            query_params=frozenset(query_params),
            fields=frozenset(fields),
            patterns=tuple(re.compile(p) for p in patterns),
            scrub_seen_values=scrub_seen_values,
            min_secret_length=min_secret_length,
        )

    @cached_property
    def secret_headers(self) -> frozenset[str]:
        return SECRET_HEADERS | {h.lower() for h in self.headers}

    @cached_property
    def secret_params(self) -> frozenset[str]:
        """Query parameters and form fields redacted (normalized names)."""
        extra = {normalize_name(n) for n in (*self.query_params, *self.fields)}
        return SECRET_FIELDS | {OAUTH_CODE} | extra

    @cached_property
    def secret_fields(self) -> frozenset[str]:
        """JSON keys redacted at any depth (normalized names)."""
        return SECRET_FIELDS | {normalize_name(n) for n in self.fields}


_MASKING_RULES = RedactionRules()


@dataclass(frozen=True)
class Secret:
    """A value removed from traffic, and the kind of field it was in (safe to print; the value is not)."""

    kind: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class Redacted:
    exchange: Exchange
    secrets: frozenset[Secret]
    lifetimes: Mapping[str, float] = field(default_factory=dict)
    """Access tokens this exchange issued with a sure `expires_in`, and that many seconds."""


def looks_secret(value: str, min_length: int = MIN_SECRET_LENGTH) -> bool:
    """Worth searching for elsewhere: long enough, not the placeholder, not a plain short word."""
    if len(value) < min_length or value == PLACEHOLDER:
        return False
    return not (value.isalpha() and len(value) < 16)


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def utf8_of(text: str) -> bytes:
    """The bytes a text came from: a header's undecodable bytes come back as they were (surrogateescape);
    a lone surrogate a JSON escape made (`"\\ud800"`) is kept as UTF-8 would spell it, though no valid
    UTF-8 does: either way a secret holding one is still remembered, never a reason to fail."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def encoded_forms(value: str) -> set[str]:
    """The ways a value can appear in a URL, a form, a JSON string or a YAML single-quoted scalar."""
    raw = utf8_of(value)
    forms = {value, quote(raw), quote(raw, safe=""), quote_plus(raw)}
    forms |= {_lower_percent(f) for f in forms}
    forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(value.replace("'", "''"))
    return forms


_FLOAT_TEXT = re.compile(r"-?(?:\d+\.\d+(?:e[+-]\d+)?|\d+e[+-]\d+|inf|nan)")


class _GramTier:
    """Forms at least `size + stride - 1` long, told absent from a text without searching each one.

    A form can only occur inside a run of characters that forms have (their alphabet) at least
    `min_length` long; such runs are found in C (`bytes.translate` marks the text, `bytes.find` looks
    for `min_length` marks in a row), and in typical text (JSON, headers, URLs) there are few or none.
    A form occurring in a run covers a position of the run that is a multiple of `stride` from its
    start, at one of its first `stride` offsets; so each form is known by the `stride` grams of `size`
    characters starting there, and a run by its grams at those positions. No common gram: none of the
    forms occurs. The grams live in one dict (with how many forms have each, to forget them), so adding
    or forgetting a form touches `stride` entries, and the probes are few whatever the number of forms:
    the dict, megabytes once thousands of forms are known, stays out of the CPU cache of most appends.
    While it holds up to `FEW` forms, `_FormFilter` searches them one by one instead.
    """

    FEW = 6  # searching 6 forms one by one costs what marking the text for runs does (3 µs in 4 KB)

    __slots__ = ("size", "stride", "forms", "grams", "_codes", "_marks")

    def __init__(self, size: int, stride: int) -> None:
        self.size = size
        self.stride = stride
        self.forms: dict[Any, None] = {}
        self.grams: dict[Any, int] = {}  # gram -> how many forms have it
        self._codes: dict[int, int] = {}  # ASCII character or byte -> how many forms have it
        self._marks: bytes | None = None  # translation table: 1 for those codes, 0 for others; None: stale

    @property
    def min_length(self) -> int:
        return self.size + self.stride - 1

    def add(self, form: Any) -> None:
        self.forms[form] = None
        grams = self.grams
        for i in range(self.stride):
            gram = form[i : i + self.size]
            grams[gram] = grams.get(gram, 0) + 1
        codes = self._codes
        for code in _alphabet(form):
            if code not in codes:
                codes[code] = 0
                self._marks = None
            codes[code] += 1

    def remove(self, form: Any) -> None:
        del self.forms[form]
        grams = self.grams
        for i in range(self.stride):
            gram = form[i : i + self.size]
            if grams[gram] == 1:
                del grams[gram]
            else:
                grams[gram] -= 1
        codes = self._codes
        for code in _alphabet(form):
            if codes[code] == 1:
                del codes[code]
                self._marks = None
            else:
                codes[code] -= 1

    def _runs(self, data: bytes) -> Iterator[tuple[int, int]]:
        """Start and end of each run of `data` at least `min_length` long whose every byte some form has."""
        if self._marks is None:
            self._marks = bytes(int(code in self._codes) for code in range(256))
        marked = data.translate(self._marks)
        enough = b"\x01" * self.min_length
        start = marked.find(enough)
        while start >= 0:  # the first `enough` after a 0 starts a run
            end = marked.find(b"\x00", start + len(enough))
            end = len(marked) if end < 0 else end
            yield start, end
            start = marked.find(enough, end)

    def grams_shared(self, text: Any, data: bytes | None) -> bool:
        """Whether `text` may hold a form: False when none occurs.

        `data`: `text` as bytes with the same positions (the text if bytes, an ASCII str encoded), or
        None (a str beyond ASCII), then every position of the text is a run's.
        """
        size, stride = self.size, self.stride
        if data is None:
            grams = {text[i : i + size] for i in range(0, len(text), stride)}
        else:
            grams = {text[i : i + size] for start, end in self._runs(data) for i in range(start, end, stride)}
        return not self.grams.keys().isdisjoint(grams)


def _alphabet(form: str | bytes) -> set[int]:
    """The characters of a form that an ASCII text can hold, or its bytes (see `_GramTier._runs`)."""
    return set(form.encode("ascii", "ignore") if isinstance(form, str) else form)


def _bytes_at_same_positions(text: str | bytes) -> bytes | None:
    """The text as bytes whose positions are its own (a bytes text, an ASCII str), else None."""
    if isinstance(text, str):
        return text.encode("ascii") if text.isascii() else None
    return text


class _FormFilter:
    """A fast test that none of many secret forms occurs in a text (str or bytes, not both).

    Long forms go to gram tiers (`_GramTier`); the short ones, and those of a tier while it holds at
    most `_GramTier.FEW`, are searched one by one.
    """

    TIERS = ((8, 24), (6, 10))  # (gram size, stride): forms of 31+ characters, then of 15+

    __slots__ = ("tiers", "short", "_searched", "_by_grams")

    def __init__(self) -> None:
        self.tiers = tuple(_GramTier(*t) for t in self.TIERS)
        self.short: dict[Any, None] = {}
        self._searched: tuple[Any, ...] | None = ()  # the forms searched one by one; None: to regroup
        self._by_grams: tuple[_GramTier, ...] = ()  # the tiers told by their grams

    def _place(self, form: Any) -> _GramTier | dict[Any, None]:
        return next((tier for tier in self.tiers if len(form) >= tier.min_length), self.short)

    def add(self, form: Any) -> None:
        place = self._place(form)
        if isinstance(place, _GramTier):
            place.add(form)
        else:
            place[form] = None
        self._searched = None

    def remove(self, form: Any) -> None:
        place = self._place(form)
        if isinstance(place, _GramTier):
            place.remove(form)
        else:
            del place[form]
        self._searched = None

    def _regroup(self) -> tuple[Any, ...]:
        few = [tier for tier in self.tiers if len(tier.forms) <= tier.FEW]
        self._searched = (*self.short, *(form for tier in few for form in tier.forms))
        self._by_grams = tuple(tier for tier in self.tiers if tier not in few)
        return self._searched

    def may_occur(self, text: Any) -> bool:
        """False only when none of the forms occurs in `text`."""
        for form in self._searched if self._searched is not None else self._regroup():
            if form in text:
                return True
        if not self._by_grams:
            return False
        data = _bytes_at_same_positions(text)
        for tier in self._by_grams:  # noqa: SIM110 - any() and a generator cost more than these few tests
            if tier.grams_shared(text, data):
                return True
        return False


class SecretMatcher:
    """Finds and replaces known secret values, in every encoding `encoded_forms` lists.

    A text holding no secret (nearly every text) is told apart by `_FormFilter` at a cost that hardly grows
    with the number of secrets known; only a text that may hold one is searched form by form, longest
    first (so that a form is replaced before any shorter form inside it), forms of one length in the
    order they were learnt. Secrets can be added and forgotten; not thread-safe (`Redactor` locks).
    """

    def __init__(self, secrets: Iterable[Secret] = (), min_length: int = MIN_SECRET_LENGTH) -> None:
        self.min_length = min_length
        self.values: dict[str, tuple[str, ...]] = {}  # value -> its forms (`encoded_forms`)
        self._float_like = 0  # values that could be `str()` of a float, whatever JSON spelled it
        self._kinds: dict[str, str] = {}
        self._owners: dict[str, int] = {}  # form -> how many known values have it
        self._by_length: dict[int, dict[str, bytes]] = {}  # form -> its UTF-8 bytes
        self._lengths: list[int] | None = []  # descending; None when to be sorted again
        self._filter = _FormFilter()
        self._byte_filter = _FormFilter()
        self._clear: deque[bytes] = deque(maxlen=4)  # bodies known to hold no form (see `note_clear`)
        self.add(secrets)

    @property
    def float_like_values(self) -> bool:
        return self._float_like > 0

    def add(self, secrets: Iterable[Secret]) -> None:
        """Learn these secrets (values already known are left as they are)."""
        for secret in secrets:
            value = secret.value
            if value in self.values or not looks_secret(value, self.min_length):
                continue
            forms = self.values[value] = tuple(encoded_forms(value))
            self._float_like += bool(_FLOAT_TEXT.fullmatch(value))
            for form in forms:
                owners = self._owners.get(form, 0)
                self._owners[form] = owners + 1
                if owners:
                    continue
                self._kinds[form] = secret.kind
                encoded = utf8_of(form)
                self._by_length.setdefault(len(form), {})[form] = encoded
                self._lengths = None
                self._filter.add(form)
                self._byte_filter.add(encoded)
                self._clear.clear()

    def forget(self, value: str) -> None:
        """Stop looking for a value (and the forms no other known value shares)."""
        forms = self.values.pop(value, None)
        if forms is None:
            return
        self._float_like -= bool(_FLOAT_TEXT.fullmatch(value))
        for form in forms:
            owners = self._owners.pop(form) - 1
            if owners:
                self._owners[form] = owners
                continue
            del self._kinds[form]
            same_length = self._by_length[len(form)]
            encoded = same_length.pop(form)
            if not same_length:
                del self._by_length[len(form)]
                self._lengths = None
            self._filter.remove(form)
            self._byte_filter.remove(encoded)

    def _ordered(self) -> Iterator[tuple[str, bytes]]:
        """Every form and its bytes, longest first."""
        if self._lengths is None:
            self._lengths = sorted(self._by_length, reverse=True)
        for length in self._lengths:
            yield from self._by_length[length].items()

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def __len__(self) -> int:
        """How many values are known."""
        return len(self.values)

    def may_contain(self, text: str) -> bool:
        """False only when no secret occurs in `text` (cheap whatever the number of secrets)."""
        return self._filter.may_occur(text)

    def sub(self, text: str) -> str:
        if not self._filter.may_occur(text):
            return text
        for form, _ in self._ordered():
            if form in text:
                text = text.replace(form, PLACEHOLDER)
        return text

    def sub_bytes(self, data: bytes) -> bytes:
        if not self._byte_filter.may_occur(data):
            return data
        for _, form in self._ordered():
            if form in data:
                data = data.replace(form, PLACEHOLDER.encode())
        return data

    def search(self, text: str) -> str | None:
        """The kind of the first secret found in text, or None."""
        if not self._filter.may_occur(text):
            return None
        return next((self._kinds[form] for form, _ in self._ordered() if form in text), None)

    def note_clear(self, body: bytes) -> None:
        """Remember that `body`, valid UTF-8, was told free of every form as text (`may_contain`): the
        canary searching the same bytes object again needs not, until a form is learnt. Exact: a UTF-8
        encoded form occurs in UTF-8 bytes exactly where the form occurs in their text."""
        self._clear.append(body)

    def search_bytes(self, data: bytes) -> str | None:
        if any(data is clear for clear in self._clear) or not self._byte_filter.may_occur(data):
            return None
        return next((self._kinds[form] for form, encoded in self._ordered() if encoded in data), None)


# Structured redaction ----------------------------------------------------------------------------------


def _redact_pairs(text: str, names: frozenset[str], kind: str, found: set[Secret]) -> str:
    """Redact `name=value` pairs of a query string or form body, leaving every other byte as it was."""
    pieces = []
    for piece in text.split("&"):
        raw_name, sep, raw_value = piece.partition("=")
        name = unquote_plus(raw_name)
        if sep and raw_value and normalize_name(name) in names:
            found.add(Secret(f"{kind} {name}", unquote_plus(raw_value)))
            piece = f"{raw_name}={PLACEHOLDER}"
        pieces.append(piece)
    return "&".join(pieces)


def redact_url(url: str, rules: RedactionRules, found: set[Secret]) -> str:
    """The URL with secret query parameters replaced; everything else byte for byte."""
    base, question, rest = url.partition("?")
    if not question:
        return url
    query, hash_sign, fragment = rest.partition("#")
    return (
        base
        + "?"
        + _redact_pairs(query, rules.secret_params, "query parameter", found)
        + hash_sign
        + fragment
    )


def masked_url(url: str) -> str:
    """A URL fit to log or show: secret query parameters (the apikey) masked with the default rules."""
    return redact_url(url, _MASKING_RULES, set())


def _redact_cookie(value: str, found: set[Secret]) -> str:
    """`a=1; b=2` -> `a=REDACTED; b=REDACTED`: the names stay, since they say which cookies were sent."""
    crumbs = []
    for crumb in value.split(";"):
        name, eq, cookie = crumb.strip().partition("=")
        if eq:
            found.add(Secret(f"cookie {name}", cookie.strip('"')))
            crumbs.append(f"{name}={PLACEHOLDER}")
        elif name:
            found.add(Secret("cookie", name))
            crumbs.append(PLACEHOLDER)
    return "; ".join(crumbs)


def _redact_set_cookie(value: str, found: set[Secret]) -> str:
    """Only the value goes: the attributes (Path, Expires, HttpOnly...) are not secret and worth keeping."""
    first, semicolon, attributes = value.partition(";")
    name, eq, cookie = first.strip().partition("=")
    cookie = cookie.strip().strip('"')
    if not eq or not cookie:
        return value
    found.add(Secret(f"set-cookie {name}", cookie))
    return f"{name}={PLACEHOLDER}{semicolon}{attributes}"


def _redact_authorization(name: str, value: str, found: set[Secret]) -> str:
    """`Bearer <token>` -> `Bearer REDACTED`: the scheme stays."""
    scheme, space, credentials = value.strip().partition(" ")
    if space and credentials.strip():
        found.add(Secret(f"header {name}", credentials.strip()))
        return f"{scheme} {PLACEHOLDER}"
    found.add(Secret(f"header {name}", value))
    return PLACEHOLDER


def _redact_header(name: str, value: str, rules: RedactionRules, found: set[Secret]) -> str:
    lname = name.lower()
    if not value or value == PLACEHOLDER:
        return value
    if lname == "cookie":
        return _redact_cookie(value, found)
    if lname == "set-cookie":
        return _redact_set_cookie(value, found)
    if lname in AUTHORIZATION_HEADERS:
        return _redact_authorization(name, value, found)
    if lname in rules.secret_headers:
        found.add(Secret(f"header {name}", value))
        return PLACEHOLDER
    return value


def redact_headers(headers: Headers, rules: RedactionRules, found: set[Secret]) -> Headers:
    """The headers with secret values replaced; the same object when none was."""
    fields = [(name, _redact_header(name, value, rules, found)) for name, value in headers]
    if all(new is old for (_, new), (_, old) in zip(fields, headers, strict=True)):
        return headers
    return Headers(fields)


def _has_content(value: Any) -> bool:
    return value not in (None, "", PLACEHOLDER) and not isinstance(value, bool)


def _leaves(value: Any, depth: int = 0) -> Iterable[str]:
    if depth > MAX_JSON_DEPTH:
        return
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, depth + 1)
    elif _has_content(value):
        yield str(value)


class _JsonRedactor:
    """Walks parsed JSON and replaces the values of secret keys, remembering what it removed."""

    def __init__(self, fields: frozenset[str], oauth: bool, found: set[Secret]) -> None:
        self.fields = fields
        self.oauth = oauth
        self.found = found
        self.changed = False

    def redact(self, value: Any, in_card: bool = False, depth: int = 0) -> Any:
        if isinstance(value, Mapping | list) and depth > MAX_JSON_DEPTH:
            # Too deep to inspect without blowing the stack: not written, since it might hold a secret.
            self.changed = True
            return PLACEHOLDER
        if isinstance(value, Mapping):
            return self._redact_object(value, in_card, depth)
        if isinstance(value, list):
            return [self.redact(v, in_card, depth + 1) for v in value]
        return value

    def _is_secret(self, name: str, in_card: bool, oauth: bool) -> bool:
        return name in self.fields or (in_card and name in CARD_FIELDS) or (oauth and name == OAUTH_CODE)

    def _redact_object(self, obj: Mapping[str, Any], in_card: bool, depth: int) -> dict[str, Any]:
        oauth = self.oauth or any(normalize_name(str(k)) in OAUTH_MARKERS for k in obj)
        out = {}
        for key, value in obj.items():
            name = normalize_name(str(key))
            if self._is_secret(name, in_card, oauth) and _has_content(value):
                self.found.update(Secret(f"JSON field {key}", leaf) for leaf in _leaves(value))
                out[key] = PLACEHOLDER
                self.changed = True
            else:
                out[key] = self.redact(value, in_card=name in CARD_KEYS, depth=depth + 1)
        return out


def parse_json_body(body: bytes) -> Any:
    """The parsed body, or None when it is not a JSON object or array."""
    if not _LOOKS_LIKE_JSON.match(body):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _dump_json(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except (
        UnicodeEncodeError
    ):  # a lone surrogate from a "\ud800" escape: all non-ASCII escaped, as JSON allows
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def is_form_body(body: bytes, headers: Headers) -> bool:
    return is_form(body, headers.get("Content-Type") or "")


def is_form(body: bytes, content_type: str) -> bool:
    """A form body: so labelled, or unlabelled and shaped like one."""
    content_type = content_type.lower()
    if _FORM_CONTENT_TYPE in content_type:
        return True
    return not content_type and bool(_LOOKS_LIKE_FORM.match(body))


_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NESTING = {"{": 1, "[": 1, "}": -1, "]": -1}


@lru_cache(maxsize=8)  # both layers ask about the same bodies, one after the other
def _plain_text(body: bytes) -> str | None:
    """The body as text when, were it JSON, every key and string would be spelled verbatim in it (UTF-8,
    no escape at all) and it would nest no deeper than MAX_JSON_DEPTH; else None. Lets the redaction
    tell from the text alone that walking the parsed body would change nothing.
    """
    if json.detect_encoding(body) != "utf-8":
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\\" in text:
        return None
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return text
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return text if max(accumulate(map(_NESTING.__getitem__, brackets))) <= MAX_JSON_DEPTH else None


def _json_keys_all_plain(body: bytes, rules: RedactionRules, oauth: bool) -> bool:
    """Whether `_JsonRedactor` is sure to find nothing in this JSON body: no key could be a secret's,
    a card or an OAuth marker (names compared as `normalize_name` does), told from the text alone.
    """
    text = _plain_text(body)
    if text is None:
        return False
    names = normalize_name(text)
    watched = rules.secret_fields | CARD_KEYS | OAUTH_MARKERS | ({OAUTH_CODE} if oauth else set())
    return not any(name in names for name in watched)


def _redact_body(
    body: bytes, headers: Headers, rules: RedactionRules, oauth: bool, found: set[Secret]
) -> bytes:
    if not body:
        return body
    if _json_keys_all_plain(body, rules, oauth) and not is_form_body(body, headers):
        return body  # JSON or not, there is nothing for the rules here: no need to parse it
    parsed = parse_json_body(body)
    if parsed is not None:
        if _json_keys_all_plain(body, rules, oauth):
            return body
        walker = _JsonRedactor(rules.secret_fields, oauth, found)
        redacted = walker.redact(parsed)
        return _dump_json(redacted) if walker.changed else body
    if is_form_body(body, headers):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        return _redact_pairs(text, rules.secret_params, "form field", found).encode("utf-8")
    return body


def redact_json_value(value: Any, rules: RedactionRules, oauth: bool = False) -> Any:
    """Parsed JSON with the values of secret keys replaced (replay keys compare bodies this way)."""
    return _JsonRedactor(rules.secret_fields, oauth, set()).redact(value)


def _apply_patterns(text: str, rules: RedactionRules, found: set[Secret]) -> str:
    for pattern in rules.patterns:
        for match in pattern.finditer(text):
            found.add(Secret(f"pattern {pattern.pattern!r}", match.group()))
        text = pattern.sub(PLACEHOLDER, text)
    return text


def _apply_patterns_bytes(body: bytes, rules: RedactionRules, found: set[Secret]) -> bytes:
    if not rules.patterns or not body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    return _apply_patterns(text, rules, found).encode("utf-8")


def is_oauth_request(request: Request) -> bool:
    return request.host.startswith("oauth.") or "/oauth" in request.path


def _redact_message_headers_and_body(
    headers: Headers, body: bytes, rules: RedactionRules, oauth: bool, found: set[Secret]
) -> tuple[Headers, bytes]:
    body = _redact_body(body, headers, rules, oauth, found)
    body = _apply_patterns_bytes(body, rules, found)
    headers = redact_headers(headers, rules, found)
    if rules.patterns:
        headers = Headers((k, _apply_patterns(v, rules, found)) for k, v in headers)
    return headers, body


def redact_structure(exchange: Exchange, rules: RedactionRules) -> Redacted:
    """Layer 1 only: the built-in and configured rules, on both sides of a decoded copy of the exchange."""
    exchange = decoded_exchange(exchange)
    found: set[Secret] = set()
    oauth = is_oauth_request(exchange.request)
    url = _apply_patterns(redact_url(exchange.request.url, rules, found), rules, found)
    headers, body = _redact_message_headers_and_body(
        exchange.request.headers, exchange.request.body, rules, oauth, found
    )
    request = _changed(exchange.request, url=url, headers=headers, body=body)
    response = exchange.response
    lifetimes: dict[str, float] = {}
    if response is not None:
        lifetimes = issued_token_lifetimes(response.body)
        headers, body = _redact_message_headers_and_body(response.headers, response.body, rules, oauth, found)
        response = _changed(response, headers=headers, body=body)
    # A value that is also something else here (a refresh token, say) is never forgotten.
    for secret in found:
        if secret.value in lifetimes and not _is_access_token_kind(secret.kind):
            del lifetimes[secret.value]
    return Redacted(_changed(exchange, request=request, response=response), frozenset(found), lifetimes)


MAX_SURE_LIFETIME = 10 * 365 * 86400.0
"""An `expires_in` beyond ten years is no sure expiry (nor worth waiting for)."""


def _sure_seconds(value: Any) -> float | None:
    """`expires_in` as seconds when it can only mean that: a number, or a string of decimal digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        # isdecimal, not isdigit: "²" is a digit that int() refuses. Long strings are no lifetime.
        if not value.isdecimal() or len(value) > 12:
            return None
        value = int(value)
    if isinstance(value, int | float) and 0 <= value <= MAX_SURE_LIFETIME:
        return float(value)
    return None  # negative, NaN, infinite, huge, or not a number


def issued_token_lifetimes(body: bytes) -> dict[str, float]:
    """The access token an OAuth token response issues, and its `expires_in` in seconds, when both are
    sure (a JSON object with a string `access_token` and a number or decimal string `expires_in`)."""
    if b"xpires" not in body:  # cheap: nearly no body is a token response
        return {}
    parsed = parse_json_body(body)
    if not isinstance(parsed, Mapping):
        return {}
    fields = {normalize_name(str(key)): value for key, value in parsed.items()}
    token, seconds = fields.get("accesstoken"), _sure_seconds(fields.get("expiresin"))
    if not isinstance(token, str) or not token or seconds is None:
        return {}
    return {token: seconds}


def _is_access_token_kind(kind: str) -> bool:
    prefix = "JSON field "
    return kind.startswith(prefix) and normalize_name(kind[len(prefix) :]) == "accesstoken"


# The scrub -------------------------------------------------------------------------------------------


def _scrub_value(value: Any, matcher: SecretMatcher, depth: int = 0) -> Any:
    """Known secrets out of parsed JSON (keys, strings, numbers), keeping it valid JSON."""
    if isinstance(value, Mapping | list) and depth > MAX_JSON_DEPTH:
        return PLACEHOLDER
    if isinstance(value, Mapping):
        return {_scrub_value(k, matcher): _scrub_value(v, matcher, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v, matcher, depth + 1) for v in value]
    if isinstance(value, str):
        return matcher.sub(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in matcher.values:
        return PLACEHOLDER
    return value


def _scrub_keeps(body: bytes, matcher: SecretMatcher) -> bool:
    """Whether the scrub is sure to give this body back as it was, told without parsing or walking it:
    when it is plain (see `_plain_text`), no secret occurs in it and none could be a float that JSON
    spells another way. Nearly every body, at a cost that hardly grows with the secrets known.
    """
    if matcher.float_like_values:
        return False
    text = _plain_text(body)
    if text is None or matcher.may_contain(text):
        return False
    matcher.note_clear(body)
    return True


def _scrub_body(body: bytes, matcher: SecretMatcher) -> bytes:
    if not body or _scrub_keeps(body, matcher):
        return body
    parsed = parse_json_body(body)
    if parsed is not None:
        scrubbed = _scrub_value(parsed, matcher)
        return body if scrubbed == parsed else _dump_json(scrubbed)
    try:
        return matcher.sub(body.decode("utf-8")).encode("utf-8")
    except UnicodeDecodeError:
        return matcher.sub_bytes(body)


def _scrub_headers(headers: Headers, matcher: SecretMatcher) -> Headers:
    if not matcher.may_contain("\n".join(value for _, value in headers)):
        return headers
    return Headers((name, matcher.sub(value)) for name, value in headers)


def scrub_exchange(exchange: Exchange, matcher: SecretMatcher) -> Exchange:
    """Layer 2: every known secret value replaced wherever it appears in the exchange.

    What holds no secret is given back as it is (not copied): nearly everything.
    """
    if not matcher:
        return exchange
    request = _changed(
        exchange.request,
        url=matcher.sub(exchange.request.url),
        headers=_scrub_headers(exchange.request.headers, matcher),
        body=_scrub_body(exchange.request.body, matcher),
    )
    response: Response | None = exchange.response
    if response is not None:
        response = _changed(
            response,
            headers=_scrub_headers(response.headers, matcher),
            body=_scrub_body(response.body, matcher),
        )
    return _changed(exchange, request=request, response=response)


_Record = TypeVar("_Record", Exchange, Request, Response)


def _changed(record: _Record, **values: Any) -> _Record:
    """`dataclasses.replace`, or the record itself when every value is the one it holds."""
    if all(getattr(record, name) is value for name, value in values.items()):
        return record
    return replace(record, **values)


def redact_exchange(
    exchange: Exchange, rules: RedactionRules | None = None, known: Iterable[Secret] = ()
) -> Redacted:
    """The exchange with its secrets replaced (rules, then the scrub of these and `known` secrets).

    Returns the redacted copy and the secrets found in this exchange; the input is not modified.
    """
    rules = rules or RedactionRules()
    result = redact_structure(exchange, rules)
    if not rules.scrub_seen_values:
        return result
    matcher = SecretMatcher([*known, *result.secrets], rules.min_secret_length)
    return Redacted(scrub_exchange(result.exchange, matcher), result.secrets)


def redact_finding(finding: Finding, rules: RedactionRules, matcher: SecretMatcher) -> Finding:
    """Findings are written too: their URL, message and evidence get the same treatment."""
    found: set[Secret] = set()
    evidence = _JsonRedactor(rules.secret_fields, False, found).redact(finding.evidence)
    return replace(
        finding,
        url=matcher.sub(redact_url(finding.url, rules, found)),
        message=matcher.sub(finding.message),
        evidence=_scrub_value(evidence, matcher),
    )


EXPIRY_MARGIN_S = 600.0
"""How long after its `expires_in` an access token is still looked for: clocks drift, apps retry."""


class Redactor:
    """Redacts exchange after exchange, remembering the secrets seen, in memory only and never written.

    The memory feeds the scrub (a token seen in one response is removed from later requests) and the
    canary. An access token issued with a sure `expires_in` is forgotten once it has expired, plus
    `EXPIRY_MARGIN_S`, both by the traffic's clock (the latest exchange's time) and by the machine's
    (`clock`, monotonic): a dead token is no secret, and an app refreshing its token all day would
    otherwise make every append look for thousands of them. Refresh tokens, id tokens, the apikey and
    anything without a sure expiry are never forgotten; a forgotten token seen again is a secret again.
    Thread-safe: the proxy completes interactions concurrently.
    """

    def __init__(
        self, rules: RedactionRules | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = rules or RedactionRules()
        self.clock = clock
        self.forgotten = 0
        self._seen: dict[str, Secret] = {}
        self._lock = threading.Lock()
        self._matcher = SecretMatcher((), self.rules.min_secret_length)
        self._traffic_now = -math.inf
        self._deadlines: dict[str, tuple[float, float]] = {}  # value -> (traffic, machine) time to forget
        self._expiring: list[tuple[float, float, str]] = []  # a heap of the same, stale entries skipped

    @property
    def remembered(self) -> int:
        """How many secret values every append looks for."""
        return len(self._seen)

    def _remember(self, result: Redacted, exchange: Exchange) -> None:
        """Learn an exchange's secrets and forget the access tokens that have expired (lock held)."""
        at = exchange.finished_at
        self._traffic_now = max(self._traffic_now, at)
        self._forget_expired()
        new = {s.value: s for s in result.secrets if s.value not in self._seen}
        self._seen.update(new)
        self._matcher.add(new.values())
        if exchange.started_at <= 0:  # no time recorded: no traffic clock to expire anything by
            return
        machine_now = self.clock()
        for value, seconds in result.lifetimes.items():
            if value in new or value in self._deadlines:  # never one already known without an expiry
                traffic, machine = self._deadlines.get(value, (-math.inf, -math.inf))
                self._deadlines[value] = (
                    max(traffic, at + seconds + EXPIRY_MARGIN_S),
                    max(machine, machine_now + seconds + EXPIRY_MARGIN_S),
                )
                heapq.heappush(self._expiring, (*self._deadlines[value], value))

    def _forget_expired(self) -> None:
        machine_now = None
        while self._expiring:
            traffic, machine, value = self._expiring[0]
            if traffic >= self._traffic_now:
                return
            machine_now = self.clock() if machine_now is None else machine_now
            if machine >= machine_now:
                return  # later ones wait too: forgetting late is safe, early is not
            heapq.heappop(self._expiring)
            if self._deadlines.get(value) != (traffic, machine):
                continue  # re-issued with a later expiry
            del self._deadlines[value], self._seen[value]
            self._matcher.forget(value)
            self.forgotten += 1

    def observe(self, exchange: Exchange) -> None:
        """Remember the secrets of traffic that is not written (e.g. passed through while not recording)."""
        result = redact_structure(exchange, self.rules)
        with self._lock:
            self._remember(result, exchange)

    def redact(self, exchange: Exchange, findings: Iterable[Finding] = ()) -> tuple[Exchange, list[Finding]]:
        """The exchange and its findings with every secret (of this exchange and earlier ones) replaced."""
        result = redact_structure(exchange, self.rules)
        with self._lock:
            self._remember(result, exchange)
            matcher = self._matcher
            redacted = (
                scrub_exchange(result.exchange, matcher) if self.rules.scrub_seen_values else result.exchange
            )
            return redacted, [redact_finding(f, self.rules, matcher) for f in findings]

    def check(self, text: str, exchange_id: str = "", raw: Iterable[bytes] = ()) -> None:
        """The canary: raise SecretLeakError if any secret remembered is in `text` or the `raw` bytes."""
        with self._lock:
            kind = self._matcher.search(text)
            for data in raw:
                kind = kind or self._matcher.search_bytes(data)
        if kind is not None:
            log.error("secret leak stopped before writing interaction %s (%s)", exchange_id, kind)
            raise SecretLeakError(kind, exchange_id)
