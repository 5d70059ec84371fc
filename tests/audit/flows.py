"""Partner traces for the audit tests: one compliant purchase, and builders to seed mistakes into it."""

from __future__ import annotations

import json
from typing import Any

from traffic import EVENT, SID, T0, reserve_body, reserve_response, top_picks_body

from proxy.exchange import Exchange, Headers, Request, Response

TM = "https://app.ticketmaster.com"
OAUTH = "https://oauth.ticketmaster.com"
CLIENT = "10.0.0.5:40000"
CART = f"/partners/v1/events/{EVENT}/cart"
LIVE_APIKEY = "LlILIdKF4TLwiH4XoBxUYkAXpuiaZdyq"
CIPHERTEXT = "bXkgZW5jcnlwdGVkIGNhcmQgbnVtYmVyIHdpdGggUlNBIGFuZCBiYXNlNjQ=" * 5


def ex(
    method: str,
    url: str,
    *,
    at: float,
    duration: float = 0.2,
    body: Any = None,
    headers: dict[str, str] | None = None,
    status: int | None = 200,
    response_body: Any = None,
    response_headers: dict[str, str] | None = None,
    client: str = CLIENT,
    id: str | None = None,
) -> Exchange:
    """One exchange; `url` may be a Ticketmaster path, `body`/`response_body` JSON values or bytes."""
    request = Request(method, url if "://" in url else TM + url, Headers((headers or {}).items()), _raw(body))
    response = None
    if status is not None:
        response = Response(status, Headers((response_headers or {}).items()), _raw(response_body))
    exchange = Exchange(
        request=request,
        response=response,
        started_at=at,
        ended_at=at + duration if response is not None else None,
        client=client,
    )
    if id is not None:
        exchange.id = id
    return exchange


def _raw(body: Any) -> bytes:
    if body is None:
        return b""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def token_grant(at: float, token: str = "REDACTED", expires_in: Any = 3600, client: str = CLIENT) -> Exchange:
    return ex(
        "POST",
        f"{OAUTH}/oauth/token",
        at=at,
        body=b"grant_type=refresh_token&client_id=app&client_secret=REDACTED&refresh_token=REDACTED",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        response_body={
            "access_token": token,
            "expires_in": expires_in,
            "refresh_token": "REDACTED",
            "token_type": "bearer",
        },
        client=client,
    )


def payment_body(number: Any = CIPHERTEXT, cin: Any = CIPHERTEXT, cart_id: str = "cart-1") -> dict[str, Any]:
    return {
        "cart_id": cart_id,
        "payment": {
            "first_name": "Fan",
            "last_name": "Example",
            "type": "CC",
            "amount": "240.00",
            "card": {
                "number": number,
                "cin": cin,
                "encryption_key": "REDACTED",
                "expire_month": 12,
                "expire_year": 2030,
            },
        },
    }


def polling_answer(poll_path: str, wait: Any = 2, cart_id: str = "cart-1") -> dict[str, Any]:
    return {"polling_url": f"{TM}{poll_path}", "wait": wait, "cart_id": cart_id}


def purchase(
    t0: float = T0, *, client: str = CLIENT, cart_id: str = "cart-1", live: bool = False
) -> list[Exchange]:
    """A compliant purchase: token, Top Picks, polled reserve, shipping, payment, commit, order.

    As recorded (secrets replaced by REDACTED placeholders), or `live` (real-looking apikey, token and
    encrypted card, as a proxy sees them).
    """

    def secret(real: str) -> str:
        return real if live else "REDACTED"

    key = f"apikey={secret(LIVE_APIKEY)}"
    token = secret(f"tok-{cart_id}")
    card = secret(CIPHERTEXT)
    bearer = {"Authorization": f"Bearer {token}"}
    sid = {"X-TM-SESSION-SID": SID, **bearer}
    poll = f"/partners/v1/polling/{cart_id}?cart_id={cart_id}"
    reserved = reserve_response(120.0)
    reserved["cart_id"] = cart_id
    return [
        token_grant(t0, token=token, client=client),
        ex("GET", f"/top-picks/v1/events/{EVENT}?{key}&quantity=2", at=t0 + 1, response_body=top_picks_body(start_ms=int(t0 * 1000)), client=client),
        ex("POST", f"{CART}?{key}", at=t0 + 3, body=reserve_body(), headers=sid, status=202,
           response_body=polling_answer(poll, cart_id=cart_id), client=client),
        ex("GET", poll, at=t0 + 5.5, headers=bearer, response_body=reserved, client=client),
        ex("GET", f"{CART}/shipping?{key}&cart_id={cart_id}", at=t0 + 7, headers=sid,
           response_body={"shipping_options": [{"id": "4"}]}, client=client),
        ex("PUT", f"{CART}/shipping?{key}&cart_id={cart_id}", at=t0 + 8, headers=sid,
           body={"shipping_id": "4"}, response_body={"cart_id": cart_id}, client=client),
        ex("PUT", f"{CART}/payment?{key}", at=t0 + 9, headers=sid, body=payment_body(card, card, cart_id=cart_id),
           response_body={"cart_id": cart_id}, client=client),
        ex("PUT", f"{CART}?{key}", at=t0 + 11, headers=sid, body={"cart_id": cart_id},
           response_body={"order_token": "REDACTED", "order_number": "1-2345", "grand_total": 240.0}, client=client),
        ex("GET", f"/partners/v1/orders?order_token=REDACTED&{key}", at=t0 + 12, headers=bearer,
           response_body={"order_number": "1-2345"}, client=client),
    ]  # fmt: skip
