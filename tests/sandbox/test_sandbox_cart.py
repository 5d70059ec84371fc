"""The Partner API cart flow: reserve, shipping, payment, commit, release, and its errors."""

import pytest

from proxy.sandbox.carts import HOLD_TIME
from proxy.sandbox.client import EVENT_ID, valid_payment
from proxy.sandbox.errors import (
    INVALID_CART,
    INVALID_INPUT,
    INVALID_RESERVE,
    INVALID_RESERVE_MESSAGE,
    INVALID_SECURITY_CODE,
    NO_INVENTORY,
    PAYMENT_NOT_ACCEPTED,
    TICKET_LIMIT_REACHED,
)
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import charged_items

OTHER_EVENT = "000051048D991EE7"


def _standard_offer(tm):
    body = tm.top_picks(selection="standard").json()
    return body["_embedded"]["offer"][0]


def _reserve(tm):
    response = tm.reserve([{"id": _standard_offer(tm)["offerId"], "quantity": 2}])
    assert response.status_code == 200, response.text
    return response.json()["cart_id"]


def test_the_full_flow_ends_in_a_committed_order(sandbox, tm):
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    reserved = tm.reserve([{"id": ticket, "quantity": 2, "price": {"id": "1", "amount": 1.0}}])
    assert reserved.status_code == 200
    body = reserved.json()
    cart_id, cart = body["cart_id"], body["cart"]
    assert cart["hold_time"] == HOLD_TIME
    assert set(cart["totals"]) >= {
        "currency_code",
        "fee",
        "grand",
        "merchandise",
        "delivery",
        "tax",
        "unpaid",
    }
    [item] = charged_items(body)
    assert (item.ticket_id, item.quantity, item.inventory_type) == (ticket, 2, "Resale")
    assert cart["totals"]["grand"] == round(item.unit_price * 2, 2)

    options = tm.shipping_options(cart_id)
    assert options.status_code == 200
    mail = next(o for o in options.json()["shipping_options"] if o["id"] == "1")
    shipped = tm.choose_shipping(cart_id, "1")
    assert shipped.status_code == 200
    grand = shipped.json()["cart"]["totals"]["grand"]
    assert grand == round(item.unit_price * 2 + mail["price"]["amount"], 2)

    assert tm.add_payment(valid_payment(cart_id, grand)).status_code == 200
    committed = tm.commit(cart_id)

    assert committed.status_code == 200
    order = committed.json()
    assert set(order) == {"order_token", "order_number", "grand_total", "currency_code", "redemption_url"}
    assert (order["grand_total"], order["currency_code"]) == (grand, "USD")
    lookup = tm.request("GET", "/partners/v1/orders", {"order_token": order["order_token"]})
    assert lookup.json()["order_number"] == order["order_number"]
    assert_error(tm.commit(cart_id), 400, INVALID_CART)


def test_release_answers_204_and_the_cart_is_then_stale(tm):
    cart_id = _reserve(tm)
    released = tm.release(cart_id)
    assert (released.status_code, released.content) == (204, b"")
    assert_error(tm.release(cart_id), 400, INVALID_CART)
    assert_error(tm.shipping_options(cart_id), 400, INVALID_CART)


def test_carts_expire_after_the_hold_time(sandbox, tm):
    cart_id = _reserve(tm)
    sandbox.advance_clock(HOLD_TIME - 1)
    assert tm.shipping_options(cart_id).status_code == 200
    sandbox.advance_clock(1)
    assert_error(tm.shipping_options(cart_id), 400, INVALID_CART)


@pytest.mark.parametrize("cart_id", ["", "bm90LWEtY2FydA==", None])
def test_unknown_carts_are_invalid(tm, cart_id):
    path = f"/partners/v1/events/{EVENT_ID}/cart/shipping"
    assert_error(tm.request("GET", path, {"cart_id": cart_id}), 400, INVALID_CART)


def test_a_cart_belongs_to_its_event(tm):
    cart_id = _reserve(tm)
    assert_error(tm.shipping_options(cart_id, event_id=OTHER_EVENT), 400, INVALID_CART)


def test_a_commit_that_is_not_a_put_is_an_invalid_reserve(tm):
    cart_id = _reserve(tm)
    path = f"/partners/v1/events/{EVENT_ID}/cart"
    for method in ("POST", "PATCH"):
        error = assert_error(tm.request(method, path, json={"cart_id": cart_id}), 400, INVALID_RESERVE)
        assert error["message"] == INVALID_RESERVE_MESSAGE


def test_a_commit_without_a_cart_id_is_an_invalid_reserve(tm):
    assert_error(tm.request("PUT", f"/partners/v1/events/{EVENT_ID}/cart", json={}), 400, INVALID_RESERVE)


def test_a_commit_needs_payment(tm):
    assert_error(tm.commit(_reserve(tm)), 400, PAYMENT_NOT_ACCEPTED)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("first_name", None, INVALID_INPUT), ("card", None, INVALID_INPUT), ("type", "CASH", INVALID_INPUT)],
)
def test_payment_needs_its_required_fields(tm, field, value, code):
    body = valid_payment(_reserve(tm))
    body["payment"][field] = value
    assert_error(tm.add_payment(body), 400, code)


@pytest.mark.parametrize(
    ("field", "code"), [("number", INVALID_INPUT), ("cin", INVALID_INPUT), ("encryption_key", INVALID_INPUT)]
)
def test_payment_needs_every_card_field(tm, field, code):
    body = valid_payment(_reserve(tm))
    del body["payment"]["card"][field]
    assert_error(tm.add_payment(body), 400, code)


@pytest.mark.parametrize(
    ("field", "code"), [("number", PAYMENT_NOT_ACCEPTED), ("cin", INVALID_SECURITY_CODE)]
)
def test_unencrypted_card_data_is_refused(tm, field, code):
    body = valid_payment(_reserve(tm))
    body["payment"]["card"][field] = "4588 8832 0600 0011" if field == "number" else "123"
    assert_error(tm.add_payment(body), 400, code)


def test_an_unknown_ticket_has_no_inventory(tm):
    error = assert_error(tm.reserve([{"id": "000000000099", "quantity": 1}]), 400, NO_INVENTORY)
    assert error["message"] == "No inventory found to match request"


def test_quantities_over_the_limit_are_refused(sandbox, tm):
    listing = sandbox.catalog()[EVENT_ID]["resale"][0]
    assert_error(
        tm.reserve([{"id": listing["ticket_id"], "quantity": listing["seats"] + 1}]),
        400,
        TICKET_LIMIT_REACHED,
    )
    assert_error(
        tm.reserve([{"id": _standard_offer(tm)["offerId"], "quantity": 9}]), 400, TICKET_LIMIT_REACHED
    )


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"reserve": {}}', b'{"reserve": {"tickets": [{"id": "x", "quantity": 0}]}}'],
)
def test_malformed_reserve_bodies_are_invalid_reserves(tm, body):
    response = tm.request(
        "POST",
        f"/partners/v1/events/{EVENT_ID}/cart",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, INVALID_RESERVE)


def test_a_reserve_for_an_unknown_event_is_a_404(tm):
    assert_error(tm.reserve([{"id": "x"}], event_id="0000000000000000"), 404, NO_INVENTORY)


def test_standard_tickets_by_ticket_type_price_level_and_area(sandbox, tm):
    floor = next(o for o in sandbox.catalog()[EVENT_ID]["standard"] if o["area"] == "FLOOR")
    body = {
        "reserve": {
            "tickets": [
                {"id": floor["ticket_type_id"], "quantity": 2, "price": {"id": floor["price_level_id"]}}
            ]
        }
    }
    response = tm.request("POST", f"/partners-preprod/v1/events/{EVENT_ID}/cart", json=body)
    [item] = charged_items(response.json())
    assert (item.offer_id, item.unit_price) == (floor["offer_id"], floor["total_price"])

    wrong_area = {"reserve": {"tickets": body["reserve"]["tickets"], "areas": [{"id": "0"}]}}
    path = f"/partners/v1/events/{EVENT_ID}/cart"
    assert_error(tm.request("POST", path, json=wrong_area), 400, NO_INVENTORY)
    wrong_area["reserve"]["accept_best_available"] = True
    assert tm.request("POST", path, json=wrong_area).status_code == 200


def test_an_unknown_shipping_option_is_refused(tm):
    assert_error(tm.choose_shipping(_reserve(tm), "999"), 400, INVALID_INPUT)
