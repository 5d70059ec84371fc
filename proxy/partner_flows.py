"""Partner apps, compliant and flawed, as the demo and the tests drive them through a proxy.

Each flawed app takes the base URL it talks to and the sandbox behind it (some move its clock).
The secrets are canaries: recordings must never contain them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from proxy.sandbox.client import SandboxClient, valid_payment
from proxy.ticketmaster import SESSION_EXPIRED_MESSAGE

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


Call = Callable[[], requests.Response]

RETRY_AFTER_CONFLICT_S = 0.1
FIRST_BACKOFF_S = 1.0
MAX_QUOTA_WAIT_S = 60.0


def seconds_until_reset(limited: requests.Response) -> float:
    """How long a 429 asks to wait: until Ratelimit-Expiry (UTC epoch ms), else Retry-After seconds."""
    expiry = limited.headers.get("Ratelimit-Expiry")
    if expiry is not None:
        return min(max(0.0, int(expiry) / 1000 - time.time()), MAX_QUOTA_WAIT_S)
    return min(float(limited.headers.get("Retry-After", MAX_QUOTA_WAIT_S)), MAX_QUOTA_WAIT_S)


def patiently(client: SandboxClient, call: Call, tries: int = 30) -> requests.Response:
    """A call as an app that copes makes it: it waits out a 429 until the quota resets, backs off
    after a 503 (doubling), retries a refused concurrent call a moment later, and follows a 202's
    polling url after the `wait` it asks for, until the real answer comes."""
    backoff = FIRST_BACKOFF_S
    response = call()
    for _ in range(tries):
        if response.status_code == 429:
            time.sleep(seconds_until_reset(response))
        elif response.status_code == 503:
            time.sleep(backoff)
            backoff *= 2
        elif response.status_code == 409:
            time.sleep(RETRY_AFTER_CONFLICT_S)
        elif response.status_code == 202 and "polling_url" in response.json():
            accepted = response.json()
            time.sleep(float(accepted["wait"]))
            call = functools.partial(client.follow, accepted["polling_url"])  # from now on, the poll
        else:
            return response
        response = call()
    return response


def hastily(call: Call, retries: int = 2) -> requests.Response:
    """A call as a naive app makes it: a refusal (429, 503, 409) is retried at once, twice."""
    response = call()
    for _ in range(retries):
        if response.status_code not in (409, 429, 503):
            break
        response = call()
    return response


def announces_expiry(picks: requests.Response) -> bool:
    return SESSION_EXPIRED_MESSAGE in picks.text or SESSION_EXPIRED_MESSAGE in picks.headers.values()


def coping_purchase(base_url: str) -> list[requests.Response]:
    """The compliant purchase by an app that copes with Ticketmaster's failures (see `patiently`).

    Before reserving it confirms the prices with its session; if Ticketmaster answers that the session
    expired (prices may have changed), it asks Top Picks again and shows those prices."""
    client, token = signed_in_client(base_url)

    def call(step: Call) -> requests.Response:
        return patiently(client, step)

    picks = call(lambda: client.top_picks(selection="resale"))
    sid = session_id(picks)
    confirmed = call(lambda: client.top_picks(selection="resale", sid=sid))
    if announces_expiry(confirmed):
        confirmed = call(lambda: client.top_picks(selection="resale", sid=sid))
    ticket = resale_offer(confirmed)["ticketId"]
    reserved = call(lambda: client.reserve([{"id": ticket, "quantity": 2}], sid=sid))
    cart_id = reserved.json()["cart_id"]
    shipping = call(lambda: client.shipping_options(cart_id))
    chosen = call(lambda: client.choose_shipping(cart_id))
    paid = call(lambda: client.add_payment(valid_payment(cart_id)))
    committed = call(lambda: client.commit(cart_id))
    return [token, picks, confirmed, reserved, shipping, chosen, paid, committed]


def naive_purchase(base_url: str) -> requests.Response | None:
    """The same purchase by an app that does not cope: it retries refusals at once (`hastily`), polls
    a reserve's 202 without waiting, takes any other 202 for done, and reserves at the prices of a
    session Ticketmaster just said had expired. Gives up (None) when a call stays refused."""
    client, _ = signed_in_client(base_url)
    picks = hastily(lambda: client.top_picks(selection="resale"))
    if picks.status_code != 200:
        return None
    sid = session_id(picks)
    confirmed = hastily(lambda: client.top_picks(selection="resale", sid=sid))
    ticket = resale_offer(confirmed if confirmed.status_code == 200 else picks)["ticketId"]
    reserved = hastily(lambda: client.reserve([{"id": ticket, "quantity": 2}], sid=sid))
    if reserved.status_code == 202:
        reserved = client.follow(reserved.json()["polling_url"])
    if reserved.status_code != 200:
        return None
    cart_id = reserved.json()["cart_id"]
    for step in (
        lambda: client.shipping_options(cart_id),
        lambda: client.choose_shipping(cart_id),
        lambda: client.add_payment(valid_payment(cart_id)),
    ):
        if hastily(step).status_code not in (200, 202):
            return None
    return hastily(lambda: client.commit(cart_id))


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
