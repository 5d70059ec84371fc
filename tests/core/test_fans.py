"""Fan keying in the core: bearer token, then the partner's fan key, then the client address."""

from __future__ import annotations

import pytest

from proxy.exchange import Exchange, Headers, Request
from proxy.fans import (
    BEARER,
    CLIENT,
    COOKIE,
    HEADER,
    Fan,
    FanKeySpec,
    FanKeySpecError,
    fan_of,
    identify_fan,
)

TOKEN = "member-token-Zq81kLm03x"


def request(headers: dict[str, str] | list[tuple[str, str]] = ()) -> Request:
    items = headers.items() if isinstance(headers, dict) else headers
    return Request("POST", "https://app.ticketmaster.com/partners/v1/events/E/cart", Headers(items))


def test_the_bearer_token_identifies_the_fan_and_only_its_digest_is_kept():
    fan = identify_fan(request({"Authorization": f"Bearer {TOKEN}"}), "10.0.0.5", None)
    assert fan.kind == BEARER
    assert TOKEN not in repr(fan) and TOKEN not in str(fan.to_record())
    again = identify_fan(request({"Authorization": f"bearer {TOKEN}"}), "10.0.0.9", None)
    assert again.differs_from(fan) is None
    other = identify_fan(request({"Authorization": "Bearer someone-else-9"}), "10.0.0.5", None)
    assert other.differs_from(fan) == BEARER


def test_a_configured_header_or_cookie_tells_fans_apart_without_a_token():
    by_header = FanKeySpec.parse("header:X-Partner-User")
    alice = identify_fan(request({"x-partner-user": "alice"}), "10.0.0.5", by_header)
    bob = identify_fan(request({"X-Partner-User": "bob"}), "10.0.0.5", by_header)
    assert (alice.kind, alice.differs_from(bob)) == (HEADER, HEADER)
    by_cookie = FanKeySpec.parse("cookie:fan")
    carol = identify_fan(request({"Cookie": "theme=dark; fan=carol"}), "10.0.0.5", by_cookie)
    assert carol.kind == COOKIE and "carol" not in str(carol.to_record())


def test_without_any_key_the_client_address_is_the_fan():
    fan = identify_fan(request(), "10.0.0.5", FanKeySpec.parse("header:X-Partner-User"))
    assert (fan.kind, fan.key) == (CLIENT, (CLIENT, "10.0.0.5"))
    assert fan.differs_from(identify_fan(request(), "10.0.0.6", None)) == CLIENT


def test_redacted_tokens_identify_nobody():
    fan = identify_fan(request({"Authorization": "Bearer REDACTED"}), "10.0.0.5", None)
    assert fan.kind == CLIENT


def test_fans_compare_on_the_strongest_key_both_calls_carry():
    spec = FanKeySpec.parse("header:X-Partner-User")
    top_picks = identify_fan(request({"X-Partner-User": "alice"}), "10.0.0.5", spec)
    reserve = identify_fan(
        request({"X-Partner-User": "alice", "Authorization": f"Bearer {TOKEN}"}), "10.0.0.5", spec
    )
    assert reserve.kind == BEARER
    assert reserve.differs_from(top_picks) is None  # the header decides: one fan
    apikey_only = Fan((), "10.0.0.5")
    assert reserve.differs_from(apikey_only) is None  # same address, nothing stronger to compare


def test_an_exchange_keeps_its_fan_so_a_recording_can_name_it():
    ex = Exchange(request({"Authorization": f"Bearer {TOKEN}"}), client="10.0.0.5:4431")
    fan = fan_of(ex, None)
    assert ex.fan == fan.to_record()
    ex.request.headers.set("Authorization", "Bearer REDACTED")  # as a recording stores it
    assert fan_of(ex, None) == fan


@pytest.mark.parametrize("text", ["", "X-Partner-User", "query:fan", "header:", "cookie: "])
def test_a_fan_key_spec_must_name_a_header_or_a_cookie(text: str):
    with pytest.raises(FanKeySpecError, match="header:NAME or cookie:NAME"):
        FanKeySpec.parse(text)
