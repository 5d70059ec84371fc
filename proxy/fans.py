"""Who a call is made for: a partner's backend talks to Ticketmaster for many fans from one address.

A fan is known by the member's bearer token when the call carries one, else by a key the partner
configures (`header:NAME` or `cookie:NAME`), else by the client address. Tokens and key values are
kept only as keyed digests (the key lives in this process's memory and nowhere else), so a fan can
be recognised, recorded and compared without the secret ever being logged or written.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from .cassette.redact import is_redacted
from .exchange import Exchange, Request, bearer_token

BEARER = "bearer"
HEADER = "header"
COOKIE = "cookie"
CLIENT = "client"
FAN_KEY_KINDS = (BEARER, HEADER, COOKIE, CLIENT)
"""Strongest first: the order in which a call's keys identify its fan."""

_DIGEST_KEY = secrets.token_bytes(32)


def fan_digest(value: str) -> str:
    """A pseudonym for a token or key value: stable within this process, useless without its key."""
    return hashlib.blake2b(
        value.encode("utf-8", "surrogateescape"), key=_DIGEST_KEY, digest_size=12
    ).hexdigest()


class FanKeySpecError(ValueError):
    pass


@dataclass(frozen=True)
class FanKeySpec:
    """Where a partner puts its own id of the fan: a request header or a cookie."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> FanKeySpec:
        """`header:X-Partner-User` or `cookie:fan_id`."""
        kind, sep, name = text.strip().partition(":")
        kind, name = kind.strip().lower(), name.strip()
        if not sep or kind not in (HEADER, COOKIE) or not name:
            raise FanKeySpecError(
                f"fan key must be header:NAME or cookie:NAME (e.g. header:X-Partner-User), not {text!r}"
            )
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def value_in(self, request: Request) -> str | None:
        if self.kind == HEADER:
            value = request.headers.get(self.name)
            return value.strip() or None if value is not None else None
        return _cookie(request, self.name)


def _cookie(request: Request, name: str) -> str | None:
    for header in request.headers.get_all("Cookie"):
        jar = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        if name in jar and jar[name].value:
            return jar[name].value
    return None


@dataclass(frozen=True)
class Fan:
    """A fan's keys as one call showed them: digests by kind (bearer, header or cookie) and the client."""

    keys: tuple[tuple[str, str], ...]
    client: str

    @property
    def kind(self) -> str:
        """The strongest kind of key this call carried."""
        return self.keys[0][0] if self.keys else CLIENT

    @property
    def key(self) -> tuple[str, str]:
        """The strongest key: what the session table files this fan's sessions under."""
        return self.keys[0] if self.keys else (CLIENT, self.client)

    def all_keys(self) -> list[tuple[str, str]]:
        return [*self.keys, (CLIENT, self.client)]

    def differs_from(self, other: Fan) -> str | None:
        """The kind of key by which two calls are another fan's, or None when they are the same fan.

        Compared on the strongest kind both calls carry: Top Picks may be called with the apikey
        alone and the reserve with the member's token, and that is still one fan at one address.
        """
        mine, theirs = dict(self.keys), dict(other.keys)
        for kind in (BEARER, HEADER, COOKIE):
            if kind in mine and kind in theirs:
                return None if mine[kind] == theirs[kind] else kind
        return None if self.client == other.client else CLIENT

    def to_record(self) -> dict[str, str]:
        """What a recording keeps: the digests, never the token (redaction hides the token itself)."""
        return dict(self.keys)


def identify_fan(request: Request, client: str, spec: FanKeySpec | None) -> Fan:
    """The fan a live call is made for, from its bearer token, the partner's fan key and its client."""
    keys: list[tuple[str, str]] = []
    token = bearer_token(request)
    if token is not None and not is_redacted(token):
        keys.append((BEARER, fan_digest(token)))
    value = spec.value_in(request) if spec is not None else None
    if value is not None and spec is not None and not is_redacted(value):
        keys.append((spec.kind, fan_digest(value)))
    return Fan(tuple(keys), client)


def recorded_fan(record: Mapping[str, object], client: str) -> Fan:
    """The fan a recording named (see `Fan.to_record`); unknown kinds and non-strings are ignored."""
    keys = [
        (kind, value)
        for kind in (BEARER, HEADER, COOKIE)
        if isinstance(value := record.get(kind), str) and value
    ]
    return Fan(tuple(keys), client)


def fan_of(exchange: Exchange, spec: FanKeySpec | None) -> Fan:
    """The exchange's fan: as recorded (the proxy saw the token), else identified from the request.

    The answer is kept on the exchange, so that every rule and the recorder see the same fan.
    """
    if exchange.fan is None:
        identified = identify_fan(exchange.request, exchange.client_host, spec)
        exchange.fan = identified.to_record()
        exchange.known_fan = (exchange.fan, identified)  # what `recorded_fan` would make of the record
        return identified
    known = exchange.known_fan
    if not (isinstance(known, tuple) and known[0] is exchange.fan):
        known = exchange.known_fan = (exchange.fan, recorded_fan(exchange.fan, exchange.client_host))
    fan: Fan = known[1]
    return fan
