"""Security rules: card encryption, access token lifetime, secrets left in recordings.

Sources: partner-api-faq.txt ("Any credit card information ... must be encrypted"; access tokens
live `expires_in`, 3600 s) and the list of secrets in ticketmaster-api-notes.md.
Findings never quote a secret: evidence names where it is, not what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...cassette.redact import is_redacted
from ...exchange import Exchange, Request, Response, bearer_token, parse_json
from ...findings import Finding, Severity
from ...sessions import SessionTable
from ..engine import Rule
from ..partner_api import (
    ALL_KINDS,
    card_fields,
    form_fields,
    is_oauth_call,
    is_token_request,
    issued_token,
    json_fields,
    plain_card_value,
)

OAUTH_SECRET_FIELDS = frozenset({"client_secret", "access_token", "refresh_token"})
"""Secret wherever they appear. `code` is one too, but only on OAuth calls: elsewhere it names
error codes and promotions."""
CARD_SECRET_FIELDS = frozenset({"number", "cin", "encryption_key"})
SECRET_HEADERS = ("x-api-key", "authorization", "cookie")
_JSON_HINTS = (b'"card"', b"token", b"client_secret", b'"code"', b"apikey=")


class UnencryptedCard(Rule):
    id = "unencrypted-card"
    severity = Severity.ERROR
    summary = "A card number or security code (cin) sent as plain digits instead of RSA-encrypted base64."

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        body = exchange.request.body
        if b'"card"' not in body:
            return
        plain = [field.where for field in card_fields(exchange.request.json()) if plain_card_value(field)]
        if plain:
            yield self.finding(
                exchange,
                f"plain card data in {', '.join(plain)}: card number and cin must be encrypted "
                "with Ticketmaster's key",
                fields=plain,
            )


@dataclass(frozen=True)
class _Token:
    expires_at: float
    issued_by: Exchange


class ExpiredAccessToken(Rule):
    """Tokens are learnt from OAuth token responses and expire `expires_in` seconds after the
    response arrived (the later bound, so a token is never judged expired too early).

    A redacted recording may show every token as the same placeholder: a placeholder token that
    no response issued takes the expiry of the newest token response.
    """

    id = "expired-access-token"
    severity = Severity.WARNING
    summary = "A bearer token was used after its `expires_in` had run out."

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._newest: _Token | None = None

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        token = bearer_token(exchange.request)
        if token is None:
            return
        known = self._tokens.get(token)
        if known is None and is_redacted(token):
            known = self._newest
        if known is not None and exchange.started_at > known.expires_at:
            yield self.finding(
                exchange,
                f"access token used {exchange.started_at - known.expires_at:.0f}s after it expired: "
                "refresh it first",
                expired_at=known.expires_at,
                issued_by=known.issued_by.id,
            )

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        response = exchange.response
        if response is None or not is_token_request(exchange.request):
            return ()
        issued = issued_token(response)
        if issued is not None:
            received_at = exchange.finished_at
            token = _Token(expires_at=received_at + issued.expires_in, issued_by=exchange)
            self._tokens[issued.access_token] = token
            self._newest = token
        return ()


class SecretInRecording(Rule):
    """Recordings only: live traffic legitimately carries the apikey and tokens.

    A value counts as redacted when `is_redacted` says so (empty, or starting with REDACTED).
    """

    id = "secret-in-recording"
    severity = Severity.ERROR
    summary = "An API key, token, cookie or card data was left unredacted in the recording."
    recording_only = True
    request_kinds = ALL_KINDS
    response_kinds = ALL_KINDS  # a recorded static file may leak the apikey too

    def on_request(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        places = request_secrets(exchange.request)
        if places:
            yield self._secret_finding(exchange, "request", places)

    def on_response(self, exchange: Exchange, sessions: SessionTable) -> Iterable[Finding]:
        if exchange.response is None:
            return
        places = response_secrets(exchange.request, exchange.response)
        if places:
            yield self._secret_finding(exchange, "response", places)

    def _secret_finding(self, exchange: Exchange, side: str, places: list[str]) -> Finding:
        return self.finding(
            exchange,
            f"unredacted secrets in the recorded {side}: {', '.join(places)}",
            side=side,
            places=places,
        )


def request_secrets(request: Request) -> list[str]:
    """Where a request carries real secrets, e.g. `query apikey`, `header Authorization`."""
    oauth = is_oauth_call(request)
    places = [f"query {name}" for name, value in request.query if _secret_param(name, value, oauth)]
    places += [f"form {name}" for name, value in form_fields(request) if _secret_param(name, value, oauth)]
    places += [f"header {name}" for name, value in request.headers if _secret_header(name, value)]
    places += [f"json {where}" for where in _json_secrets(request.body, oauth)]
    return places


def response_secrets(request: Request, response: Response) -> list[str]:
    """Where a response carries real secrets: cookies it sets and secret JSON fields."""
    places = [
        f"header {name}"
        for name, value in response.headers
        if name.lower() == "set-cookie" and not is_redacted(_cookie_value(value.split(";", 1)[0]))
    ]
    places += [f"json {where}" for where in _json_secrets(response.body, is_oauth_call(request))]
    return places


def _secret_param(name: str, value: str, oauth: bool) -> bool:
    secret = name == "apikey" or name in OAUTH_SECRET_FIELDS or (oauth and name == "code")
    return secret and not is_redacted(value)


def _secret_header(name: str, value: str) -> bool:
    lname = name.lower()
    if lname not in SECRET_HEADERS:
        return False
    if lname == "authorization":
        scheme, _, credentials = value.strip().partition(" ")
        return not is_redacted(credentials if credentials else scheme)
    if lname == "cookie":
        return not all(is_redacted(_cookie_value(c)) for c in value.split(";") if c.strip())
    return not is_redacted(value)


def _cookie_value(pair: str) -> str:
    """The value of `name=value`; a bare word is itself the value (e.g. a whole-header placeholder)."""
    name, equals, value = pair.partition("=")
    return value if equals else name


def _json_secrets(body: bytes, oauth: bool) -> list[str]:
    if not any(hint in body for hint in _JSON_HINTS):
        return []
    parsed = parse_json(body)
    places = [f.where for f in card_fields(parsed) if f.name in CARD_SECRET_FIELDS and _real(f.value)]
    for where, key, value in json_fields(parsed):
        if not isinstance(value, str):
            continue
        secret_key = key in OAUTH_SECRET_FIELDS or (oauth and key == "code")
        if (secret_key and not is_redacted(value)) or _url_with_apikey(value):
            places.append(where)
    return places


def _real(value: object) -> bool:
    """A card field holding data: a number, or a string that is not a placeholder."""
    if isinstance(value, str):
        return not is_redacted(value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _url_with_apikey(value: str) -> bool:
    """A URL in a body (e.g. a polling_url) that carries an unredacted apikey."""
    if "apikey=" not in value:
        return False
    return any(_secret_param(k, v, False) for k, v in Request(method="GET", url=value).query)
