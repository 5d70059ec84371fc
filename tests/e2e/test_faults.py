"""`--fault` end to end: the sandbox, a real proxy process, a real client (requests).

Each injected answer is compared with the answer the sandbox itself gives in the same situation, so
"Ticketmaster's shape" means the shape the rest of tmproxy is tested against.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from proxy.audit.engine import audit_exchanges
from proxy.audit.inputs import load_exchanges
from proxy.audit.partner_api import FAULT_HEADER
from proxy.cassette import load_cassette
from proxy.exchange import Request
from proxy.faults import FaultInjector, parse_faults
from proxy.partner_flows import TM, coping_purchase, naive_purchase, session_id
from proxy.processes import CliProcess, recording
from proxy.sandbox.client import EVENT_ID, SandboxClient
from proxy.sandbox.errors import CONCURRENT_CART_CALL, TICKETING_SYSTEM_DOWN
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import SESSION_EXPIRED_MESSAGE, SESSION_MESSAGE_HEADER, resale_sid

AVAILABILITY = f"/partners/v1/events/{EVENT_ID}/availability"


def ticket(sandbox) -> str:
    return sandbox.catalog()[EVENT_ID]["resale"][0]["ticket_id"]


def live_findings(proxy: CliProcess) -> Counter[str]:
    """The rule counts of the proxy's exit summary (`findings: 3 (a=1, b=2)`)."""
    line = next(line for line in proxy.stdout_lines if line.strip().startswith("findings:"))
    inside = line.split("(", 1)[1].rstrip().rstrip(")")
    return Counter(
        {} if inside == "none" else {k: int(v) for k, v in (p.split("=") for p in inside.split(", "))}
    )


def offline_findings(cassette: Path) -> Counter[str]:
    return Counter(f.rule for f in audit_exchanges(load_exchanges([cassette])))


def injected_calls(cassette: Path) -> list[tuple[str, str, str | None]]:
    """Each recorded call with the fault its answer carried (None: upstream's own answer)."""
    return [
        (
            ex.request.method,
            urlsplit(ex.request.url).path,
            ex.response.headers.get(FAULT_HEADER) if ex.response else None,
        )
        for ex in load_cassette(cassette).exchanges
    ]


# --- the shape of each injected answer --------------------------------------------------------------


def test_quota_is_the_gateway_s_429(sandbox, tmp_path: Path):
    with recording(tmp_path / "q.yaml", sandbox.url, "--fault", "quota") as proxy:
        injected = SandboxClient(proxy.url).request("GET", AVAILABILITY)
    sandbox.set_quota(0)
    real = SandboxClient(sandbox.url).request("GET", AVAILABILITY)
    assert injected.status_code == real.status_code == 429
    assert injected.json() == real.json()  # the fault body, naming the same apikey
    ratelimit = {"Ratelimit-Quota-Allowed", "Ratelimit-Quota-Available", "Ratelimit-Expiry"}
    assert ratelimit <= set(injected.headers) and ratelimit <= set(real.headers)
    assert injected.headers["Ratelimit-Quota-Available"] == "0"
    assert 0 < int(injected.headers["Ratelimit-Expiry"]) / 1000 - time.time() <= 1.0
    assert injected.headers["Content-Type"] == real.headers["Content-Type"]
    assert injected.reason == "Too Many Requests"
    assert injected.headers[FAULT_HEADER] == "quota" and FAULT_HEADER not in real.headers
    assert "[fault:quota]" in proxy.stderr_text and "apikey=REDACTED" in proxy.stderr_text


def test_niterun_is_the_maintenance_503(sandbox, tmp_path: Path):
    with recording(tmp_path / "n.yaml", sandbox.url, "--fault", "niterun") as proxy:
        client = SandboxClient(proxy.url)
        injected = client.request("GET", AVAILABILITY)
        assert client.top_picks().status_code == 200  # not a call niterun applies to
    sandbox.fail_next(1, 503)
    real = SandboxClient(sandbox.url).request("GET", AVAILABILITY)
    assert assert_error(injected, 503, TICKETING_SYSTEM_DOWN) == assert_error(
        real, 503, TICKETING_SYSTEM_DOWN
    )
    assert injected.headers[FAULT_HEADER] == "niterun"


def test_concurrent_is_the_busy_cart_409(sandbox, tmp_path: Path):
    cart_id = SandboxClient(sandbox.url).reserve([{"id": ticket(sandbox)}]).json()["cart_id"]
    with recording(tmp_path / "c.yaml", sandbox.url, "--fault", "concurrent") as proxy:
        injected = SandboxClient(proxy.url).shipping_options(cart_id)
    sandbox.set_delay(0.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(SandboxClient(sandbox.url).choose_shipping, cart_id)
        assert sandbox.wait_until_busy(cart_id, timeout=10)
        real = SandboxClient(sandbox.url).shipping_options(cart_id)
        assert busy.result(timeout=30).status_code == 200
    assert assert_error(injected, 409, CONCURRENT_CART_CALL) == assert_error(real, 409, CONCURRENT_CART_CALL)


def test_polling_defers_the_real_answer_behind_a_url_the_proxy_serves(sandbox, tmp_path: Path):
    flags = ("--fault", "polling:1,wait=0,extra_rounds=1")
    with recording(tmp_path / "p.yaml", sandbox.url, *flags) as proxy:
        client = SandboxClient(proxy.url)
        accepted = client.reserve([{"id": ticket(sandbox)}])
        body = accepted.json()
        again = client.follow(body["polling_url"])
        final = client.follow(body["polling_url"])
        reserves_upstream = [r for r in sandbox.requests() if r["method"] == "POST"]
    real = SandboxClient(sandbox.url).reserve([{"id": ticket(sandbox)}], poll=True).json()
    assert accepted.status_code == 202 and set(body) == set(real) == {"polling_url", "wait", "cart_id"}
    injected_url, real_url = urlsplit(body["polling_url"]), urlsplit(real["polling_url"])
    assert f"{injected_url.scheme}://{injected_url.netloc}" == proxy.url  # the partner polls the proxy
    assert injected_url.path.rsplit("/", 1)[0] == real_url.path.rsplit("/", 1)[0]
    assert parse_qs(injected_url.query).keys() == parse_qs(real_url.query).keys() == {"apikey", "cart_id"}
    assert again.status_code == 202 and again.json() == body
    assert final.status_code == 200 and final.json()["cart_id"] == body["cart_id"]
    assert len(reserves_upstream) == 1  # the reserve happened once, upstream; the polls never left the proxy


def test_session_expiry_renews_the_session_as_the_sandbox_does(sandbox, tmp_path: Path):
    direct = SandboxClient(sandbox.url)
    with recording(tmp_path / "s.yaml", sandbox.url, "--fault", "session-expiry") as proxy:
        client = SandboxClient(proxy.url)
        first = client.top_picks()
        sid = session_id(first)
        before = int(time.time() * 1000)
        injected = client.top_picks(sid=sid)
    first_sid, injected_sid = resale_sid(first.json()), resale_sid(injected.json())
    expiring = session_id(direct.top_picks())
    sandbox.advance_clock(3601)
    real = direct.top_picks(sid=expiring)
    for renewal in (injected, real):
        assert renewal.status_code == 200
        assert renewal.json()["messages"] == [SESSION_EXPIRED_MESSAGE]
        assert renewal.headers[SESSION_MESSAGE_HEADER] == SESSION_EXPIRED_MESSAGE
    assert injected.json().keys() == real.json().keys()
    assert injected_sid is not None and first_sid is not None and injected_sid.session_id == sid
    assert injected_sid.start_ms >= before and injected_sid.expire_ms - injected_sid.start_ms == 3_600_000
    assert injected.headers[FAULT_HEADER] == "session-expiry"


def slow_top_picks_only_seed() -> int:
    """A seed that, at rate 0.5, holds the first Top Picks call and not the first availability call."""
    for seed in range(100):
        faults = FaultInjector(parse_faults(["slow:1,rate=0.5"]), seed=seed)
        picks = faults.delay(Request("GET", f"http://x/top-picks/v1/events/{EVENT_ID}"))
        if picks and not faults.delay(Request("GET", f"http://x{AVAILABILITY}")):
            return seed
    raise AssertionError("no such seed below 100")


def test_slow_holds_the_answer_without_holding_the_other_calls(sandbox, tmp_path: Path):
    flags = ("--fault", "slow:0.5,rate=0.5", "--fault-seed", str(slow_top_picks_only_seed()))
    held: list[requests.Response] = []
    with recording(tmp_path / "slow.yaml", sandbox.url, *flags) as proxy:
        client = SandboxClient(proxy.url)
        started = time.monotonic()
        picks = threading.Thread(target=lambda: held.append(client.top_picks()))
        picks.start()
        deadline = time.monotonic() + 10
        while not sandbox.requests() and time.monotonic() < deadline:
            time.sleep(0.005)  # until the sandbox has answered: the proxy now holds that answer
        assert SandboxClient(proxy.url).request("GET", AVAILABILITY).status_code == 200
        assert not held, "the availability call waited for the held Top Picks answer"
        picks.join(10)
    assert time.monotonic() - started >= 0.5
    assert held[0].status_code == 200 and held[0].headers[FAULT_HEADER] == "slow"
    assert held[0].json()["_embedded"] == SandboxClient(sandbox.url).top_picks().json()["_embedded"]


# --- how partner apps react ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("quota:1,reset=30", {"rate-limit-retry": 2}),
        ("polling:1,wait=5", {"polling-too-fast": 1, "polling-abandoned": 2}),
        ("niterun:1", {"no-backoff-after-503": 2}),
        ("session-expiry:1", {"stale-price-after-expiry": 1}),
    ],
)
def test_a_naive_app_gets_exactly_the_reaction_findings_live_and_offline(sandbox, tmp_path, fault, expected):
    cassette = tmp_path / "naive.yaml"
    with recording(cassette, sandbox.url, "--record-as", TM, "--fault", fault) as proxy:
        naive_purchase(proxy.url)
        assert proxy.stop() == 0
    assert live_findings(proxy) == expected
    assert offline_findings(cassette) == expected
    assert any(kind == fault.split(":")[0] for _, _, kind in injected_calls(cassette))


def test_an_app_that_copes_buys_through_quota_and_polling_faults_without_a_finding(sandbox, tmp_path):
    cassette = tmp_path / "coping.yaml"
    flags = (
        "--fault",
        "quota:0.3,reset=0.2",
        "--fault",
        "polling:0.5,wait=0,extra_rounds=1",
        "--fault-seed",
        "0",
    )
    with recording(cassette, sandbox.url, "--record-as", TM, *flags) as proxy:
        responses = coping_purchase(proxy.url)
        assert proxy.stop() == 0
    assert [r.status_code for r in responses] == [200] * 8
    assert responses[-1].json()["order_number"]
    kinds = Counter(kind for _, _, kind in injected_calls(cassette) if kind)
    assert kinds["quota"] >= 1 and kinds["polling"] >= 1, kinds
    assert live_findings(proxy) == Counter() and offline_findings(cassette) == Counter()


def test_the_same_seed_injects_the_same_faults_on_the_same_traffic(sandbox, tmp_path):
    def faults_with(seed: int, name: str) -> list[tuple[str, str, str | None]]:
        sandbox.reset()
        cassette = tmp_path / name
        flags = (
            "--fault",
            "quota:0.3,reset=0.05",
            "--fault",
            "polling:0.5,wait=0",
            "--fault-seed",
            str(seed),
        )
        with recording(cassette, sandbox.url, *flags) as proxy:
            coping_purchase(proxy.url)
        return injected_calls(cassette)

    first = faults_with(4, "first.yaml")
    assert any(kind for _, _, kind in first)
    assert faults_with(4, "again.yaml") == first
    assert faults_with(5, "other.yaml") != first


def test_a_session_expired_by_a_fault_is_not_reported_as_ticketmaster_s(sandbox, tmp_path):
    cassette = tmp_path / "expiry.yaml"
    with recording(cassette, sandbox.url, "--fault", "session-expiry") as proxy:
        coping_purchase(proxy.url)
        assert proxy.stop() == 0
    assert "session-expired" not in live_findings(proxy) and "session-expired" not in offline_findings(
        cassette
    )
    assert ("GET", f"/top-picks/v1/events/{EVENT_ID}", "session-expiry") in injected_calls(cassette)
    assert offline_findings(cassette) == Counter()  # and it refreshed its prices: no stale reserve
