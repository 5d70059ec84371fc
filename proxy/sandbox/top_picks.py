"""The Top Picks body: query parsing, filtering, paging and the documented JSON shape.

Picks are always ordered by quality, best first (`sort` is accepted and otherwise ignored); pages are
numbered from 1; without `limit` one page holds every pick. `selection` is case-insensitive:
`any` (default), `standard`, `resale`, and `platinum`, which the sandbox maps to `standard`.
`quantity` keeps only picks that can seat that many (standard offers up to the event limit, a resale
listing up to its own size) and is how many seats a pick shows (default 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.sandbox.catalog import (
    CURRENCY,
    RESALE_TICKET_TYPE,
    STANDARD_TICKET_LIMIT,
    Event,
    Listing,
    PriceBreakdown,
    StandardOffer,
    StandardPick,
)
from proxy.sandbox.errors import invalid_input

_SELECTIONS = {"any": "any", "standard": "standard", "platinum": "standard", "resale": "resale"}
_DEFAULT_QUANTITY = 2
_MAP_URL = "https://app.ticketmaster.com/maps/geometry/3/event/{event}/image?systemId=HOST&app=TOPPICKS"

ResalePrice = Callable[[Listing], PriceBreakdown]


@dataclass(frozen=True)
class TopPicksQuery:
    selection: str = "any"
    quantity: int | None = None
    limit: int | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> TopPicksQuery:
        """Unacceptable parameters answer 406, as the Partner API documents for bad input."""
        raw = params.get("selection", "any").strip().lower() or "any"
        if raw not in _SELECTIONS:
            raise invalid_input(f"selection {raw!r}", http_status=406)
        return cls(
            selection=_SELECTIONS[raw],
            quantity=_positive(params, "quantity"),
            limit=_positive(params, "limit"),
            page=_positive(params, "page") or 1,
        )

    @property
    def seats(self) -> int:
        return self.quantity or _DEFAULT_QUANTITY


def _positive(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise invalid_input(f"{name} must be a positive integer", http_status=406) from None
    if number < 1:
        raise invalid_input(f"{name} must be a positive integer", http_status=406)
    return number


def render(event: Event, query: TopPicksQuery, resale_price: ResalePrice) -> dict[str, Any]:
    """Everything but `fanSession` (added by the caller); `resale_price` is asked once per shown listing."""
    candidates = sorted(_candidates(event, query), key=lambda c: c.quality, reverse=True)
    size = query.limit or len(candidates)
    shown = candidates[(query.page - 1) * size : query.page * size] if size else []
    offers: dict[str, dict[str, Any]] = {}
    picks = []
    for candidate in shown:
        if isinstance(candidate, StandardPick):
            picks.append(_standard_pick(event, candidate, query.seats))
            offers.setdefault(candidate.offer.offer_id, _standard_offer(candidate.offer))
        else:
            picks.append(_resale_pick(event, candidate, query.seats))
            offers.setdefault(candidate.offer_id, _resale_offer(candidate, resale_price(candidate)))
    return {
        "page": {
            "number": query.page,
            "size": size,
            "totalElements": len(candidates),
            "totalPages": -(-len(candidates) // size) if size else 0,
        },
        "picks": picks,
        "_embedded": {"offer": list(offers.values())},
        "eventDetails": {
            "id": event.event_id,
            "venueMapUrl": _MAP_URL.format(event=event.event_id) + "&pw=0",
            "venueMapWithLabelsUrl": _MAP_URL.format(event=event.event_id) + "&pw=0&showLabels=true",
        },
    }


def _candidates(event: Event, query: TopPicksQuery) -> list[StandardPick | Listing]:
    wanted = query.quantity or 1
    out: list[StandardPick | Listing] = []
    if query.selection in ("any", "standard") and wanted <= STANDARD_TICKET_LIMIT:
        out.extend(event.picks)
    if query.selection in ("any", "resale"):
        out.extend(x for x in event.listings if wanted <= len(x.seats))
    return out


def _standard_pick(event: Event, pick: StandardPick, seats: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "general-seating" if pick.general_seating else "seats",
        "quality": pick.quality,
        "section": pick.section,
        "selection": "standard",
    }
    if not pick.general_seating:
        body["row"] = pick.row
    body["snapshotImageUrl"] = _MAP_URL.format(event=event.event_id) + f"&sectionNames={pick.section}"
    body["area"] = pick.offer.area.to_json()
    body["offers"] = [pick.offer.offer_id]
    if not pick.general_seating:
        numbers = [str(pick.first_seat + i) for i in range(seats)]
        body["seats"] = numbers
        body["coordinates"] = _coordinates(pick.x, pick.y, len(numbers))
    return body


def _resale_pick(event: Event, listing: Listing, seats: int) -> dict[str, Any]:
    numbers = list(listing.seats[:seats])
    return {
        "type": "seats",
        "quality": listing.quality,
        "section": listing.section,
        "selection": "resale",
        "row": listing.row,
        "snapshotImageUrl": _MAP_URL.format(event=event.event_id) + f"&sectionNames={listing.section}",
        "area": listing.area.to_json(),
        "offers": [listing.offer_id],
        "seats": numbers,
        "coordinates": _coordinates(listing.x, listing.y, len(numbers)),
    }


def _coordinates(x: float, y: float, count: int) -> list[dict[str, float]]:
    return [{"x": round(x + 1.2 * i, 2), "y": y} for i in range(count)]


def _standard_offer(offer: StandardOffer) -> dict[str, Any]:
    return {
        "offerId": offer.offer_id,
        "name": "Standard Ticket",
        "ticketTypeId": offer.ticket_type_id,
        "priceLevelId": offer.price_level_id,
        "description": "Standard Ticket",
        "currency": CURRENCY,
        "faceValue": offer.price.face_value,
        "totalPrice": offer.price.total,
        "charges": offer.price.offer_charges(),
        "limit": {"min": 1, "max": STANDARD_TICKET_LIMIT},
        "promotions": [],
    }


def _resale_offer(listing: Listing, price: PriceBreakdown) -> dict[str, Any]:
    return {
        "offerId": listing.offer_id,
        "name": "Resale Ticket",
        "ticketTypeId": RESALE_TICKET_TYPE,
        "priceLevelId": listing.area.id,
        "description": "Verified Resale Ticket",
        "currency": CURRENCY,
        "faceValue": price.face_value,
        "totalPrice": price.total,
        "charges": price.offer_charges(),
        "limit": {"min": 1, "max": len(listing.seats)},
        "promotions": [],
        "ticketId": listing.ticket_id,
        "inventoryType": "resale",
    }
