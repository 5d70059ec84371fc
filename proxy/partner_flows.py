"""Partner apps, compliant and flawed, as the demo and the tests drive them through a proxy.

Each flawed app takes the base URL it talks to and the sandbox behind it (some move its clock).
The secrets are canaries: recordings must never contain them.
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from proxy.sandbox.client import SandboxClient, valid_payment

APIKEY = "canary-apikey-7Qm2xT9vLp4Z"
CLIENT_SECRET = "canary-client-secret-R8kd02LmQ"
OAUTH_CODE = "canary-auth-code-5Hq81Zz"
TM = "https://app.ticketmaster.com"


def resale_offer(picks: requests.Response) -> dict[str, Any]:
    return next(o for o in picks.json()["_embedded"]["offer"] if o.get("inventoryType") == "resale")


def session_id(picks: requests.Response) -> str:
    return picks.json()["fanSession"]["resaleSid"]["sessionId"]


def signed_in_client(base_url: str) -> tuple[SandboxClient, requests.Response]:
    client = SandboxClient(base_url, api_key=APIKEY)
    form = {
        "grant_type": "authorization_code",
        "client_id": "partner",
        "client_secret": CLIENT_SECRET,
        "code": OAUTH_CODE,
    }
    token = client.http.post(f"{base_url}/oauth/token", data=form, timeout=30)
    client.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client, token


def compliant_purchase(base_url: str) -> list[requests.Response]:
    """Sign in, Top Picks, reserve resale tickets with the session, ship, pay (encrypted), commit."""
    client, token = signed_in_client(base_url)
    picks = client.top_picks(selection="resale")
    sid = session_id(picks)
    reserved = client.reserve([{"id": resale_offer(picks)["ticketId"], "quantity": 2}], sid=sid)
    cart_id = reserved.json()["cart_id"]
    shipping = client.shipping_options(cart_id)
    chosen = client.choose_shipping(cart_id)
    paid = client.add_payment(valid_payment(cart_id))
    committed = client.commit(cart_id)
    return [token, picks, reserved, shipping, chosen, paid, committed]


def reserve_without_session(base_url: str, sandbox: Any) -> None:
    client = SandboxClient(base_url, api_key=APIKEY)
    picks = client.top_picks(selection="resale")
    reserved = client.reserve([{"id": resale_offer(picks)["ticketId"], "quantity": 2}])
    client.release(reserved.json()["cart_id"])


def abandon_cart(base_url: str, sandbox: Any) -> None:
    client = SandboxClient(base_url, api_key=APIKEY)
    picks = client.top_picks(selection="resale")
    client.reserve([{"id": resale_offer(picks)["ticketId"], "quantity": 2}], sid=session_id(picks))


def renew_expired_session(base_url: str, sandbox: Any) -> None:
    client = SandboxClient(base_url, api_key=APIKEY)
    sid = session_id(client.top_picks(selection="resale"))
    sandbox.advance_clock(3601)
    client.top_picks(selection="resale", sid=sid)


def concurrent_reserves(base_url: str, sandbox: Any) -> None:
    """Two reserves at once: the sandbox holds each for a moment so that they overlap."""
    client = SandboxClient(base_url, api_key=APIKEY)
    picks = client.top_picks(selection="resale")
    sid, ticket = session_id(picks), resale_offer(picks)["ticketId"]
    carts: list[str] = []
    sandbox.set_delay(0.3)

    def reserve() -> None:
        own = SandboxClient(base_url, api_key=APIKEY)
        carts.append(own.reserve([{"id": ticket, "quantity": 1}], sid=sid).json()["cart_id"])

    threads = [threading.Thread(target=reserve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sandbox.set_delay(0)
    for cart_id in carts:
        client.release(cart_id)
