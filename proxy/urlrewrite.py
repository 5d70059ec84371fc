"""Absolute URLs moved from one origin to another: what keeps a partner app behind a reverse proxy.

A 202's `polling_url` and a redirect's `Location` name the upstream's origin. An app that follows them
as given goes around the proxy, straight to the upstream: the poll is not recorded, no rule sees it,
and offline it tries to reach Ticketmaster. So on the way to the client the URLs at the upstream's
origin move to the proxy's, and on the way upstream the proxy's move back. The recorder uses the same
functions for `--record-as`.

Moved: values of the URL headers that start with the origin, and JSON string values (not keys) that
do, at any depth. Anything else is left byte for byte: relative URLs, other origins, bodies that are
not JSON, bodies whose Content-Encoding cannot be undone. A moved body is encoded again with its
original Content-Encoding and its Content-Length is corrected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TypeVar

from .cassette.format import content_codings, decode_body, encode_body
from .exchange import Headers, Request, Response

RESPONSE_URL_HEADERS = ("Location", "Content-Location")
REQUEST_URL_HEADERS = ("Referer", "Origin")
DEFAULT_PORTS = {"http": 80, "https": 443}

_ABSOLUTE_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)")
_PORT = re.compile(r"[0-9]{1,5}")
_KEY_FOLLOWS = re.compile(r"[ \t\n\r]*:")
_JSON = json.JSONDecoder()

Message = TypeVar("Message", Request, Response)


@dataclass(frozen=True)
class Origin:
    """`scheme://host:port`, compared the way browsers do: scheme and host without case, and an
    absent port equal to the scheme's default."""

    scheme: str
    host: str
    port: int

    @classmethod
    def at(cls, scheme: str, host: str, port: int) -> Origin:
        return cls(scheme.lower(), host.strip("[]").lower(), port)

    @classmethod
    def of(cls, url: str) -> Origin | None:
        """The origin an absolute http(s) URL starts with; None for anything else (and for a URL
        with user info, which is never the upstream's own)."""
        match = _ABSOLUTE_URL.match(url)
        return None if match is None else _origin(match["scheme"], match["authority"])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS.get(self.scheme):
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


def _origin(scheme: str, authority: str) -> Origin | None:
    default_port = DEFAULT_PORTS.get(scheme.lower())
    if default_port is None or "@" in authority:
        return None
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if not host or (port and not _PORT.fullmatch(port)) or int(port or default_port) > 65535:
        return None
    return Origin.at(scheme, host, int(port or default_port))


def move_url(value: str, source: Origin, target: Origin) -> str | None:
    """`value` at `target` when it is a URL at `source` (or `source` itself); None otherwise."""
    match = _ABSOLUTE_URL.match(value)
    if match is None or _origin(match["scheme"], match["authority"]) != source:
        return None
    return f"{target}{value[match.end() :]}"


def rewrite_response(response: Response, source: Origin, target: Origin) -> Response:
    """The response with its URLs at `source` moved to `target` (Location, Content-Location, JSON).

    The same object when nothing moved, so a caller can tell without comparing bodies."""
    return _rewrite(response, RESPONSE_URL_HEADERS, source, target)


def rewrite_request(request: Request, source: Origin, target: Origin) -> Request:
    """The request with its URLs at `source` moved to `target` (Referer, Origin, JSON)."""
    return _rewrite(request, REQUEST_URL_HEADERS, source, target)


def _rewrite(message: Message, url_headers: tuple[str, ...], source: Origin, target: Origin) -> Message:
    if source == target:
        return message
    body = _moved_body(message.body, message.headers, source, target)
    names = {name.lower() for name in url_headers}
    changed = body is not None
    fields: list[tuple[str, str]] = []
    for name, value in message.headers:
        if name.lower() in names:
            moved = move_url(value, source, target)
            if moved is not None:
                value, changed = moved, True
        elif body is not None and name.lower() == "content-length":
            value = str(len(body))
        fields.append((name, value))
    if not changed:
        return message
    return replace(message, headers=Headers(fields), body=message.body if body is None else body)


def _moved_body(body: bytes, headers: Headers, source: Origin, target: Origin) -> bytes | None:
    """The body with its JSON URLs moved, encoded as it came; None when nothing moved."""
    if not body:
        return None
    codings = content_codings(headers)
    plain = body
    if codings:
        plain, plain_headers = decode_body(body, headers)
        if plain_headers is headers:  # a coding that cannot be undone: the body travels as it came
            return None
    text = _json_text(plain, source.host)
    moved = move_json_urls(text, source, target) if text is not None else None
    if moved is None:
        return None
    return encode_body(moved.encode(), codings)


def _json_text(body: bytes, host: str) -> str | None:
    """The body as JSON text, when it is JSON and could name `host` (in full, or \\u-escaped)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\\u" not in text and not re.search(re.escape(host), text, re.IGNORECASE):
        return None
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return None
    return text


def move_json_urls(text: str, source: Origin, target: Origin) -> str | None:
    """Valid JSON text with its string values at `source` moved to `target`; None when none is.

    Only those strings are rewritten; every other byte (numbers as written, spacing, key order) stays.
    In valid JSON a `"` outside a string always opens the next string, so the scan goes from quote to
    quote; a string followed by `:` is a key and stays.
    """
    pieces: list[str] = []
    copied = position = 0
    while (start := text.find('"', position)) >= 0:
        value, position = _JSON.raw_decode(text, start)  # the string that opens at `start`
        if _KEY_FOLLOWS.match(text, position):
            continue
        moved = move_url(value, source, target)
        if moved is not None:
            pieces += [text[copied:start], json.dumps(moved)]
            copied = position
    if not pieces:
        return None
    pieces.append(text[copied:])
    return "".join(pieces)
