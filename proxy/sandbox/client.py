"""A Ticketmaster-speaking HTTP client for the sandbox, or for a proxy or replay in front of it.

Used by the demo, the pytest plugin's users and the tests.
"""

from __future__ import annotations

from typing import Any

import requests

from proxy.ticketmaster import FORCE_POLLING_HEADER, SESSION_HEADER

API_KEY = "sandbox-test-key"
EVENT_ID = "2000527EE48A9334"


def valid_payment(cart_id: str, amount: float = 0.0) -> dict[str, Any]:
    """A payment body the sandbox accepts: card number and cin look encrypted (base64), never digits."""
    return {
        "cart_id": cart_id,
        "payment": {
            "first_name": "Jane",
            "last_name": "Doe",
            "home_phone": "212-867-5309",
            "email_address": "jane.doe@example.com",
            "type": "CC",
            "amount": f"{amount:.2f}",
            "address": {"line1": "1 Main St", "city": "Los Angeles", "postal_code": "90210"},
            "card": {
                "number": "qvaEc5EX2bt5pt5DiTQR4J6iYZKxsujQPdw7LXCAnbeb8cD/CiXoB1V/pG2GAHBcHS/IdIMskFg=",
                "cin": "BYdEgXIxwz6bXG6OVQRKwj0wc9KE510eXRpwoEoTrd9t9i7=",
                "encryption_key": "paysys-dev.0.us.999",
                "expire_month": 12,
                "expire_year": 2030,
            },
        },
    }


class SandboxClient:
    """Ticketmaster calls over `requests`, ignoring proxy environment variables."""

    def __init__(self, base_url: str, api_key: str | None = API_KEY) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = requests.Session()
        self.http.trust_env = False

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        query = dict(params or {})
        if self.api_key is not None:
            query.setdefault("apikey", self.api_key)
        return self.http.request(
            method, self.base_url + path, params=query, headers=headers, timeout=30, **kwargs
        )

    def top_picks(self, event_id: str = EVENT_ID, sid: str | None = None, **params: Any) -> requests.Response:
        return self.request("GET", f"/top-picks/v1/events/{event_id}", params, _headers(sid))

    def reserve(
        self,
        tickets: list[dict[str, Any]],
        event_id: str = EVENT_ID,
        sid: str | None = None,
        poll: bool = False,
    ) -> requests.Response:
        body = {"reserve": {"tickets": tickets}}
        return self.request("POST", _cart(event_id), headers=_headers(sid, poll), json=body)

    def shipping_options(self, cart_id: str, event_id: str = EVENT_ID) -> requests.Response:
        return self.request("GET", _cart(event_id) + "/shipping", {"cart_id": cart_id})

    def choose_shipping(
        self, cart_id: str, shipping_id: str = "4", event_id: str = EVENT_ID, poll: bool = False
    ) -> requests.Response:
        return self.request(
            "PUT",
            _cart(event_id) + "/shipping",
            {"cart_id": cart_id},
            _headers(None, poll),
            json={"shipping_id": shipping_id},
        )

    def add_payment(self, body: dict[str, Any], event_id: str = EVENT_ID) -> requests.Response:
        return self.request("PUT", _cart(event_id) + "/payment", json=body)

    def commit(self, cart_id: str, event_id: str = EVENT_ID, poll: bool = False) -> requests.Response:
        return self.request("PUT", _cart(event_id), headers=_headers(None, poll), json={"cart_id": cart_id})

    def release(self, cart_id: str, event_id: str = EVENT_ID, poll: bool = False) -> requests.Response:
        return self.request("DELETE", _cart(event_id), {"cart_id": cart_id}, _headers(None, poll))

    def follow(self, polling_url: str) -> requests.Response:
        """GET a polling url exactly as given (it already carries the apikey)."""
        return self.http.get(polling_url, timeout=30)


def _cart(event_id: str) -> str:
    return f"/partners/v1/events/{event_id}/cart"


def _headers(sid: str | None, poll: bool = False) -> dict[str, str]:
    headers = {SESSION_HEADER: sid} if sid else {}
    if poll:
        headers[FORCE_POLLING_HEADER] = "true"
    return headers
