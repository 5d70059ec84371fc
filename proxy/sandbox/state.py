"""The sandbox's state and behaviour, without HTTP: every answer is a `Reply` or a `SandboxError`.

One `SandboxState` holds the catalogue, resale prices, fan sessions, carts, orders, quotas, pending
polls, the request log and the test controls. Every public method takes one re-entrant lock, so the
aiohttp loop and a test thread may call it at the same time. Time comes from an injected
`OffsetClock`, which the `advance_clock` control moves.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from proxy.clock import OffsetClock, to_epoch_ms
from proxy.sandbox import details, top_picks
from proxy.sandbox.carts import (
    HOLD_TIME,
    SHIPPING_OPTIONS,
    Cart,
    CartItem,
    CartStatus,
    Order,
    ReserveRequest,
    TicketRequest,
    shipping_option,
    validate_payment,
)
from proxy.sandbox.catalog import (
    STANDARD_TICKET_LIMIT,
    Event,
    Listing,
    PriceBreakdown,
    StandardOffer,
    build_events,
)
from proxy.sandbox.errors import (
    INVALID_CART,
    NO_INVENTORY,
    PAYMENT_NOT_ACCEPTED,
    TICKET_LIMIT_REACHED,
    SandboxError,
    concurrent_cart_call,
    event_not_found,
    invalid_cart,
    invalid_input,
    invalid_reserve,
)
from proxy.sandbox.pricing import DEFAULT_REPRICE_INTERVAL, ResalePricer
from proxy.sandbox.quota import DEFAULT_QUOTA, QuotaStatus, QuotaTracker
from proxy.sandbox.sessions import SessionTable
from proxy.ticketmaster import mark_session_renewed, polling_answer

log = logging.getLogger(__name__)

DEFAULT_POLL_WAIT = 1
DEFAULT_REPRICE_FACTOR = 1.1
OAUTH_TOKEN_LIFETIME = 3600
_REQUEST_LOG_SIZE = 10_000
_OAUTH_GRANTS = {"authorization_code": "code", "refresh_token": "refresh_token"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """An injected failure: a Ticketmaster error with `status`, or (None) an unexpected exception."""

    status: int | None


@dataclass
class _PendingPoll:
    accepted: Reply
    final: Reply
    rounds_left: int


@dataclass(frozen=True)
class SandboxConfig:
    seed: int = 0
    session_ttl: float = 3600.0
    quota: int = DEFAULT_QUOTA
    reprice_interval: float = DEFAULT_REPRICE_INTERVAL


class SandboxState:
    def __init__(self, config: SandboxConfig | None = None, clock: OffsetClock | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock or OffsetClock()
        self._lock = threading.RLock()
        self._busy_changed = threading.Condition(self._lock)
        self._busy: set[str] = set()
        self._requests: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_SIZE)
        self._restore()

    def _restore(self) -> None:
        """Everything back to what the seed and the configuration give (the clock included)."""
        self.clock.reset()
        self.events: dict[str, Event] = build_events(self.config.seed)
        self._pricer = ResalePricer(self.config.seed, self.clock.now(), self.config.reprice_interval)
        self._sessions = SessionTable(self.config.session_ttl)
        self._carts: dict[str, Cart] = {}
        self._orders: dict[str, Order] = {}
        self._quota = QuotaTracker(self.config.quota)
        self._polls: dict[str, _PendingPoll] = {}
        self._faults: deque[Fault] = deque()
        self._requests.clear()
        self.processing_delay = 0.0
        self.poll_wait = DEFAULT_POLL_WAIT
        self.poll_extra_rounds = 0

    # ---- Top Picks and event information -------------------------------------------------------

    def top_picks(self, event_id: str, params: Mapping[str, str], session_header: str | None) -> Reply:
        """Top Picks with its fan session. The expired-session message (UNCONFIRMED where the real
        API puts it) goes both in a top-level `messages` array and in an `X-TM-Session-Message` header.
        Each resale offer is shown at the price the session first saw (snapshotted now if new)."""
        with self._lock:
            now = self.clock.now()
            event = self._event(event_id)
            query = top_picks.TopPicksQuery.parse(params)
            session, renewed = self._sessions.for_top_picks(session_header, now)

            def seen_price(listing: Listing) -> PriceBreakdown:
                return session.seen.setdefault(listing.ticket_id, self._pricer.price(listing, now))

            body = {"fanSession": session.to_json(), **top_picks.render(event, query, seen_price)}
            if not renewed:
                return Reply(200, body)
            return Reply(200, body, mark_session_renewed(body))

    def event_details(self, event_id: str) -> Reply:
        with self._lock:
            return Reply(200, details.event_details(self._event(event_id)))

    def availability(self, event_id: str) -> Reply:
        with self._lock:
            return Reply(200, details.availability(self._event(event_id)))

    # ---- the cart flow -------------------------------------------------------------------------

    def reserve(self, event_id: str, body: Any, session_header: str | None) -> Reply:
        """A new cart. Resale tickets cost what a valid session saw, else the current price."""
        with self._lock:
            now = self.clock.now()
            event = self._event(event_id)
            request = ReserveRequest.parse(body)
            session = self._sessions.valid(session_header, now)
            seen = session.seen if session else {}
            items = tuple(self._item(event, t, request, seen, now) for t in request.tickets)
            cart_id = base64.b64encode(secrets.token_bytes(32)).decode()
            cart = Cart(cart_id, event_id, items, expires_at=now + HOLD_TIME)
            self._carts[cart_id] = cart
            log.info("reserved cart for %s: %d item(s)", event_id, len(items))
            return Reply(200, cart.body(now))

    def shipping_options(self, event_id: str, cart_id: str | None) -> Reply:
        with self._lock:
            cart = self._open_cart(event_id, cart_id)
            return Reply(
                200, {"cart_id": cart.cart_id, "shipping_options": [o.to_json() for o in SHIPPING_OPTIONS]}
            )

    def choose_shipping(self, event_id: str, cart_id: str | None, body: Any) -> Reply:
        with self._lock:
            cart = self._open_cart(event_id, cart_id)
            if not isinstance(body, dict) or "shipping_id" not in body:
                raise invalid_input("missing required field shipping_id")
            cart.shipping = shipping_option(body["shipping_id"])
            return Reply(200, cart.body(self.clock.now()))

    def add_payment(self, event_id: str, body: Any) -> Reply:
        with self._lock:
            cart = self._open_cart(event_id, _cart_id_of(body))
            validate_payment(body.get("payment"))
            cart.paid = True
            return Reply(200, cart.body(self.clock.now()))

    def commit(self, event_id: str, body: Any) -> Reply:
        with self._lock:
            cart_id = _cart_id_of(body)
            if cart_id is None:
                raise invalid_reserve("missing cart_id")
            cart = self._open_cart(event_id, cart_id)
            if not cart.paid:
                raise SandboxError(PAYMENT_NOT_ACCEPTED, "Payment Not Accepted: no payment added to the cart")
            order = Order(
                order_token=secrets.token_urlsafe(24),
                order_number=f"39-{10_000 + len(self._orders) + 1}/SBX",
                event_id=event_id,
                grand_total=cart.totals()["grand"],
                items=cart.items,
            )
            cart.status, cart.order = CartStatus.COMMITTED, order
            self._orders[order.order_token] = order
            log.info("committed order %s", order.order_number)
            return Reply(200, order.commit_body())

    def release(self, event_id: str, cart_id: str | None) -> Reply:
        with self._lock:
            self._open_cart(event_id, cart_id).status = CartStatus.RELEASED
            return Reply(204, None)

    def order(self, params: Mapping[str, str]) -> Reply:
        with self._lock:
            token, number = params.get("order_token"), params.get("order_number")
            for order in self._orders.values():
                if token == order.order_token or number == order.order_number:
                    return Reply(200, order.details())
            raise SandboxError(INVALID_CART, "Order not found", 404)

    def oauth_token(self, form: Mapping[str, str]) -> Reply:
        """Any well-formed grant succeeds: the endpoint exists so that secret redaction can be tested."""
        grant = form.get("grant_type", "")
        if grant not in _OAUTH_GRANTS:
            raise invalid_input(f"unsupported grant_type {grant!r}")
        for name in ("client_id", "client_secret", _OAUTH_GRANTS[grant]):
            if not form.get(name):
                raise invalid_input(f"missing required field {name}")
        return Reply(
            200,
            {
                "access_token": secrets.token_urlsafe(24),
                "expires_in": OAUTH_TOKEN_LIFETIME,
                "refresh_token": secrets.token_urlsafe(24),
                "token_type": "bearer",
            },
        )

    # ---- polling, concurrency, quota, faults, request log ----------------------------------------

    def defer(self, final: Reply, cart_id: str | None, polling_url: Callable[[str], str]) -> Reply:
        """Answer 202 now and keep `final` for the polling url (after `poll_extra_rounds` more 202s)."""
        with self._lock:
            token = secrets.token_hex(16).upper()
            accepted = Reply(202, polling_answer(polling_url(token), self.poll_wait, cart_id))
            self._polls[token] = _PendingPoll(accepted, final, self.poll_extra_rounds)
            return accepted

    def poll(self, token: str) -> Reply:
        """The deferred answer, once; an unknown or already consumed polling url is a 404."""
        with self._lock:
            pending = self._polls.get(token)
            if pending is None:
                raise SandboxError(INVALID_CART, "Invalid or already consumed polling url", 404)
            if pending.rounds_left > 0:
                pending.rounds_left -= 1
                return pending.accepted
            del self._polls[token]
            return pending.final

    @contextmanager
    def claim_cart(self, cart_id: str | None) -> Iterator[None]:
        """Refuse a call on a cart while another call on it is being processed (409, UNCONFIRMED code)."""
        if not cart_id:
            yield
            return
        with self._lock:
            if cart_id in self._busy:
                raise concurrent_cart_call()
            self._busy.add(cart_id)
            self._busy_changed.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(cart_id)
                self._busy_changed.notify_all()

    def hit_quota(self, api_key: str) -> QuotaStatus:
        with self._lock:
            return self._quota.hit(api_key, self.clock.now())

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def record_request(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: str
    ) -> None:
        with self._lock:
            self._requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "headers": dict(headers),
                    "body": body,
                    "time": self.clock.now(),
                }
            )

    # ---- controls ------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self.clock.advance(seconds)
            return self.clock.now()

    def reprice(
        self,
        event_id: str | None = None,
        listing: str | None = None,
        factor: float | None = None,
        price: float | None = None,
    ) -> dict[str, float]:
        """Move current resale prices: pin one listing's all-in `price`, or multiply by `factor`
        (default 1.1) the listings of one listing, one event, or every event. Returns the new prices."""
        with self._lock:
            if factor is not None and price is not None:
                raise invalid_input("give factor or price, not both")
            if price is not None and listing is None:
                raise invalid_input("price needs a listing")
            targets = self._listings(event_id, listing)
            now = self.clock.now()
            for target in targets:
                if price is not None:
                    self._set_price(target, price)
                else:
                    self._scale(target, DEFAULT_REPRICE_FACTOR if factor is None else factor)
            return {t.ticket_id: self._pricer.price(t, now).total for t in targets}

    def current_price(self, ticket_id: str) -> float:
        """The all-in per-ticket price a reserve without a session would pay now."""
        with self._lock:
            (listing,) = self._listings(None, ticket_id)
            return self._pricer.price(listing, self.clock.now()).total

    def set_quota(self, limit: int) -> None:
        if limit < 0:
            raise invalid_input("limit must be >= 0")
        with self._lock:
            self._quota.set_limit(limit)

    def set_delay(self, seconds: float) -> None:
        """How long every cart call takes (awaited on the server), to make overlaps testable."""
        if seconds < 0:
            raise invalid_input("seconds must be >= 0")
        with self._lock:
            self.processing_delay = seconds

    def set_polling(self, wait: int = DEFAULT_POLL_WAIT, extra_rounds: int = 0) -> None:
        if wait < 0 or extra_rounds < 0:
            raise invalid_input("wait and extra_rounds must be >= 0")
        with self._lock:
            self.poll_wait, self.poll_extra_rounds = wait, extra_rounds

    def fail_next(self, count: int = 1, status: int | None = None) -> None:
        """The next `count` Ticketmaster calls fail: with `status` (20001, ticketing system down) or,
        without, with an unexpected exception that the error middleware must turn into a 500."""
        with self._lock:
            self._faults.extend(Fault(status) for _ in range(count))

    def reset(self) -> None:
        with self._lock:
            self._restore()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_until_busy(self, cart_id: str, timeout: float = 5.0) -> bool:
        """Block until a call on `cart_id` is being processed (for concurrency tests; never a sleep)."""
        with self._busy_changed:
            return self._busy_changed.wait_for(lambda: cart_id in self._busy, timeout)

    def catalog(self) -> dict[str, Any]:
        """Events with their standard offers and resale listings at current prices."""
        with self._lock:
            now = self.clock.now()
            return {
                event.event_id: {
                    "name": event.name,
                    "standard": [_offer_summary(o) for o in event.offers],
                    "resale": [
                        {
                            "ticket_id": x.ticket_id,
                            "offer_id": x.offer_id,
                            "seats": len(x.seats),
                            "total_price": self._pricer.price(x, now).total,
                        }
                        for x in event.listings
                    ],
                }
                for event in self.events.values()
            }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock.now()
            return {
                "now": now,
                "now_ms": to_epoch_ms(now),
                "seed": self.config.seed,
                "session_ttl": self.config.session_ttl,
                "quota": self._quota.summary(),
                "delay": self.processing_delay,
                "polling": {
                    "wait": self.poll_wait,
                    "extra_rounds": self.poll_extra_rounds,
                    "pending": len(self._polls),
                },
                "sessions": [s.summary(now) for s in self._sessions.all()],
                "carts": [c.summary(now) for c in self._carts.values()],
                "orders": [o.commit_body() for o in self._orders.values()],
            }

    # ---- helpers -------------------------------------------------------------------------------

    def _event(self, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None:
            raise event_not_found(event_id)
        return event

    def _open_cart(self, event_id: str, cart_id: str | None) -> Cart:
        self._event(event_id)
        cart = self._carts.get(cart_id or "")
        if cart is None or cart.event_id != event_id or not cart.usable(self.clock.now()):
            raise invalid_cart()
        return cart

    def _listings(self, event_id: str | None, ticket_id: str | None) -> list[Listing]:
        events = [self._event(event_id)] if event_id is not None else list(self.events.values())
        found = [x for e in events for x in e.listings if ticket_id in (None, x.ticket_id, x.offer_id)]
        if not found:
            raise invalid_input(f"unknown resale listing {ticket_id!r}")
        return found

    def _set_price(self, listing: Listing, price: float) -> None:
        try:
            self._pricer.set_total(listing, price)
        except ValueError as exc:
            raise invalid_input(str(exc)) from None

    def _scale(self, listing: Listing, factor: float) -> None:
        if factor <= 0:
            raise invalid_input("factor must be > 0")
        self._pricer.scale(listing, factor)

    def _item(
        self,
        event: Event,
        wanted: TicketRequest,
        request: ReserveRequest,
        seen: Mapping[str, PriceBreakdown],
        now: float,
    ) -> CartItem:
        listing = event.listing(wanted.id)
        if listing is not None:
            return self._resale_item(listing, wanted.quantity, seen.get(listing.ticket_id), now)
        offer = event.standard_offer(wanted.id) or _match_standard(event, wanted, request)
        if offer is None:
            raise SandboxError(NO_INVENTORY, "No inventory found to match request")
        return _standard_item(event, offer, wanted.quantity)

    def _resale_item(
        self, listing: Listing, quantity: int, pinned: PriceBreakdown | None, now: float
    ) -> CartItem:
        if quantity > len(listing.seats):
            raise SandboxError(TICKET_LIMIT_REACHED, "Ticket limit reached")
        return CartItem(
            ticket_id=listing.ticket_id,
            offer_id=listing.offer_id,
            event_id=listing.event_id,
            quantity=quantity,
            inventory_type="Resale",
            description="Verified Resale Ticket",
            area=listing.area,
            section=listing.section,
            row=listing.row,
            seats=listing.seats[:quantity],
            price=pinned or self._pricer.price(listing, now),
        )


def _cart_id_of(body: Any) -> str | None:
    cart_id = body.get("cart_id") if isinstance(body, dict) else None
    return cart_id if isinstance(cart_id, str) and cart_id else None


def _match_standard(event: Event, wanted: TicketRequest, request: ReserveRequest) -> StandardOffer | None:
    """Best available standard offer for a ticket type id, within a price level and areas if given."""
    candidates = [
        o
        for o in event.offers
        if o.ticket_type_id == wanted.id and wanted.price_id in (None, o.price_level_id)
    ]
    in_areas = [o for o in candidates if o.area.id in request.areas] if request.areas else candidates
    if not in_areas and request.best_available:
        in_areas = candidates
    return max(in_areas, key=lambda o: event.best_pick(o).quality, default=None)


def _standard_item(event: Event, offer: StandardOffer, quantity: int) -> CartItem:
    if quantity > STANDARD_TICKET_LIMIT:
        raise SandboxError(TICKET_LIMIT_REACHED, "Ticket limit reached")
    pick = event.best_pick(offer)
    seats = () if pick.general_seating else tuple(str(pick.first_seat + i) for i in range(quantity))
    return CartItem(
        ticket_id=offer.offer_id,
        offer_id=offer.offer_id,
        event_id=event.event_id,
        quantity=quantity,
        inventory_type="Primary",
        description="Standard Ticket",
        area=offer.area,
        section=pick.section,
        row="" if pick.general_seating else pick.row,
        seats=seats,
        price=offer.price,
    )


def _offer_summary(offer: StandardOffer) -> dict[str, Any]:
    return {
        "offer_id": offer.offer_id,
        "ticket_type_id": offer.ticket_type_id,
        "price_level_id": offer.price_level_id,
        "area": offer.area.name,
        "total_price": offer.price.total,
    }
