"""One request/response pair, independent of mitmproxy and of vcrpy.

Every source of traffic (a live mitmproxy flow, a cassette, a HAR file, a flow file) is converted
into `Exchange` records, so that the fan-session logic, the audit rules and the cassette writer
see one shape.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit


class Headers:
    """An ordered, case-insensitive multi-map of header fields, as they travelled."""

    __slots__ = ("_fields", "_by_name")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = [(str(k), str(v)) for k, v in fields]
        self._by_name: dict[str, list[str]] | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> Headers:
        """Build from `{name: value}` or vcrpy's `{name: [values]}`."""
        fields: list[tuple[str, str]] = []
        for name, value in mapping.items():
            values = value if isinstance(value, list) else [value]
            fields.extend((name, str(v)) for v in values)
        return cls(fields)

    def _index(self) -> dict[str, list[str]]:
        """Values by lower-cased name, made on the first lookup: every rule asks for a few headers."""
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for k, v in self._fields:
                index.setdefault(k.lower(), []).append(v)
            self._by_name = index
        return self._by_name

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._index().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._index().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def set(self, name: str, value: str) -> None:
        """Replace every field called `name` with one field."""
        self.remove(name)
        self._fields.append((name, value))

    def remove(self, name: str) -> None:
        lname = name.lower()
        self._fields = [(k, v) for k, v in self._fields if k.lower() != lname]
        self._by_name = None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def as_lists(self) -> dict[str, list[str]]:
        """vcrpy's shape: each name once, in first-seen spelling, with all its values."""
        out: dict[str, list[str]] = {}
        spelling: dict[str, str] = {}
        for k, v in self._fields:
            key = spelling.setdefault(k.lower(), k)
            out.setdefault(key, []).append(v)
        return out

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


class ParsedBody:
    """A body's JSON, parsed once: several rules read the same body, and parsing dominated their cost.

    Kept for the body object it was parsed from, so a new body (a redacted copy, an injected header's
    re-read) is parsed afresh.
    """

    __slots__ = ("_body", "_value")

    def __init__(self) -> None:
        self._body: bytes | None = None
        self._value: Any = None

    def of(self, body: bytes) -> Any:
        if body is not self._body:
            self._body, self._value = body, parse_json(body)
        return self._value


@dataclass
class Request:
    method: str
    url: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    _parsed: ParsedBody = field(default_factory=lambda: ParsedBody(), init=False, repr=False, compare=False)

    _split: tuple[str, SplitResult] | None = field(default=None, init=False, repr=False, compare=False)
    _known_path: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def knowing_path(self, path: str) -> Request:
        """This request, told its URL's path by a source that has it already split (mitmproxy):
        the path is what every rule asks for, and splitting the URL for it cost as much as a rule."""
        self._known_path = (self.url, path)
        return self

    def _parts(self) -> SplitResult:
        """The URL split once (for the URL it was split from): every rule asks for the path."""
        if self._split is None or self._split[0] is not self.url:
            self._split = (self.url, urlsplit(self.url))
        return self._split[1]

    @property
    def path(self) -> str:
        known = self._known_path
        if known is not None and known[0] is self.url:
            return known[1]
        return self._parts().path

    @property
    def host(self) -> str:
        return self._parts().hostname or ""

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self._parts().query, keep_blank_values=True)

    def query_param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON (parsed once: treat it as read-only)."""
        return self._parsed.of(self.body)


@dataclass
class Response:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""
    _parsed: ParsedBody = field(default_factory=lambda: ParsedBody(), init=False, repr=False, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON (parsed once: treat it as read-only)."""
        return self._parsed.of(self.body)


@dataclass
class Exchange:
    """A request, its response when there was one, and when and from whom it came.

    Times are epoch seconds; `client` is the address of the partner app as the proxy saw it.
    `fan` is who the call was made for (a partner's backend serves many fans from one client).
    """

    request: Request
    response: Response | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    client: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    fan: dict[str, str] | None = None
    """The fan's key digests by kind (see proxy.fans), once known: recorded, since redaction hides tokens."""
    known_fan: Any = field(default=None, init=False, repr=False, compare=False)
    """`proxy.fans.fan_of`'s answer for the `fan` record it was made from (every rule asks)."""

    @property
    def finished_at(self) -> float:
        """When the exchange ended; its start when no end was recorded."""
        return self.ended_at if self.ended_at is not None else self.started_at

    @property
    def client_host(self) -> str:
        """The client without its port: one partner app reuses its host across connections."""
        host = self.client
        if host.startswith("["):
            return host[1 : host.index("]")] if "]" in host else host
        if host.count(":") == 1:
            return host.rsplit(":", 1)[0]
        return host


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    value = request.headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def parse_json(body: bytes) -> Any:
    """Parse JSON leniently: anything that is not a JSON document gives None."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
