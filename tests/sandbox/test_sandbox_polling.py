"""Forced polling: 202 with a polling url, then the original answer exactly once."""

from urllib.parse import parse_qs, urlsplit

from proxy.sandbox.client import API_KEY, EVENT_ID, valid_payment
from proxy.sandbox.errors import INVALID_CART, NO_INVENTORY
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import charged_items, is_polling_path


def _accepted(response):
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"polling_url", "wait", "cart_id"}
    url = urlsplit(body["polling_url"])
    assert is_polling_path(url.path)
    assert parse_qs(url.query) == {"apikey": [API_KEY], "cart_id": [body["cart_id"]]}
    return body


def _ticket(sandbox):
    return sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]


def test_a_forced_reserve_polls_then_answers_the_cart_once(sandbox, tm):
    accepted = _accepted(tm.reserve([{"id": _ticket(sandbox)}], poll=True))
    assert accepted["polling_url"].startswith(sandbox.url + "/partners/v1/polling/cart/POST/")

    final = tm.follow(accepted["polling_url"])

    assert final.status_code == 200
    assert final.json()["cart_id"] == accepted["cart_id"]
    assert charged_items(final.json())[0].ticket_id == _ticket(sandbox)
    assert_error(tm.follow(accepted["polling_url"]), 404, INVALID_CART)


def test_every_may_poll_call_can_be_forced(sandbox, tm):
    cart_id = tm.reserve([{"id": _ticket(sandbox)}]).json()["cart_id"]

    shipped = tm.follow(_accepted(tm.choose_shipping(cart_id, poll=True))["polling_url"])
    assert shipped.json()["cart"]["shipping"]["id"] == "4"
    tm.add_payment(valid_payment(cart_id))
    committed = tm.follow(_accepted(tm.commit(cart_id, poll=True))["polling_url"])
    assert committed.status_code == 200 and "order_token" in committed.json()

    other = tm.reserve([{"id": _ticket(sandbox)}]).json()["cart_id"]
    released = tm.follow(_accepted(tm.release(other, poll=True))["polling_url"])
    assert (released.status_code, released.content) == (204, b"")


def test_extra_rounds_answer_202_again_before_the_result(sandbox, tm):
    sandbox.set_polling(wait=4, extra_rounds=1)
    accepted = _accepted(tm.reserve([{"id": _ticket(sandbox)}], poll=True))
    assert accepted["wait"] == 4

    assert _accepted(tm.follow(accepted["polling_url"])) == accepted
    assert tm.follow(accepted["polling_url"]).status_code == 200


def test_errors_are_answered_directly_even_when_polling_is_forced(tm):
    assert_error(tm.reserve([{"id": "unknown"}], poll=True), 400, NO_INVENTORY)
