"""Builders of Ticketmaster-like exchanges for the cassette and replay tests."""

from __future__ import annotations

import json
from typing import Any

from proxy.exchange import Exchange, Headers, Request, Response

UPSTREAM = "https://app.ticketmaster.com"
EVENT = "2000527EE48A9334"


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def top_picks_body(start: Any = "1700000000000", expire: Any = "1700003600000") -> dict[str, Any]:
    return {
        "page": {"number": 0, "size": 1, "totalElements": 1, "totalPages": 1},
        "picks": [{"type": "seats", "quality": 0.9, "section": "101", "row": "A", "offers": ["off-1"]}],
        "_embedded": {
            "offer": [{"offerId": "off-1", "currency": "USD", "faceValue": 50.0, "totalPrice": 61.5}]
        },
        "eventDetails": {"id": EVENT},
        "fanSession": {
            "resaleSid": {
                "sessionId": "3f2b6a1e-0d5c-4f7e-9a8b-1c2d3e4f5a6b",
                "sessionStartTime": start,
                "sessionExpireTime": expire,
            }
        },
    }


def exchange(
    method: str = "GET",
    url: str = f"{UPSTREAM}/top-picks/v1/events/{EVENT}?apikey=KEYabc123456&quantity=2",
    request_headers: list[tuple[str, str]] | None = None,
    request_body: bytes = b"",
    status: int = 200,
    response_headers: list[tuple[str, str]] | None = None,
    response_body: bytes | None = None,
    **fields: Any,
) -> Exchange:
    body = json_bytes(top_picks_body()) if response_body is None else response_body
    return Exchange(
        request=Request(
            method, url, Headers(request_headers or [("Accept", "application/json")]), request_body
        ),
        response=Response(
            status,
            Headers(
                response_headers or [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            ),
            body,
            "OK" if status == 200 else "",
        ),
        **fields,
    )
