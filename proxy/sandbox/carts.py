"""Carts: what a reserve holds, its totals, shipping, payment validation and the committed order."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from proxy.sandbox.catalog import CURRENCY, Area, PriceBreakdown
from proxy.sandbox.errors import (
    INVALID_SECURITY_CODE,
    PAYMENT_NOT_ACCEPTED,
    SandboxError,
    invalid_input,
    invalid_reserve,
)

HOLD_TIME = 299


@dataclass(frozen=True)
class ShippingOption:
    id: str
    carrier: str
    service_level: str
    description: str
    price: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "carrier": self.carrier,
            "service_level": self.service_level,
            "description": {"short": self.description},
            "price": {"amount": self.price, "currency": CURRENCY},
        }


SHIPPING_OPTIONS = (
    ShippingOption("4", "TM", "MOBILE", "Mobile Entry", 0.0),
    ShippingOption("12", "TM", "ELECTRONIC", "TicketFast (print at home)", 2.5),
    ShippingOption("1", "USPS", "MAIL", "US Postal Mail", 4.5),
)


def shipping_option(shipping_id: Any) -> ShippingOption:
    option = next((o for o in SHIPPING_OPTIONS if o.id == str(shipping_id)), None)
    if option is None:
        raise invalid_input(f"unknown shipping_id {shipping_id!r}")
    return option


@dataclass(frozen=True)
class CartItem:
    ticket_id: str
    offer_id: str
    event_id: str
    quantity: int
    inventory_type: str  # "Resale" or "Primary"
    description: str
    area: Area
    section: str
    row: str
    seats: tuple[str, ...]
    price: PriceBreakdown

    def merchandise(self) -> float:
        return round(self.price.face_value * self.quantity, 2)

    def fee(self) -> float:
        return round(self.price.fees * self.quantity, 2)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.ticket_id,
            "offer_id": self.offer_id,
            "event_id": self.event_id,
            "type": "ticket",
            "inventory_type": self.inventory_type,
            "description": self.description,
            "quantity": self.quantity,
            "num_seats": self.quantity,
            "area": self.area.to_json(),
            "section": self.section,
            "row": self.row,
            "seats": list(self.seats),
            "charges": self.price.cart_charges(self.quantity),
            "totals": {
                "currency_code": CURRENCY,
                "fee": self.fee(),
                "grand": round(self.merchandise() + self.fee(), 2),
                "merchandise": self.merchandise(),
                "tax": 0.0,
            },
        }
        if self.seats:
            body["start_seat_number"] = self.seats[0]
            body["end_seat_number"] = self.seats[-1]
        return body


class CartStatus(enum.Enum):
    OPEN = "open"
    COMMITTED = "committed"
    RELEASED = "released"


@dataclass(frozen=True)
class Order:
    order_token: str
    order_number: str
    event_id: str
    grand_total: float
    items: tuple[CartItem, ...]

    def commit_body(self) -> dict[str, Any]:
        return {
            "order_token": self.order_token,
            "order_number": self.order_number,
            "grand_total": self.grand_total,
            "currency_code": CURRENCY,
            "redemption_url": f"https://myorder.ticketmaster.com/redeem?token={self.order_token}",
        }

    def details(self) -> dict[str, Any]:
        return {
            **self.commit_body(),
            "event_id": self.event_id,
            "tickets": [item.to_json() for item in self.items],
        }


@dataclass
class Cart:
    cart_id: str
    event_id: str
    items: tuple[CartItem, ...]
    expires_at: float
    status: CartStatus = CartStatus.OPEN
    shipping: ShippingOption | None = None
    paid: bool = False
    order: Order | None = field(default=None, repr=False)

    def usable(self, now: float) -> bool:
        return self.status is CartStatus.OPEN and now < self.expires_at

    def totals(self) -> dict[str, Any]:
        merchandise = round(sum(i.merchandise() for i in self.items), 2)
        fee = round(sum(i.fee() for i in self.items), 2)
        delivery = self.shipping.price if self.shipping else 0.0
        grand = round(merchandise + fee + delivery, 2)
        return {
            "currency_code": CURRENCY,
            "fee": fee,
            "grand": grand,
            "merchandise": merchandise,
            "delivery": delivery,
            "tax": 0.0,
            "unpaid": grand,
        }

    def body(self, now: float) -> dict[str, Any]:
        """The `{"cart_id", "cart"}` body of reserve, shipping and payment responses."""
        cart: dict[str, Any] = {
            "hold_time": max(0, int(self.expires_at - now)),
            "items": [item.to_json() for item in self.items],
            "totals": self.totals(),
        }
        if self.shipping:
            cart["shipping"] = self.shipping.to_json()
        return {"cart_id": self.cart_id, "cart": cart}

    def summary(self, now: float) -> dict[str, Any]:
        """For the control API: no payment details, only whether payment was added."""
        return {
            "cart_id": self.cart_id,
            "event_id": self.event_id,
            "status": self.status.value,
            "usable": self.usable(now),
            "expires_at": self.expires_at,
            "shipping_id": self.shipping.id if self.shipping else None,
            "paid": self.paid,
            "order_number": self.order.order_number if self.order else None,
            "items": [
                {"id": i.ticket_id, "quantity": i.quantity, "unit_price": i.price.total} for i in self.items
            ],
        }


_REQUIRED_PAYMENT = ("first_name", "last_name", "email_address", "type")
_PAYMENT_TYPES = ("CC", "INVOICE")
_REQUIRED_CARD = ("number", "cin", "encryption_key", "expire_month", "expire_year")


def validate_payment(payment: Any) -> None:
    """Required fields, and card data that must be encrypted (plain digits are refused)."""
    if not isinstance(payment, dict):
        raise invalid_input("missing required field payment")
    for name in _REQUIRED_PAYMENT:
        if payment.get(name) in (None, ""):
            raise invalid_input(f"missing required field payment.{name}")
    if payment["type"] not in _PAYMENT_TYPES:
        raise invalid_input(f"payment.type must be one of {', '.join(_PAYMENT_TYPES)}")
    if payment["type"] != "CC":
        return
    card = payment.get("card")
    if not isinstance(card, dict):
        raise invalid_input("missing required field payment.card")
    for name in _REQUIRED_CARD:
        if card.get(name) in (None, ""):
            raise invalid_input(f"missing required field payment.card.{name}")
    if _plain_digits(card["number"]):
        raise SandboxError(PAYMENT_NOT_ACCEPTED, "Payment Not Accepted: card number must be encrypted")
    if _plain_digits(card["cin"]):
        raise SandboxError(INVALID_SECURITY_CODE, "Please enter a valid security code.")


def _plain_digits(value: Any) -> bool:
    text = str(value).replace(" ", "").replace("-", "")
    return text.isdigit()


@dataclass(frozen=True)
class TicketRequest:
    id: str
    quantity: int
    price_id: str | None


@dataclass(frozen=True)
class ReserveRequest:
    """A reserve body: tickets by id (a resale ticket id, a standard offerId, or a ticket type id
    narrowed by `price.id` and `areas`); `accept_best_available` lifts the area restriction."""

    tickets: tuple[TicketRequest, ...]
    areas: tuple[str, ...]
    best_available: bool

    @classmethod
    def parse(cls, body: Any) -> ReserveRequest:
        if isinstance(body, dict) and "cart_id" in body and "reserve" not in body:
            raise invalid_reserve()  # a commit sent with the wrong method
        reserve = body.get("reserve") if isinstance(body, dict) else None
        if not isinstance(reserve, dict):
            raise invalid_reserve("missing reserve")
        tickets = reserve.get("tickets")
        if not isinstance(tickets, list) or not tickets:
            raise invalid_reserve("reserve.tickets must be a non-empty list")
        areas = reserve.get("areas") or []
        if not isinstance(areas, list):
            raise invalid_reserve("reserve.areas must be a list")
        return cls(
            tickets=tuple(_ticket_request(t) for t in tickets),
            areas=tuple(str(a["id"]) for a in areas if isinstance(a, dict) and "id" in a),
            best_available=reserve.get("accept_best_available") is True,
        )


def _ticket_request(ticket: Any) -> TicketRequest:
    if not isinstance(ticket, dict) or not isinstance(ticket.get("id"), str):
        raise invalid_reserve("each ticket needs a string id")
    quantity = ticket.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise invalid_reserve("quantity must be a positive integer")
    price = ticket.get("price")
    price_id = price.get("id") if isinstance(price, dict) else None
    return TicketRequest(ticket["id"], quantity, None if price_id is None else str(price_id))
