"""Top Picks: the documented body shape, selection, quantity and paging."""

import pytest

from proxy.sandbox.client import EVENT_ID
from proxy.sandbox.errors import INVALID_INPUT, NO_INVENTORY
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import offer_prices

SEEDED_EVENTS = ["2000527EE48A9334", "000051048D991EE7", "20005676DCC39B71"]


def _selections(body):
    return {p["selection"] for p in body["picks"]}


@pytest.mark.parametrize("event_id", SEEDED_EVENTS)
def test_every_seeded_event_has_standard_offers_and_resale_listings(tm, event_id):
    response = tm.top_picks(event_id, quantity=2, selection="Any", sort="quality")
    assert response.status_code == 200
    body = response.json()

    assert set(body) == {"fanSession", "page", "picks", "_embedded", "eventDetails"}
    assert body["eventDetails"]["id"] == event_id
    offers = body["_embedded"]["offer"]
    resale = [o for o in offers if o.get("inventoryType") == "resale"]
    standard = [o for o in offers if "inventoryType" not in o]
    assert len(resale) >= 3 and len(standard) >= 3
    for offer in resale:
        assert offer["ticketId"].startswith("resale-listingVer-")
        assert offer["ticketId"].endswith(f":{event_id}")


def test_offers_carry_the_documented_fields_and_consistent_prices(tm):
    body = tm.top_picks().json()
    offers = {o["offerId"]: o for o in body["_embedded"]["offer"]}
    for offer in offers.values():
        assert {
            "offerId",
            "name",
            "ticketTypeId",
            "priceLevelId",
            "description",
            "currency",
            "faceValue",
            "totalPrice",
            "charges",
            "limit",
            "promotions",
        } <= set(offer)
        per_ticket = sum(c["amount"] for c in offer["charges"] if c["fee_type"] == "PER TICKET")
        assert offer["totalPrice"] == round(offer["faceValue"] + per_ticket, 2)
        assert all(set(c) == {"reason", "type", "amount", "fee_type"} for c in offer["charges"])
    for pick in body["picks"]:
        assert pick["type"] in ("seats", "general-seating")
        assert set(pick["area"]) == {"id", "name", "description"}
        assert all(o in offers for o in pick["offers"])
    resale = [o for o in offers.values() if o.get("inventoryType") == "resale"]
    prices = offer_prices(body)
    assert all(prices[o["ticketId"]] == prices[o["offerId"]] == o["totalPrice"] for o in resale)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("resale", {"resale"}),
        ("RESALE", {"resale"}),
        ("standard", {"standard"}),
        ("Platinum", {"standard"}),
        ("any", {"standard", "resale"}),
        (None, {"standard", "resale"}),
    ],
)
def test_selection_filters_picks_and_offers(tm, selection, expected):
    params = {} if selection is None else {"selection": selection}
    body = tm.top_picks(**params).json()

    assert _selections(body) == expected
    kinds = {
        "resale" if o.get("inventoryType") == "resale" else "standard" for o in body["_embedded"]["offer"]
    }
    assert kinds == expected


def test_quantity_limits_listings_and_sets_the_seats_shown(tm):
    body = tm.top_picks(selection="resale", quantity=3).json()
    assert all(len(p["seats"]) == 3 for p in body["picks"])
    assert all(o["limit"]["max"] >= 3 for o in body["_embedded"]["offer"])
    assert len(body["picks"]) < len(tm.top_picks(selection="resale", quantity=1).json()["picks"])


def test_picks_are_paged_best_quality_first(tm):
    everything = tm.top_picks().json()
    total = everything["page"]["totalElements"]
    first = tm.top_picks(limit=4, page=1).json()
    second = tm.top_picks(limit=4, page=2).json()

    assert everything["page"] == {"number": 1, "size": total, "totalElements": total, "totalPages": 1}
    assert first["page"] == {"number": 1, "size": 4, "totalElements": total, "totalPages": -(-total // 4)}
    qualities = [p["quality"] for p in everything["picks"]]
    assert qualities == sorted(qualities, reverse=True)
    assert first["picks"] + second["picks"] == everything["picks"][:8]
    shown = {o for p in first["picks"] for o in p["offers"]}
    assert {o["offerId"] for o in first["_embedded"]["offer"]} == shown


@pytest.mark.parametrize("params", [{"selection": "vip"}, {"quantity": "two"}, {"limit": 0}, {"page": -1}])
def test_unacceptable_parameters_answer_406(tm, params):
    assert_error(tm.top_picks(**params), 406, INVALID_INPUT)


def test_an_unknown_event_is_a_404(tm):
    assert_error(tm.top_picks("0000000000000000"), 404, NO_INVENTORY)


def test_event_details_and_availability(tm):
    details = tm.request("GET", f"/partners/v1/events/{EVENT_ID}")
    availability = tm.request("GET", f"/partners-preprod/v1/events/{EVENT_ID}/availability")

    assert details.status_code == availability.status_code == 200
    assert details.json()["event"]["id"] == availability.json()["event"]["id"] == EVENT_ID
    assert details.json()["api_transactable"] is True
    assert availability.json()["event"]["tickets"]
    assert_error(tm.request("GET", "/partners/v1/events/0000000000000000"), 404, NO_INVENTORY)
