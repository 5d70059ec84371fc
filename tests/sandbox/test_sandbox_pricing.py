"""Resale prices: pinned by a valid fan session, current otherwise; deterministic per seed."""

from proxy.sandbox.client import EVENT_ID, SandboxClient
from proxy.sandbox.pricing import DEFAULT_REPRICE_INTERVAL
from proxy.sandbox.server import running_sandbox
from proxy.ticketmaster import charged_items, offer_prices, resale_sid


def _first_resale_offer(body):
    return next(o for o in body["_embedded"]["offer"] if o.get("inventoryType") == "resale")


def _browse(tm, **params):
    """Top Picks for resale: (session id, ticket id, totalPrice shown)."""
    body = tm.top_picks(selection="resale", **params).json()
    offer = _first_resale_offer(body)
    return resale_sid(body).session_id, offer["ticketId"], offer["totalPrice"]


def _charged(response):
    assert response.status_code == 200, response.text
    [item] = charged_items(response.json())
    return item


def _resale_prices(client):
    body = client.top_picks(selection="resale").json()
    return {o["ticketId"]: o["totalPrice"] for o in body["_embedded"]["offer"]}


def test_a_valid_session_pays_the_price_it_saw_after_a_reprice(sandbox, tm):
    sid, ticket, seen = _browse(tm)
    new = sandbox.reprice(listing=ticket, factor=1.5)[ticket]
    assert new != seen

    pinned = _charged(tm.reserve([{"id": ticket, "quantity": 2}], sid=sid))
    unpinned = _charged(tm.reserve([{"id": ticket, "quantity": 2}]))

    assert (pinned.unit_price, pinned.inventory_type, pinned.quantity) == (seen, "Resale", 2)
    assert unpinned.unit_price == new == sandbox.current_price(ticket)
    assert offer_prices(tm.top_picks(sid=sid, selection="resale").json())[ticket] == seen


def test_an_expired_session_pays_the_current_price(sandbox, tm):
    sid, ticket, seen = _browse(tm)
    sandbox.reprice(listing=ticket, factor=2.0)
    sandbox.advance_clock(3600)

    charged = _charged(tm.reserve([{"id": ticket, "quantity": 1}], sid=sid))

    assert charged.unit_price == sandbox.current_price(ticket) != seen


def test_a_listing_the_session_never_saw_pays_the_current_price(sandbox, tm):
    sid = resale_sid(tm.top_picks(selection="standard").json()).session_id
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    new = sandbox.reprice(listing=ticket, factor=0.5)[ticket]

    assert _charged(tm.reserve([{"id": ticket}], sid=sid)).unit_price == new


def test_a_renewed_session_snapshots_current_prices_again(sandbox, tm):
    sid, ticket, _ = _browse(tm)
    sandbox.reprice(listing=ticket, factor=1.25)
    sandbox.advance_clock(3600)
    current = sandbox.current_price(ticket)

    renewed = tm.top_picks(sid=sid, selection="resale").json()
    sandbox.reprice(listing=ticket, factor=1.25)

    assert resale_sid(renewed).session_id == sid
    assert offer_prices(renewed)[ticket] == current
    assert _charged(tm.reserve([{"id": ticket}], sid=sid)).unit_price == current


def test_an_explicit_price_is_the_all_in_per_ticket_price(sandbox, tm):
    ticket = sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]
    sandbox.reprice(listing=ticket, price=123.45)

    assert _resale_prices(tm)[ticket] == 123.45
    assert _charged(tm.reserve([{"id": ticket}])).unit_price == 123.45


def test_the_reprice_control_over_http_changes_an_events_prices(sandbox, tm):
    before = _resale_prices(tm)
    response = tm.request("POST", "/_sandbox/reprice", json={"event_id": EVENT_ID, "factor": 2})
    assert response.status_code == 200
    after = _resale_prices(tm)
    assert response.json()["prices"] == after
    assert all(after[t] > before[t] for t in before)


def test_resale_prices_move_with_sandbox_time(sandbox, tm):
    before = _resale_prices(tm)
    sandbox.advance_clock(DEFAULT_REPRICE_INTERVAL)
    assert _resale_prices(tm) != before


def test_standard_prices_are_fixed(sandbox, tm):
    body = tm.top_picks(selection="standard").json()
    offer = body["_embedded"]["offer"][0]
    sandbox.reprice(factor=3.0)
    sandbox.advance_clock(5 * DEFAULT_REPRICE_INTERVAL)

    charged = _charged(tm.reserve([{"id": offer["offerId"], "quantity": 2}]))

    assert (charged.unit_price, charged.inventory_type) == (offer["totalPrice"], "Primary")
    assert offer["totalPrice"] == round(
        offer["faceValue"] + sum(c["amount"] for c in offer["charges"] if c["fee_type"] == "PER TICKET"), 2
    )


def test_the_same_seed_gives_the_same_prices_and_another_seed_different_ones(tm):
    with running_sandbox(seed=1) as same, running_sandbox(seed=2) as other:
        assert _resale_prices(SandboxClient(same.url)) == _resale_prices(tm)
        other_prices = _resale_prices(SandboxClient(other.url))
    assert sorted(other_prices.values()) != sorted(_resale_prices(tm).values())
    assert set(other_prices).isdisjoint(_resale_prices(tm))
