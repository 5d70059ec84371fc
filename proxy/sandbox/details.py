"""Partner API event details and ticket availability bodies (standard inventory only, simplified)."""

from __future__ import annotations

from typing import Any

from proxy.sandbox.catalog import CURRENCY, STANDARD_TICKET_LIMIT, Event, StandardOffer

_EVENT_DATE = "2030-06-01T00:00:00Z"
_ONSALE_DATE = "2029-09-01T14:00:00Z"


def event_details(event: Event) -> dict[str, Any]:
    return {
        "api_transactable": True,
        "event": {
            "id": event.event_id,
            "name": event.name,
            "currency_code": CURRENCY,
            "timezone": "America/New_York",
            "eventdate": {"format": "datetime", "value": _EVENT_DATE},
            "onsale": {"format": "datetime", "value": _ONSALE_DATE},
            "quantities": {"limit": STANDARD_TICKET_LIMIT},
            "areas": [{**o.area.to_json(), "prices": [{"id": o.price_level_id}]} for o in event.offers],
            "tickets": [
                {
                    "id": event.offers[0].ticket_type_id,
                    "description": "Standard Ticket",
                    "prices": [_price(o) for o in event.offers],
                }
            ],
            "resale": {"listings": len(event.listings)},
        },
    }


def availability(event: Event) -> dict[str, Any]:
    return {
        "event": {
            "id": event.event_id,
            "restrictSingle": False,
            "eventTicketLimit": STANDARD_TICKET_LIMIT,
            "tickets": [_availability(event, o) for o in event.offers],
        }
    }


def _price(offer: StandardOffer) -> dict[str, Any]:
    return {
        "id": offer.price_level_id,
        "amount": offer.price.total,
        "display_amount": offer.price.total,
        "face_value": offer.price.face_value,
    }


def _availability(event: Event, offer: StandardOffer) -> dict[str, Any]:
    picks = [p for p in event.picks if p.offer == offer]
    return {
        "available": 100 * len(picks),
        "total": 250 * len(picks),
        "currentTicketLimit": STANDARD_TICKET_LIMIT,
        "inventory": [
            {
                "section": p.section,
                "row": p.row,
                "seats": list(range(p.first_seat, p.first_seat + STANDARD_TICKET_LIMIT)),
            }
            for p in picks
            if not p.general_seating
        ],
        "offers": [
            {
                "charges": [
                    {"amount": offer.price.service, "reason": "service", "type": "fee"},
                    {"amount": offer.price.facility, "reason": "facility", "type": "fee"},
                ],
                "currency": CURRENCY,
                "faceValue": offer.price.face_value,
                "offerDescription": offer.area.description,
                "offerName": offer.area.name,
                "priceLevelId": offer.price_level_id,
                "ticketTypeId": offer.ticket_type_id,
            }
        ],
    }
