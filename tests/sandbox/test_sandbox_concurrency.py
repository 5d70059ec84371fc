"""No concurrent calls on one cart: the second call while the first is processed is refused."""

from concurrent.futures import ThreadPoolExecutor

from proxy.sandbox.client import EVENT_ID, SandboxClient
from proxy.sandbox.errors import CONCURRENT_CART_CALL
from proxy.sandbox.testing import assert_error


def test_a_second_call_on_a_busy_cart_is_refused(sandbox, tm):
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    cart_id = tm.reserve([{"id": ticket}]).json()["cart_id"]
    sandbox.set_delay(1.0)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(SandboxClient(sandbox.url).choose_shipping, cart_id, "12")
        assert sandbox.wait_until_busy(cart_id, timeout=10)
        second = SandboxClient(sandbox.url).shipping_options(cart_id)
        first_response = first.result(timeout=30)

    assert first_response.status_code == 200
    assert first_response.json()["cart"]["shipping"]["id"] == "12"
    assert_error(second, 409, CONCURRENT_CART_CALL)


def test_calls_on_different_carts_do_not_block_each_other(sandbox, tm):
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    first_cart, other_cart = (tm.reserve([{"id": ticket}]).json()["cart_id"] for _ in range(2))
    sandbox.set_delay(0.2)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(SandboxClient(sandbox.url).shipping_options, first_cart)
        assert sandbox.wait_until_busy(first_cart, timeout=10)
        other = SandboxClient(sandbox.url).shipping_options(other_cart)
        assert first.result(timeout=30).status_code == 200

    assert other.status_code == 200
