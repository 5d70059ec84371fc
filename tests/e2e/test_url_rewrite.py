"""Reverse mode: the upstream's absolute URLs reach the app at the proxy's origin, so it stays behind it.

A partner app that follows a 202's `polling_url` (or a redirect's Location) as given must come back
through the proxy: recorded, seen by the rules, and served offline by the replay.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import urllib3

from proxy.cassette import load_cassette
from proxy.partner_flows import APIKEY, TM, resale_offer, session_id
from proxy.processes import recording, run_tmproxy, tmproxy
from proxy.sandbox.client import SandboxClient
from proxy.sandbox.server import running_sandbox

POLLING_PATH = "/partners/v1/polling/"


def reserve_with_polling(client: SandboxClient) -> requests.Response:
    picks = client.top_picks(selection="resale")
    tickets = [{"id": resale_offer(picks)["ticketId"], "quantity": 2}]
    return client.reserve(tickets, sid=session_id(picks), poll=True)


def poll_at_once(base_url: str) -> list[requests.Response]:
    """A partner app that follows the 202's polling_url the moment it gets it, then releases the cart."""
    client = SandboxClient(base_url, api_key=APIKEY)
    accepted = reserve_with_polling(client)
    reserved = client.follow(accepted.json()["polling_url"])
    return [accepted, reserved, client.release(reserved.json()["cart_id"])]


def poll_after_the_wait(base_url: str) -> list[requests.Response]:
    """The same app, waiting the `wait` seconds the 202 asks for (the sandbox asks for 1)."""
    client = SandboxClient(base_url, api_key=APIKEY)
    accepted = reserve_with_polling(client)
    time.sleep(accepted.json()["wait"])  # the behaviour under test, not a synchronisation
    reserved = client.follow(accepted.json()["polling_url"])
    return [accepted, reserved, client.release(reserved.json()["cart_id"])]


def audit_findings(cassette: Path) -> Counter[str]:
    result = run_tmproxy("audit", str(cassette), "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return Counter(f["rule"] for f in json.loads(result.stdout)["findings"])


def test_a_poll_sent_at_once_goes_through_the_proxy_is_flagged_and_replays_offline(tmp_path: Path):
    cassette = tmp_path / "polling.yaml"
    with running_sandbox(seed=21) as sandbox:
        with recording(cassette, sandbox.url, "--record-as", TM) as proxy:
            live = poll_at_once(proxy.url)
            assert proxy.stop() == 0
        polls_upstream = [r for r in sandbox.requests() if r["path"].startswith(POLLING_PATH)]
    assert [r.status_code for r in live] == [202, 200, 204]
    assert live[0].json()["polling_url"].startswith(proxy.url + POLLING_PATH)
    assert len(polls_upstream) == 1
    assert "[polling-too-fast]" in proxy.stderr_text
    assert "requests: 4" in proxy.stdout

    recorded = load_cassette(cassette).exchanges
    assert [ex.request.method for ex in recorded] == ["GET", "POST", "GET", "DELETE"]
    assert recorded[2].request.url.startswith(TM + POLLING_PATH)
    assert recorded[1].response is not None
    assert (
        recorded[1].response.json()["polling_url"].startswith(TM + POLLING_PATH)
    )  # stored as Ticketmaster's
    assert audit_findings(cassette) == Counter({"polling-too-fast": 1})

    # the sandbox is stopped: everything comes from the cassette, the poll included
    with tmproxy("replay", str(cassette), "--listen", "127.0.0.1:0") as replay:
        offline = poll_at_once(replay.url)
        assert replay.stop() == 0
    assert [r.status_code for r in offline] == [202, 200, 204]
    assert offline[0].json()["polling_url"].startswith(replay.url + POLLING_PATH)
    assert offline[1].json()["cart_id"] == live[1].json()["cart_id"]
    assert "4 responses served" in replay.stdout and "0 misses" in replay.stdout


def test_a_poll_after_the_wait_is_recorded_at_the_upstream_origin_and_audits_clean(tmp_path: Path):
    cassette = tmp_path / "patient.yaml"
    with running_sandbox(seed=22) as sandbox, recording(cassette, sandbox.url) as proxy:
        live = poll_after_the_wait(proxy.url)
        assert proxy.stop() == 0
    assert [r.status_code for r in live] == [202, 200, 204]
    assert live[0].json()["polling_url"].startswith(proxy.url + POLLING_PATH)
    assert "polling-too-fast" not in proxy.stderr_text

    recorded = load_cassette(cassette).exchanges
    assert len(recorded) == 4
    assert recorded[1].response is not None
    assert recorded[1].response.json()["polling_url"].startswith(sandbox.url + POLLING_PATH)
    assert audit_findings(cassette) == Counter()


class Redirects(BaseHTTPRequestHandler):
    """An upstream answering redirects and a gzipped JSON body that name its own origin or another."""

    def do_GET(self) -> None:
        own = f"http://{self.headers['Host']}"
        if self.path == "/gzipped":
            body = gzip.compress(
                json.dumps({"next": f"{own}/landing", "away": "https://elsewhere.example/x"}).encode()
            )
            self.answer(200, body, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
            return
        locations = {
            "/here": f"{own}/landing",
            "/away": "https://elsewhere.example/landing",
            "/relative": "/landing",
        }
        if self.path in locations:
            self.answer(
                302, b"", [("Location", locations[self.path]), ("Content-Location", f"{own}{self.path}")]
            )
        else:
            self.answer(200, b"landed", [("Content-Type", "text/plain")])

    def answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        """Quiet: the test output is for the test."""


@contextmanager
def redirecting_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirects)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(url: str, follow: bool = False) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, allow_redirects=follow, timeout=30)


def test_a_redirect_to_the_upstream_points_at_the_proxy_and_one_elsewhere_is_left_alone():
    with (
        redirecting_upstream() as upstream,
        tmproxy("run", "--upstream", upstream, "--listen", "127.0.0.1:0") as proxy,
    ):
        here = get(proxy.url + "/here")
        assert here.status_code == 302
        assert here.headers["Location"] == proxy.url + "/landing"
        assert here.headers["Content-Location"] == proxy.url + "/here"
        followed = get(proxy.url + "/here", follow=True)
        assert followed.url == proxy.url + "/landing" and followed.text == "landed"
        assert get(proxy.url + "/away").headers["Location"] == "https://elsewhere.example/landing"
        assert get(proxy.url + "/relative").headers["Location"] == "/landing"

        raw = urllib3.PoolManager().request("GET", proxy.url + "/gzipped", decode_content=False)
        assert raw.headers["Content-Encoding"] == "gzip"
        assert int(raw.headers["Content-Length"]) == len(raw.data)
        assert json.loads(gzip.decompress(raw.data)) == {
            "next": proxy.url + "/landing",
            "away": "https://elsewhere.example/x",
        }


def test_no_rewrite_urls_passes_the_upstreams_urls_through():
    with (
        redirecting_upstream() as upstream,
        tmproxy(
            "run", "--upstream", upstream, "--listen", "127.0.0.1:0", env={"TMPROXY_REWRITE_URLS": "false"}
        ) as proxy,
    ):
        assert get(proxy.url + "/here").headers["Location"] == upstream + "/landing"
