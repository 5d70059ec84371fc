"""vcrpy compatibility for real: vcrpy replays tmproxy cassettes, and tmproxy reads what vcrpy records."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import pytest
import requests
import urllib3
import vcr
from cassette.cassette_helpers import EVENT, UPSTREAM, exchange, json_bytes, top_picks_body
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from proxy.cassette import CassetteWriter, load_cassette
from proxy.exchange import Request
from proxy.replay import ReplayIndex

TOP_PICKS = json_bytes(top_picks_body())
RESERVE = json_bytes({"cart_id": "cart-1", "cart": {"hold_time": 299}})
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
TOP_PICKS_URL = f"{UPSTREAM}/top-picks/v1/events/{EVENT}?quantity=2&apikey=real-key-123456"
CART_URL = f"{UPSTREAM}/partners/v1/events/{EVENT}/cart?apikey=real-key-123456"
MAP_URL = f"{UPSTREAM}/partners/v1/events/{EVENT}/map.png?apikey=real-key-123456"
REPLAY = {"record_mode": "none", "filter_query_parameters": [("apikey", "REDACTED")]}


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A tmproxy cassette: JSON text, a gzip-encoded upstream body (stored decoded), a binary body."""
    path = tmp_path / "tm.yaml"
    gz = gzip.compress(TOP_PICKS)
    with CassetteWriter(path) as writer:
        writer.append(
            exchange(
                url=TOP_PICKS_URL,
                request_headers=[("Accept", "application/json"), ("X-TM-SESSION-SID", "sid-1")],
                response_headers=[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                    ("Content-Length", str(len(gz))),
                    ("Set-Cookie", "tm=abc123secret; Path=/"),
                ],
                response_body=gz,
            )
        )
        writer.append(
            exchange(
                "POST",
                CART_URL,
                [("Content-Type", "application/json"), ("Authorization", "Bearer tok-1234567890")],
                json_bytes({"reserve": {"tickets": [{"id": "t1", "quantity": 2}]}}),
                201,
                response_body=RESERVE,
            )
        )
        writer.append(
            exchange(url=MAP_URL, response_headers=[("Content-Type", "image/png")], response_body=PNG)
        )
    return path


def test_requests_replays_through_vcrpy(recorded: Path) -> None:
    with vcr.use_cassette(str(recorded), **REPLAY) as cassette:
        picks = requests.get(TOP_PICKS_URL, headers={"X-TM-SESSION-SID": "another"}, timeout=5)
        reserve = requests.post(
            CART_URL, json={"reserve": {"tickets": [{"id": "t1", "quantity": 2}]}}, timeout=5
        )
        png = requests.get(MAP_URL, timeout=5)
        assert cassette.all_played
    assert picks.status_code == 200 and picks.content == TOP_PICKS
    assert picks.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in picks.headers
    assert picks.headers["Content-Length"] == str(len(TOP_PICKS))
    assert picks.cookies["tm"] == "REDACTED"
    assert reserve.status_code == 201 and reserve.json() == json.loads(RESERVE)
    assert png.content == PNG and png.headers["Content-Type"] == "image/png"


def test_urllib3_replays_through_vcrpy(recorded: Path) -> None:
    with vcr.use_cassette(str(recorded), **REPLAY):
        pool = urllib3.PoolManager()
        picks = pool.request("GET", TOP_PICKS_URL)
        png = pool.request("GET", MAP_URL)
    assert picks.status == 200 and picks.data == TOP_PICKS
    assert png.data == PNG and png.headers["Content-Type"] == "image/png"


def test_aiohttp_replays_through_vcrpy(recorded: Path) -> None:
    async def fetch() -> tuple[int, bytes, str, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.get(TOP_PICKS_URL) as picks:
                picks_body = await picks.read()
            async with session.post(CART_URL, json={"reserve": {}}) as reserve:
                return picks.status, picks_body, reserve.headers["Content-Type"], await reserve.read()

    with vcr.use_cassette(str(recorded), **REPLAY):
        status, body, content_type, reserve = asyncio.run(fetch())
    assert (status, body, content_type, reserve) == (200, TOP_PICKS, "application/json", RESERVE)


def test_vcrpy_matches_on_body_of_a_redacted_cassette(recorded: Path) -> None:
    matchers = ["method", "scheme", "host", "port", "path", "query", "body"]
    with vcr.use_cassette(str(recorded), match_on=matchers, **REPLAY):
        reserve = requests.post(
            CART_URL, json={"reserve": {"tickets": [{"quantity": 2, "id": "t1"}]}}, timeout=5
        )
    assert reserve.status_code == 201


def test_vcrpy_without_the_apikey_filter_misses(recorded: Path) -> None:
    with (
        vcr.use_cassette(str(recorded), record_mode="none"),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        requests.get(TOP_PICKS_URL, timeout=5)


class _Upstream(BaseHTTPRequestHandler):
    """A tiny stand-in for Ticketmaster: JSON Top Picks (gzip when asked) and a binary body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body, headers = TOP_PICKS, [("Content-Type", "application/json")]
        if self.path.startswith("/bin"):
            body, headers = PNG, [("Content-Type", "image/png")]
        elif "gzip" in self.headers.get("Accept-Encoding", ""):
            body, headers = gzip.compress(body), [*headers, ("Content-Encoding", "gzip")]
        self.send_response(200)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("decode", [False, True])
def test_cassette_recorded_by_vcrpy_loads_and_indexes(tmp_path: Path, upstream: str, decode: bool) -> None:
    path = tmp_path / "vcr.yaml"
    url = f"{upstream}/top-picks/v1/events/{EVENT}?apikey=k&quantity=2"
    with vcr.use_cassette(str(path), record_mode="once", decode_compressed_response=decode):
        assert requests.get(url, timeout=5).content == TOP_PICKS
        assert requests.get(f"{upstream}/bin", timeout=5).content == PNG
    assert ("Content-Encoding" in path.read_text()) is not decode

    cassette = load_cassette(path)
    picks, png = cassette.exchanges
    assert picks.response is not None and picks.response.body == TOP_PICKS
    assert "Content-Encoding" not in picks.response.headers
    assert png.response is not None and png.response.body == PNG
    assert (picks.id, cassette.warnings) == ("interaction-0", [])

    index = ReplayIndex(cassette.exchanges)
    hit = index.play(Request("GET", f"{upstream}/top-picks/v1/events/{EVENT}?quantity=2&apikey=other"))
    assert hit.exchange is picks


def test_appending_to_a_vcrpy_cassette_keeps_it_and_vcrpy_still_reads_it(
    tmp_path: Path, upstream: str
) -> None:
    path = tmp_path / "vcr.yaml"
    with vcr.use_cassette(str(path), record_mode="once"):
        requests.get(f"{upstream}/bin", timeout=5)
    with CassetteWriter(path, metadata={"upstream": upstream}) as writer:
        writer.append(exchange(url=TOP_PICKS_URL))
    assert [e.request.path for e in load_cassette(path).exchanges] == [
        "/bin",
        f"/top-picks/v1/events/{EVENT}",
    ]
    requests_, responses, *_ = deserialize(path.read_text(), yamlserializer)
    assert [r.path for r in requests_] == ["/bin", f"/top-picks/v1/events/{EVENT}"]
    assert responses[0]["body"]["string"] == PNG


def test_vcrpy_matches_a_redacted_oauth_form_with_filter_post_data_parameters(tmp_path: Path) -> None:
    path = tmp_path / "oauth.yaml"
    token_url = "https://oauth.ticketmaster.com/oauth/token"
    form = "grant_type=refresh_token&client_id=partner&client_secret=cs-123456789&refresh_token=rt-123456789"
    with CassetteWriter(path) as writer:
        writer.append(
            exchange(
                "POST",
                token_url,
                [("Content-Type", "application/x-www-form-urlencoded")],
                form.encode(),
                response_body=json_bytes({"access_token": "at-123456789", "expires_in": 3600}),
            )
        )
    secrets = [("client_secret", "REDACTED"), ("refresh_token", "REDACTED"), ("code", "REDACTED")]
    with vcr.use_cassette(
        str(path),
        record_mode="none",
        match_on=["method", "host", "path", "body"],
        filter_post_data_parameters=secrets,
    ):
        data = {
            "grant_type": "refresh_token",
            "client_id": "partner",
            "client_secret": "live",
            "refresh_token": "live",
        }
        token = requests.post(token_url, data=data, timeout=5)
    assert token.json() == {"access_token": "REDACTED", "expires_in": 3600}
