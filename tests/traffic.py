"""Factories for Ticketmaster-shaped exchanges, shared by the unit tests."""

from __future__ import annotations

import json
from typing import Any

from proxy.exchange import Exchange, Headers, Request, Response

TM = "https://app.ticketmaster.com"
EVENT = "2000527EE48A9334"
SID = "cd6d82a9-3036-4e13-957d-853360b10d94"
RESALE_TICKET = (
    "resale-listingVer-00000004a254d5d5:product-product-0000000002208054:"
    f"product-variant-000000033b205305:{EVENT}"
)
T0 = 1_700_000_000.0


def exchange(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    status: int | None = 200,
    response_body: Any = None,
    response_headers: dict[str, str] | None = None,
    at: float = T0,
    duration: float = 0.1,
    client: str = "127.0.0.1:50000",
) -> Exchange:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    request = Request(method, TM + path, Headers((headers or {}).items()), raw)
    response = None
    if status is not None:
        rbody = response_body
        rraw = (
            rbody if isinstance(rbody, bytes) else (json.dumps(rbody).encode() if rbody is not None else b"")
        )
        response = Response(status, Headers((response_headers or {}).items()), rraw)
    return Exchange(
        request=request,
        response=response,
        started_at=at,
        ended_at=at + duration if response else None,
        client=client,
    )


def top_picks_body(
    sid: str = SID,
    start_ms: int | str = int(T0 * 1000),
    ttl_ms: int = 3_600_000,
    price: float = 120.0,
    messages: list[str] | None = None,
) -> dict[str, Any]:
    start = int(start_ms)
    body: dict[str, Any] = {
        "fanSession": {
            "resaleSid": {
                "sessionId": sid,
                "sessionStartTime": start_ms,
                "sessionExpireTime": start + ttl_ms if isinstance(start_ms, int) else str(start + ttl_ms),
            }
        },
        "picks": [{"type": "seats", "selection": "resale", "offers": ["R1"]}],
        "_embedded": {
            "offer": [
                {"offerId": "R1", "ticketId": RESALE_TICKET, "totalPrice": price, "inventoryType": "resale"}
            ]
        },
    }
    if messages:
        body["messages"] = messages
    return body


def top_picks(at: float = T0, sid_header: str | None = None, **body: Any) -> Exchange:
    headers = {"X-TM-SESSION-SID": sid_header} if sid_header else None
    return exchange(
        "GET",
        f"/top-picks/v1/events/{EVENT}?apikey=k",
        headers=headers,
        response_body=top_picks_body(**body),
        at=at,
    )


def reserve_body(ticket: str = RESALE_TICKET, amount: float | None = None) -> dict[str, Any]:
    ticket_entry: dict[str, Any] = {"id": ticket, "quantity": 2}
    if amount is not None:
        ticket_entry["price"] = {"id": "p1", "amount": amount}
    return {"reserve": {"tickets": [ticket_entry]}}


def reserve_response(
    charged: float, ticket: str = RESALE_TICKET, inventory_type: str | None = None
) -> dict[str, Any]:
    """A reserve's answer; the item is Resale for the resale listing or its offer R1, else Primary."""
    if inventory_type is None:
        inventory_type = "Resale" if ticket in (RESALE_TICKET, "R1") else "Primary"
    return {
        "cart_id": "cart-1",
        "cart": {
            "hold_time": 299,
            "items": [
                {
                    "id": ticket,
                    "offer_id": "R1",
                    "quantity": 2,
                    "inventory_type": inventory_type,
                    "charges": [
                        {"type": "face_value", "price": round(charged - 10, 2), "quantity": 2, "tax": 0},
                        {"type": "service", "price": 10.0, "quantity": 2, "tax": 0},
                    ],
                }
            ],
            "totals": {"currency_code": "USD", "grand": charged * 2},
        },
    }


def reserve(
    at: float = T0 + 10,
    sid: str | None = SID,
    charged: float = 120.0,
    ticket: str = RESALE_TICKET,
    amount: float | None = None,
    client: str = "127.0.0.1:50001",
    inventory_type: str | None = None,
) -> Exchange:
    headers = {"X-TM-SESSION-SID": sid} if sid is not None else None
    return exchange(
        "POST",
        f"/partners/v1/events/{EVENT}/cart?apikey=k",
        body=reserve_body(ticket, amount),
        headers=headers,
        response_body=reserve_response(charged, ticket, inventory_type),
        at=at,
        client=client,
    )


def as_fan(ex: Exchange, member: str) -> Exchange:
    """The exchange made for a signed-in member (a partner backend's calls all share one address)."""
    ex.request.headers.set("Authorization", f"Bearer token-of-{member}")
    return ex
