"""The /_sandbox/ control API and the in-process handle."""

import threading

import pytest

from proxy.sandbox.client import API_KEY, EVENT_ID, valid_payment
from proxy.sandbox.errors import INVALID_INPUT
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import resale_sid


def test_the_clock_can_be_read_and_advanced(sandbox, tm):
    before = tm.request("GET", "/_sandbox/clock").json()["now"]
    advanced = tm.request("POST", "/_sandbox/clock/advance", json={"seconds": 3600}).json()["now"]
    assert 3600 <= advanced - before < 3660
    assert abs(sandbox.now() - advanced) < 60


def test_the_request_log_shows_what_reached_the_sandbox(tm):
    tm.top_picks(sid=None, quantity=2)
    tm.request("GET", "/_sandbox/state")

    [seen] = tm.request("GET", "/_sandbox/requests").json()["requests"]

    assert (seen["method"], seen["path"]) == ("GET", f"/top-picks/v1/events/{EVENT_ID}")
    assert f"apikey={API_KEY}" in seen["query"]
    assert tm.request("DELETE", "/_sandbox/requests").status_code == 204
    assert tm.request("GET", "/_sandbox/requests").json()["requests"] == []


def test_the_state_shows_sessions_and_carts_without_card_data(sandbox, tm):
    sid = resale_sid(tm.top_picks(selection="resale").json()).session_id
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    cart_id = tm.reserve([{"id": ticket}], sid=sid).json()["cart_id"]
    tm.add_payment(valid_payment(cart_id))

    response = tm.request("GET", "/_sandbox/state")

    state = response.json()
    [session] = state["sessions"]
    assert session["sessionId"] == sid and ticket in session["seen"]
    [cart] = state["carts"]
    assert (cart["cart_id"], cart["status"], cart["paid"]) == (cart_id, "open", True)
    assert "paysys" not in response.text


def test_reset_puts_everything_back_to_the_seed(sandbox, tm):
    prices = sandbox.catalog()
    sandbox.reprice(factor=2)
    sandbox.advance_clock(10_000)
    sid = resale_sid(tm.top_picks().json()).session_id

    assert tm.request("POST", "/_sandbox/reset").status_code == 200

    assert sandbox.catalog() == prices
    assert sandbox.snapshot()["sessions"] == []
    assert resale_sid(tm.top_picks(sid=sid).json()).session_id != sid


def test_the_delay_and_polling_controls_over_http(sandbox, tm):
    assert tm.request("POST", "/_sandbox/delay", json={"seconds": 0.01}).json() == {"seconds": 0.01}
    polling = tm.request("POST", "/_sandbox/polling", json={"wait": 2, "extra_rounds": 1}).json()
    assert (polling["wait"], polling["extra_rounds"]) == (2, 1)
    assert tm.request("GET", "/_sandbox/events").json()[EVENT_ID]["resale"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sandbox/clock/advance", {"seconds": "soon"}),
        ("/_sandbox/quota", {"limit": -1}),
        ("/_sandbox/reprice", {"listing": "nope"}),
        ("/_sandbox/reprice", {"factor": 2, "price": 3}),
        ("/_sandbox/delay", [1]),
    ],
)
def test_bad_control_requests_are_400s(tm, path, body):
    assert_error(tm.request("POST", path, json=body), 400, INVALID_INPUT)


def test_controls_are_safe_from_another_thread_while_serving(sandbox, tm):
    errors = []

    def hammer():
        try:
            for _ in range(50):
                sandbox.reprice(factor=1.01)
                sandbox.snapshot()
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=hammer)
    worker.start()
    codes = {tm.top_picks().status_code for _ in range(20)}
    worker.join()
    assert codes == {200} and errors == []
