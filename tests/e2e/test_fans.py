"""Real partner traffic through real ports: resale by offer id, many fans behind one backend address."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from proxy.processes import recording, run_tmproxy, tmproxy
from proxy.sandbox.client import EVENT_ID, SandboxClient

RESERVE_PATH = f"/partners/v1/events/{EVENT_ID}/cart"


def resale_offer(picks_body: dict) -> dict:
    return next(o for o in picks_body["_embedded"]["offer"] if o.get("inventoryType") == "resale")


def sid_of(picks_body: dict) -> str:
    return picks_body["fanSession"]["resaleSid"]["sessionId"]


def unit_price(reserve_body: dict) -> float:
    item = reserve_body["cart"]["items"][0]
    return round(sum(c["price"] for c in item["charges"]), 2)


def reserves_seen_by(sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == RESERVE_PATH]


def fan(base_url: str, token: str | None = None, partner_user: str | None = None) -> SandboxClient:
    """One fan's calls as a partner backend makes them: all from the same address."""
    client = SandboxClient(base_url)
    if token:
        client.http.headers["Authorization"] = f"Bearer {token}"
    if partner_user:
        client.http.headers["X-Partner-User"] = partner_user
    return client


def audit_rules(cassette: Path) -> Counter[str]:
    result = run_tmproxy("audit", str(cassette), "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return Counter(f["rule"] for f in json.loads(result.stdout)["findings"])


# (a) ---------------------------------------------------------------------------------------------------


def test_enforce_blocks_a_sidless_reserve_of_a_resale_offer_id(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", "--sid", "enforce") as proxy:
        client = SandboxClient(proxy.url)
        offer = resale_offer(client.top_picks(selection="resale").json())
        assert offer["offerId"].startswith("RS") and not offer["offerId"].startswith("resale-")
        blocked = client.reserve([{"id": offer["offerId"], "quantity": 2}])
        assert blocked.status_code == 428
        assert "sid-missing" in blocked.json()["error"]["message"]
        assert reserves_seen_by(sandbox) == []
    assert "[sid-missing]" in proxy.stderr_text


def test_validate_and_the_offline_audit_report_a_sidless_reserve_of_a_resale_offer_id(sandbox, tmp_path):
    cassette = tmp_path / "offer-id.yaml"
    with recording(cassette, sandbox.url) as proxy:
        client = SandboxClient(proxy.url)
        offer = resale_offer(client.top_picks(selection="resale").json())
        reserved = client.reserve([{"id": offer["offerId"], "quantity": 2}])
        assert reserved.json()["cart"]["items"][0]["inventory_type"] == "Resale"
        client.release(reserved.json()["cart_id"])
        assert proxy.stop() == 0
    assert proxy.stderr_text.count("[sid-missing]") == 1
    assert "sid-missing=1" in proxy.stdout
    assert audit_rules(cassette) == Counter({"sid-missing": 1})


def test_a_standard_reserve_without_a_session_stays_unflagged(sandbox, tmp_path):
    cassette = tmp_path / "standard.yaml"
    with recording(cassette, sandbox.url) as proxy:
        client = SandboxClient(proxy.url)
        picks = client.top_picks(selection="standard").json()
        offer = next(o for o in picks["_embedded"]["offer"] if "inventoryType" not in o)
        reserved = client.reserve([{"id": offer["offerId"], "quantity": 2}])
        assert reserved.json()["cart"]["items"][0]["inventory_type"] == "Primary"
        client.release(reserved.json()["cart_id"])
        assert proxy.stop() == 0
    assert "findings: 0" in proxy.stdout
    assert audit_rules(cassette) == Counter()


# (b), (c) -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fan_key", "alice", "bob"),
    [
        ((), {"token": "alice-member-token-1"}, {"token": "bob-member-token-2"}),
        (("--fan-key", "header:X-Partner-User"), {"partner_user": "alice"}, {"partner_user": "bob"}),
    ],
    ids=["bearer-tokens", "fan-key-header"],
)
def test_inject_gives_each_fan_their_own_session_and_price(sandbox, fan_key, alice, bob):
    args = ("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", "--sid", "inject", *fan_key)
    with tmproxy(*args) as proxy:
        fans = {"alice": fan(proxy.url, **alice), "bob": fan(proxy.url, **bob)}
        shown: dict[str, tuple[str, dict]] = {}
        for name, client in fans.items():  # interleaved: each loads Top Picks, then prices move
            picks = client.top_picks(selection="resale").json()
            shown[name] = (sid_of(picks), resale_offer(picks))
            sandbox.reprice(event_id=EVENT_ID, factor=1.25)
        assert shown["alice"][1]["ticketId"] == shown["bob"][1]["ticketId"]  # the same listing...
        assert shown["alice"][1]["totalPrice"] != shown["bob"][1]["totalPrice"]  # ...at two prices
        for name, key in (("alice", "offerId"), ("bob", "ticketId")):
            offer = shown[name][1]
            reserved = fans[name].reserve([{"id": offer[key], "quantity": 1}])
            assert reserved.status_code == 200
            assert unit_price(reserved.json()) == offer["totalPrice"]
            fans[name].release(reserved.json()["cart_id"])
        seen = [r["headers"].get("X-TM-SESSION-SID") for r in reserves_seen_by(sandbox)]
        assert seen == [shown["alice"][0], shown["bob"][0]]
        assert proxy.stop() == 0
    kind = "bearer" if not fan_key else "header"
    assert f"fans: 2 ({kind} 2)" in proxy.stdout
    assert "findings: 0" in proxy.stdout


# (d) ---------------------------------------------------------------------------------------------------


def test_a_fan_sending_another_fans_session_is_a_sid_mismatch_live_and_offline(sandbox, tmp_path):
    cassette = tmp_path / "mismatch.yaml"
    with recording(cassette, sandbox.url) as proxy:
        alice, bob = fan(proxy.url, token="alice-member-token-1"), fan(proxy.url, token="bob-member-token-2")
        alice_picks = alice.top_picks(selection="resale").json()
        bob.top_picks(selection="resale")
        offer = resale_offer(alice_picks)
        reserved = bob.reserve([{"id": offer["ticketId"], "quantity": 1}], sid=sid_of(alice_picks))
        assert reserved.status_code == 200
        bob.release(reserved.json()["cart_id"])
        assert proxy.stop() == 0
    assert proxy.stderr_text.count("[sid-mismatch]") == 1
    assert "issued to another fan (the bearer differs)" in proxy.stderr_text
    assert (
        "alice-member-token-1" not in cassette.read_text()
        and "bob-member-token-2" not in cassette.read_text()
    )
    assert audit_rules(cassette) == Counter({"sid-mismatch": 1})


# (e) ---------------------------------------------------------------------------------------------------


def test_inject_refuses_to_guess_between_fans_it_cannot_tell_apart(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", "--sid", "inject") as proxy:
        first, second = SandboxClient(proxy.url), SandboxClient(proxy.url)
        offer = resale_offer(first.top_picks(selection="resale").json())
        assert resale_offer(second.top_picks(selection="resale").json())["ticketId"] == offer["ticketId"]
        reserved = first.reserve([{"id": offer["ticketId"], "quantity": 1}])
        first.release(reserved.json()["cart_id"])
        assert "X-TM-SESSION-SID" not in reserves_seen_by(sandbox)[0]["headers"]
        assert proxy.stop() == 0
    assert "findings: 1 (sid-inject-ambiguous=1)" in proxy.stdout
    assert "[sid-inject-ambiguous]" in proxy.stderr_text and "--fan-key" in proxy.stderr_text
