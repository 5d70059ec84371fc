"""`tmproxy run` on a real port in front of the sandbox, driven by real clients."""

from __future__ import annotations

import shutil
import signal
import subprocess
from urllib.parse import urlsplit

import pytest
import requests

from proxy.processes import run_tmproxy, tmproxy
from proxy.sandbox.client import EVENT_ID, SandboxClient
from proxy.sandbox.server import running_sandbox

RESERVE_PATH = f"/partners/v1/events/{EVENT_ID}/cart"


def resale_offer(top_picks_body: dict) -> dict:
    return next(o for o in top_picks_body["_embedded"]["offer"] if o.get("inventoryType") == "resale")


def charged_unit_price(reserve_body: dict) -> float:
    item = reserve_body["cart"]["items"][0]
    return round(sum(c["price"] for c in item["charges"]), 2)


def reserves_seen_by(sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == RESERVE_PATH]


def show_then_reprice(client: SandboxClient, sandbox) -> tuple[dict, str]:
    """Top Picks through the proxy, then the listing's price moves: returns the offer shown and the sid."""
    shown = client.top_picks(selection="resale")
    assert shown.status_code == 200
    offer = resale_offer(shown.json())
    sandbox.reprice(event_id=EVENT_ID, factor=1.25)
    assert sandbox.current_price(offer["ticketId"]) != offer["totalPrice"]
    return offer, shown.json()["fanSession"]["resaleSid"]["sessionId"]


def test_inject_keeps_the_top_picks_price_after_a_reprice(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", "--sid", "inject") as proxy:
        client = SandboxClient(proxy.url)
        offer, sid = show_then_reprice(client, sandbox)
        reserved = client.reserve([{"id": offer["ticketId"], "quantity": 2}])
        assert reserved.status_code == 200
        assert charged_unit_price(reserved.json()) == offer["totalPrice"]
        assert reserves_seen_by(sandbox)[0]["headers"].get("X-TM-SESSION-SID") == sid
        assert proxy.stop() == 0
    assert "sid-missing" not in proxy.stderr_text


def test_validate_forwards_and_reports_sid_missing(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        client = SandboxClient(proxy.url)
        offer, _ = show_then_reprice(client, sandbox)
        reserved = client.reserve([{"id": offer["ticketId"], "quantity": 2}])
        assert reserved.status_code == 200
        assert len(reserves_seen_by(sandbox)) == 1
        assert proxy.stop() == 0
    assert "[sid-missing]" in proxy.stderr_text
    assert "[price-mismatch]" in proxy.stderr_text
    assert "sid-missing=1" in proxy.stdout


def test_enforce_blocks_and_the_sandbox_never_sees_the_call(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", "--sid", "enforce") as proxy:
        client = SandboxClient(proxy.url)
        offer = resale_offer(client.top_picks(selection="resale").json())
        blocked = client.reserve([{"id": offer["ticketId"], "quantity": 2}])
        assert blocked.status_code == 428
        error = blocked.json()["error"]
        assert "X-TM-SESSION-SID" in error["message"] and "sid-missing" in error["message"]
        assert reserves_seen_by(sandbox) == []
        sid = client.top_picks().json()["fanSession"]["resaleSid"]["sessionId"]
        allowed = client.reserve([{"id": offer["ticketId"], "quantity": 2}], sid=sid)
        assert allowed.status_code == 200
    assert "[sid-missing]" in proxy.stderr_text


def test_expired_session_response_is_flagged(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        client = SandboxClient(proxy.url)
        sid = client.top_picks().json()["fanSession"]["resaleSid"]["sessionId"]
        sandbox.advance_clock(3601)
        renewed = client.top_picks(sid=sid)
        assert renewed.json()["fanSession"]["resaleSid"]["sessionId"] == sid
        assert proxy.stop() == 0
    assert "[session-expired]" in proxy.stderr_text
    assert "session-expired=1" in proxy.stdout


def test_price_change_is_flagged_even_with_a_session_the_sandbox_no_longer_honours(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        client = SandboxClient(proxy.url)
        offer, sid = show_then_reprice(client, sandbox)
        reserved = client.reserve([{"id": offer["ticketId"], "quantity": 2}], sid=sid)
        assert charged_unit_price(reserved.json()) == offer["totalPrice"]
        later = client.reserve([{"id": offer["ticketId"], "quantity": 2}])
        assert charged_unit_price(later.json()) != offer["totalPrice"]
    flagged = [line for line in proxy.stderr_text.splitlines() if "[price-mismatch]" in line]
    assert len(flagged) == 1


def test_regular_mode_serves_a_real_client_using_it_as_http_proxy(sandbox):
    with tmproxy("run", "--mode", "regular", "--listen", "127.0.0.1:0", "--sid", "inject") as proxy:
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": proxy.url}
        shown = session.get(
            f"{sandbox.url}/top-picks/v1/events/{EVENT_ID}", params={"apikey": "k"}, timeout=30
        )
        offer = resale_offer(shown.json())
        reserved = session.post(
            sandbox.url + RESERVE_PATH,
            params={"apikey": "k"},
            json={"reserve": {"tickets": [{"id": offer["ticketId"], "quantity": 1}]}},
            timeout=30,
        )
        assert reserved.status_code == 200
        assert reserves_seen_by(sandbox)[0]["headers"].get("X-TM-SESSION-SID")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_through_the_proxy(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        out = subprocess.run(
            ["curl", "-sS", "--noproxy", "*", f"{proxy.url}/top-picks/v1/events/{EVENT_ID}?apikey=k"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert '"resaleSid"' in out.stdout


def test_upstream_down_gives_502_and_the_proxy_keeps_serving():
    with running_sandbox(seed=3) as doomed:
        url = doomed.url
    with tmproxy("run", "--upstream", url, "--listen", "127.0.0.1:0") as proxy:
        client = SandboxClient(proxy.url)
        assert client.top_picks().status_code == 502
        assert client.top_picks().status_code == 502
        assert proxy.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_zero_after_the_summary(sandbox, sig):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        SandboxClient(proxy.url).top_picks()
        assert proxy.stop(sig) == 0
    assert proxy.stdout.startswith("listening on http://127.0.0.1:")
    assert "requests: 1" in proxy.stdout and "sessions seen: 1" in proxy.stdout


def test_busy_port_is_a_clear_error(sandbox):
    port = urlsplit(sandbox.url).port
    result = run_tmproxy("run", "--upstream", sandbox.url, "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "could not listen" in result.stderr
