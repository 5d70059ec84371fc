"""What Ticketmaster's URLs and bodies mean: Top Picks, cart calls, fan sessions, prices.

Plain functions over paths and parsed JSON, shared by the sandbox, the proxy and the audit.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

SESSION_HEADER = "X-TM-SESSION-SID"
FORCE_POLLING_HEADER = "X-TM-FORCE-POLLING"
SESSION_EXPIRED_MESSAGE = "SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"
SESSION_MESSAGE_HEADER = "X-TM-Session-Message"
DEFAULT_UPSTREAM = "https://app.ticketmaster.com"
RESALE_TICKET_PREFIX = "resale-"

_TOP_PICKS = re.compile(r"^/top-picks(?:-preprod)?/v1/events/(?P<event>[^/]+)/?$")
_CART = re.compile(r"^/partners(?:-preprod)?/v1/events/(?P<event>[^/]+)/cart(?P<sub>/[^?]*)?$")
_AVAILABILITY = re.compile(r"^/partners(?:-preprod)?/v1/events/[^/]+/availability/?$")
_POLL = re.compile(r"^/partners(?:-preprod)?/v1/polling/")
_CART_OPERATION = re.compile(r"^/(?P<api>partners(?:-preprod)?)/v1/events/[^/]+/(?P<operation>cart(?:/.*)?)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class CartCall(enum.Enum):
    RESERVE = "reserve"
    COMMIT = "commit"
    RELEASE = "release"
    SHIPPING = "shipping"
    PAYMENT = "payment"
    OTHER = "other"


def top_picks_event(path: str) -> str | None:
    """The event id of a Top Picks path, or None."""
    m = _TOP_PICKS.match(path)
    return m.group("event") if m else None


def cart_event(path: str) -> str | None:
    """The event id of a Partner API cart path (the cart or any sub-path), or None."""
    m = _CART.match(path)
    return m.group("event") if m else None


def is_polling_path(path: str) -> bool:
    return bool(_POLL.match(path))


def is_availability_path(path: str) -> bool:
    return bool(_AVAILABILITY.match(path))


def may_poll(method: str, path: str) -> bool:
    """A call that Ticketmaster may answer with 202 and a polling url: reserve, choose shipping, commit, release."""
    kind = classify_cart_call(method, path)
    if kind is CartCall.SHIPPING:
        return method.upper() == "PUT"
    return kind in (CartCall.RESERVE, CartCall.COMMIT, CartCall.RELEASE)


def polling_url(
    origin: str, cart_path: str, method: str, token: str, apikey: str | None, cart_id: str | None
) -> str:
    """Where a deferred cart call answers, shaped like the documented
    `/partners/v1/polling/cart/.../<METHOD>/<token>?apikey=&cart_id=` (UNCONFIRMED beyond the prefix).

    It carries the caller's apikey, as Ticketmaster's does, so the partner can GET it as given.
    """
    m = _CART_OPERATION.match(cart_path)
    api, operation = (m.group("api"), m.group("operation").rstrip("/")) if m else ("partners", "cart")
    query = urlencode([(k, v) for k, v in (("apikey", apikey), ("cart_id", cart_id)) if v], quote_via=quote)
    return f"{origin.rstrip('/')}/{api}/v1/polling/{operation}/{method.upper()}/{token}" + (
        f"?{query}" if query else ""
    )


def polling_answer(url: str, wait: float, cart_id: str | None) -> dict[str, Any]:
    """The body of a 202: come back to `url` after `wait` seconds (the cart when one is known)."""
    body: dict[str, Any] = {"polling_url": url, "wait": wait}
    if cart_id:
        body["cart_id"] = cart_id
    return body


def mark_session_renewed(body: dict[str, Any]) -> dict[str, str]:
    """Make a Top Picks body the renewal of an expired session: the message goes where the sandbox
    puts it (UNCONFIRMED where Ticketmaster does), a top-level `messages` entry; returns the header
    that also carries it."""
    messages = body.get("messages")
    body["messages"] = [*(messages if isinstance(messages, list) else []), SESSION_EXPIRED_MESSAGE]
    return {SESSION_MESSAGE_HEADER: SESSION_EXPIRED_MESSAGE}


def classify_cart_call(method: str, path: str) -> CartCall | None:
    """Which cart operation a request is, from its method and path; None for non-cart paths.

    A POST to the cart reserves; a PUT commits; a DELETE releases. Any other method on the cart
    itself (e.g. POST with a `cart_id` body) is classified by `is_commit_attempt`.
    """
    m = _CART.match(path)
    if not m:
        return None
    sub = (m.group("sub") or "").strip("/")
    method = method.upper()
    if sub == "":
        return {
            "POST": CartCall.RESERVE,
            "PUT": CartCall.COMMIT,
            "DELETE": CartCall.RELEASE,
        }.get(method, CartCall.OTHER)
    if sub == "shipping":
        return CartCall.SHIPPING
    if sub == "payment":
        return CartCall.PAYMENT
    return CartCall.OTHER


def is_commit_attempt(method: str, path: str, body: Any) -> bool:
    """A request that tries to commit a cart: a PUT on the cart, or another method carrying only a cart_id."""
    kind = classify_cart_call(method, path)
    if kind is CartCall.COMMIT:
        return True
    if kind in (CartCall.RESERVE, CartCall.OTHER) and isinstance(body, dict):
        return "cart_id" in body and "reserve" not in body
    return False


def looks_like_session_id(value: str) -> bool:
    """Ticketmaster issues UUIDs as session ids."""
    return bool(_UUID.match(value.strip()))


@dataclass(frozen=True)
class ResaleSid:
    session_id: str
    start_ms: int
    expire_ms: int


def parse_epoch_ms(value: Any) -> int | None:
    """Session times are epoch ms, documented as strings: accept numbers and numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number >= 0 else None
    return None


def resale_sid(body: Any) -> ResaleSid | None:
    """The `fanSession.resaleSid` of a Top Picks body, or None when absent or unusable."""
    if not isinstance(body, dict):
        return None
    fan = body.get("fanSession")
    sid = fan.get("resaleSid") if isinstance(fan, dict) else None
    if not isinstance(sid, dict):
        return None
    session_id = sid.get("sessionId")
    start = parse_epoch_ms(sid.get("sessionStartTime"))
    expire = parse_epoch_ms(sid.get("sessionExpireTime"))
    if not isinstance(session_id, str) or not session_id or start is None or expire is None:
        return None
    return ResaleSid(session_id, start, expire)


RESALE = "resale"


@dataclass
class ShownInventory:
    """What one Top Picks response showed: the ids a reserve may name, their prices, which are resale.

    A reserve names an offer by its `offerId`, or a resale listing by its long `ticketId`: both are kept.
    """

    ids: set[str] = field(default_factory=set)
    prices: dict[str, float] = field(default_factory=dict)
    resale_ids: set[str] = field(default_factory=set)


def shown_inventory(body: Any) -> ShownInventory:
    """The offers of a Top Picks body (`_embedded.offer`, and the ids its `picks` list).

    Resale is what Ticketmaster says: an offer with `inventoryType: resale`, or listed by a pick whose
    `selection` is resale; a resale offer's `ticketId` is resale too.
    """
    shown = ShownInventory()
    if not isinstance(body, dict):
        return shown
    for pick in _dicts(body.get("picks")):
        listed = pick.get("offers")
        offers = [o for o in listed if isinstance(o, str) and o] if isinstance(listed, list) else []
        shown.ids.update(offers)
        if _is_resale_word(pick.get("selection")):
            shown.resale_ids.update(offers)
    embedded = body.get("_embedded")
    for offer in _dicts(embedded.get("offer") if isinstance(embedded, dict) else None):
        ids = [
            offer[key] for key in ("offerId", "ticketId") if isinstance(offer.get(key), str) and offer[key]
        ]
        shown.ids.update(ids)
        if _is_resale_word(offer.get("inventoryType")) or any(i in shown.resale_ids for i in ids):
            shown.resale_ids.update(ids)
        price = offer.get("totalPrice")
        if isinstance(price, int | float) and not isinstance(price, bool):
            shown.prices.update(dict.fromkeys(ids, float(price)))
    return shown


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _is_resale_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == RESALE


def offer_prices(body: Any) -> dict[str, float]:
    """The per-ticket `totalPrice` of each offer a Top Picks body showed, by `offerId` and `ticketId`."""
    return shown_inventory(body).prices


@dataclass(frozen=True)
class ReservedTicket:
    ticket_id: str
    quantity: int
    price_amount: float | None


def reserved_tickets(body: Any) -> list[ReservedTicket]:
    """The tickets a reserve body asks for."""
    if not isinstance(body, dict):
        return []
    reserve = body.get("reserve")
    tickets = reserve.get("tickets") if isinstance(reserve, dict) else None
    if not isinstance(tickets, list):
        return []
    out = []
    for t in tickets:
        if not isinstance(t, dict) or not isinstance(t.get("id"), str):
            continue
        qty = t.get("quantity")
        price = t.get("price")
        amount = price.get("amount") if isinstance(price, dict) else None
        out.append(
            ReservedTicket(
                ticket_id=t["id"],
                quantity=qty if isinstance(qty, int) and not isinstance(qty, bool) else 1,
                price_amount=float(amount) if isinstance(amount, int | float) else None,
            )
        )
    return out


def is_resale_ticket(ticket_id: str) -> bool:
    """A resale listing id by its shape alone; offers are known as resale from Top Picks (see SessionTable)."""
    return ticket_id.startswith(RESALE_TICKET_PREFIX)


@dataclass(frozen=True)
class ChargedItem:
    ticket_id: str
    offer_id: str | None
    unit_price: float
    quantity: int
    inventory_type: str


def charged_items(body: Any) -> list[ChargedItem]:
    """The ticket items of a reserve response with their per-ticket price (sum of its charges)."""
    if not isinstance(body, dict):
        return []
    cart = body.get("cart")
    items = cart.get("items") if isinstance(cart, dict) else None
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        charges = item.get("charges")
        if not isinstance(charges, list):
            continue
        unit = 0.0
        for c in charges:
            if isinstance(c, dict) and isinstance(c.get("price"), int | float):
                unit += float(c["price"])
        qty = item.get("quantity")
        out.append(
            ChargedItem(
                ticket_id=str(item.get("id", "")),
                offer_id=item.get("offer_id") if isinstance(item.get("offer_id"), str) else None,
                unit_price=round(unit, 2),
                quantity=qty if isinstance(qty, int) and not isinstance(qty, bool) else 1,
                inventory_type=str(item.get("inventory_type", "")),
            )
        )
    return out


def reserved_resale(body: Any) -> list[ChargedItem]:
    """The items of a reserve answer that Ticketmaster reserved from resale inventory."""
    return [item for item in charged_items(body) if _is_resale_word(item.inventory_type)]
