"""The sandbox's events: standard (primary) offers with fixed prices and seeded resale listings.

Everything here is derived deterministically: standard offers from the event id alone (their prices
never move), resale listings from `(seed, event id)` so that a different seed gives different
listings and prices. Only the catalogue lives here; how resale prices move is `pricing`.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from typing import Any

EVENT_NAMES = {
    "2000527EE48A9334": "Top Picks Example Concert",
    "000051048D991EE7": "Partner API Test Event",
    "20005676DCC39B71": "Resale Fan Session Example",
    "1AeZZfEGkD0xtGV": "Sandbox Test Event",
}
CURRENCY = "USD"
STANDARD_TICKET_LIMIT = 8
STANDARD_TICKET_TYPE = "000000000001"
RESALE_TICKET_TYPE = "000000000002"
RESALE_LISTINGS_PER_EVENT = 5


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    description: str
    sections: tuple[str, ...]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "description": self.description}


GA = Area("14", "GA", "GENERAL ADMISSION STANDING", ("GAPIT1",))
AREAS = (
    GA,
    Area("13", "FLOOR", "Floor Seating", tuple(str(n) for n in range(1, 13))),
    Area("0", "CON1", "Concourse 1", tuple(f"1{n:02d}" for n in range(1, 31))),
    Area("1", "CON2", "Concourse 2", tuple(f"2{n:02d}" for n in range(1, 31))),
    Area("2", "CON3", "Concourse 3", tuple(f"3{n:02d}" for n in range(1, 31))),
)
_BASE_FACE = {"GA": 85.0, "FLOOR": 285.0, "CON1": 125.0, "CON2": 95.0, "CON3": 50.5}


@dataclass(frozen=True)
class PriceBreakdown:
    """One ticket's price: `total` is what Top Picks shows as `totalPrice` and a reserve charges."""

    face_value: float
    service: float
    facility: float

    @property
    def fees(self) -> float:
        return round(self.service + self.facility, 2)

    @property
    def total(self) -> float:
        return round(self.face_value + self.service + self.facility, 2)

    def offer_charges(self) -> list[dict[str, Any]]:
        """Top Picks `charges`: the per-ticket fees, plus the (free) per-order processing fee."""
        return [
            {"reason": "service", "type": "fee", "amount": self.service, "fee_type": "PER TICKET"},
            {"reason": "facility", "type": "fee", "amount": self.facility, "fee_type": "PER TICKET"},
            {"reason": "order_processing", "type": "fee", "amount": 0.0, "fee_type": "PER ORDER"},
        ]

    def cart_charges(self, quantity: int) -> list[dict[str, Any]]:
        """Reserve-response `charges`: their `price`s sum to the per-ticket total."""
        parts = (
            ("face_value", self.face_value),
            ("service", self.service),
            ("facility", self.facility),
            ("distance", 0.0),
        )
        return [{"type": kind, "price": price, "quantity": quantity, "tax": 0.0} for kind, price in parts]


@dataclass(frozen=True)
class StandardOffer:
    offer_id: str
    price_level_id: str
    area: Area
    price: PriceBreakdown

    @property
    def ticket_type_id(self) -> str:
        return STANDARD_TICKET_TYPE


@dataclass(frozen=True)
class StandardPick:
    """A place Top Picks recommends for a standard offer; seats are numbered from `first_seat`."""

    offer: StandardOffer
    section: str
    row: str
    first_seat: int
    quality: float
    x: float
    y: float

    @property
    def general_seating(self) -> bool:
        return self.offer.area is GA


@dataclass(frozen=True)
class Listing:
    """One resale listing: its ticket id is what a reserve names; its fees are fixed."""

    event_id: str
    ticket_id: str
    offer_id: str
    area: Area
    section: str
    row: str
    seats: tuple[str, ...]
    quality: float
    base_face: float
    service: float
    facility: float
    x: float
    y: float


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    offers: tuple[StandardOffer, ...]
    picks: tuple[StandardPick, ...]
    listings: tuple[Listing, ...]

    def standard_offer(self, offer_id: str) -> StandardOffer | None:
        return next((o for o in self.offers if o.offer_id == offer_id), None)

    def listing(self, ticket_or_offer_id: str) -> Listing | None:
        return next(
            (x for x in self.listings if ticket_or_offer_id in (x.ticket_id, x.offer_id)),
            None,
        )

    def best_pick(self, offer: StandardOffer) -> StandardPick:
        return max((p for p in self.picks if p.offer == offer), key=lambda p: p.quality)


def build_events(seed: int) -> dict[str, Event]:
    return {event_id: build_event(event_id, name, seed) for event_id, name in EVENT_NAMES.items()}


def build_event(event_id: str, name: str, seed: int) -> Event:
    offers = _standard_offers(event_id)
    return Event(
        event_id=event_id,
        name=name,
        offers=offers,
        picks=_standard_picks(event_id, offers),
        listings=_listings(event_id, seed),
    )


def _code(*parts: object, length: int) -> str:
    """A short uppercase id, stable for its inputs (offer ids look like Ticketmaster's `GJ6DC7BT`)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return base64.b32encode(digest).decode()[:length]


def _standard_offers(event_id: str) -> tuple[StandardOffer, ...]:
    rng = random.Random(f"standard:{event_id}")
    offers = []
    for level, area in enumerate(AREAS, start=1):
        face = round(_BASE_FACE[area.name] * rng.uniform(0.8, 1.2) * 2) / 2
        service = round(face * 0.16 + 2.0, 2)
        price = PriceBreakdown(face_value=face, service=service, facility=rng.choice((0.0, 2.5, 3.0)))
        offers.append(StandardOffer(_code(event_id, area.id, length=8), str(level), area, price))
    return tuple(offers)


def _standard_picks(event_id: str, offers: tuple[StandardOffer, ...]) -> tuple[StandardPick, ...]:
    rng = random.Random(f"picks:{event_id}")
    picks = []
    for offer in offers:
        for _ in range(1 if offer.area is GA else 2):
            picks.append(
                StandardPick(
                    offer=offer,
                    section=rng.choice(offer.area.sections),
                    row=str(rng.randint(1, 25)),
                    first_seat=rng.randint(1, 20),
                    quality=round(rng.uniform(0.3, 1.0), 6),
                    x=round(rng.uniform(100, 900), 2),
                    y=round(rng.uniform(100, 600), 2),
                )
            )
    return tuple(picks)


def _listings(event_id: str, seed: int) -> tuple[Listing, ...]:
    rng = random.Random(f"resale:{seed}:{event_id}")
    seated = AREAS[1:]
    listings = []
    for _ in range(RESALE_LISTINGS_PER_EVENT):
        listing_hex = f"{rng.getrandbits(40):016x}"
        ticket_id = (
            f"resale-listingVer-{listing_hex}:product-product-{rng.getrandbits(36):016x}"
            f":product-variant-{rng.getrandbits(40):016x}:{event_id}"
        )
        area = rng.choice(seated)
        first = rng.randint(1, 20)
        base_face = round(rng.uniform(60.0, 480.0), 2)
        listings.append(
            Listing(
                event_id=event_id,
                ticket_id=ticket_id,
                offer_id=f"RS{listing_hex[-8:].upper()}",
                area=area,
                section=rng.choice(area.sections),
                row=str(rng.randint(1, 25)),
                seats=tuple(str(first + i) for i in range(rng.randint(2, 4))),
                quality=round(rng.uniform(0.3, 1.0), 6),
                base_face=base_face,
                service=round(base_face * 0.18, 2),
                facility=rng.choice((2.5, 3.5, 4.75, 6.0)),
                x=round(rng.uniform(100, 900), 2),
                y=round(rng.uniform(100, 600), 2),
            )
        )
    return tuple(listings)
