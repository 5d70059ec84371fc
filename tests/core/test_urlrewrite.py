"""The URL rewrite of reverse mode, as a pure function over responses and requests (no mitmproxy)."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import pytest
from mitmproxy.net import encoding

from proxy.exchange import Headers, Request, Response
from proxy.urlrewrite import Origin, move_url, rewrite_request, rewrite_response

UPSTREAM = Origin.at("http", "127.0.0.1", 9000)
PROXY = Origin.at("http", "127.0.0.1", 8080)
POLL = "/partners/v1/polling/cart/POST/t0k3n?apikey=k&cart_id=c1"


def response(body: bytes, *headers: tuple[str, str], status: int = 200) -> Response:
    return Response(status, Headers(headers), body)


def json_response(value: object, *headers: tuple[str, str]) -> Response:
    body = json.dumps(value).encode()
    return response(body, ("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:9000/x", "http://127.0.0.1:9000"),
        ("HTTPS://App.Ticketmaster.com:443/x?y", "https://app.ticketmaster.com"),
        ("https://app.ticketmaster.com:8443", "https://app.ticketmaster.com:8443"),
        ("http://[::1]:8080#frag", "http://[::1]:8080"),
        ("http://localhost:/x", "http://localhost"),
    ],
)
def test_origins_compare_like_browsers(url: str, origin: str):
    assert str(Origin.of(url)) == origin


@pytest.mark.parametrize(
    "url",
    [
        "/relative",
        "ftp://127.0.0.1:9000/",
        "http://user@127.0.0.1:9000/",
        "http://h:99999/",
        "http://h:8x/",
        "http://",
    ],
)
def test_what_is_not_an_http_origin_has_none(url: str):
    assert Origin.of(url) is None


@pytest.mark.parametrize(
    ("value", "moved"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:8080"),
        (f"http://127.0.0.1:9000{POLL}", f"http://127.0.0.1:8080{POLL}"),
        ("HTTP://127.0.0.1:9000?q#f", "http://127.0.0.1:8080?q#f"),
        ("http://127.0.0.1:90001/x", None),  # another port that merely starts the same
        ("http://127.0.0.1:9000.evil.example/x", None),
        ("http://127.0.0.1:9000@evil.example/x", None),
        ("https://127.0.0.1:9000/x", None),  # another scheme is another origin
        ("see http://127.0.0.1:9000/x", None),  # only values that start with the origin
        ("/partners/v1/polling/x", None),
    ],
)
def test_only_urls_at_the_origin_move(value: str, moved: str | None):
    assert move_url(value, UPSTREAM, PROXY) == moved


def test_json_string_values_move_at_any_depth_and_keys_numbers_and_spacing_stay():
    text = (
        '{"polling_url": "http://127.0.0.1:9000' + POLL + '", "wait": 1.50, "amount": 1e2,\n'
        ' "http://127.0.0.1:9000/key": "a key stays",\n'
        ' "_links": {"next": {"href": "http://127.0.0.1:9000/page/2"}, "list": ["http://127.0.0.1:9000/a", 7]},\n'
        ' "escaped": "http:\\/\\/127.0.0.1:9000\\/b", "unicode": "http://\\u0031\\u0032\\u0037.0.0.1:9000/c",\n'
        ' "quoted": "\\"http://127.0.0.1:9000/not-at-the-start\\"", "other": "https://app.ticketmaster.com/x",\n'
        ' "relative": "/partners/v1/polling/x"}'
    )
    moved = rewrite_response(response(text.encode()), UPSTREAM, PROXY)
    value = json.loads(moved.body)
    assert value["polling_url"] == "http://127.0.0.1:8080" + POLL
    assert value["_links"] == {
        "next": {"href": "http://127.0.0.1:8080/page/2"},
        "list": ["http://127.0.0.1:8080/a", 7],
    }
    assert value["escaped"] == "http://127.0.0.1:8080/b"
    assert value["unicode"] == "http://127.0.0.1:8080/c"
    assert value["quoted"] == '"http://127.0.0.1:9000/not-at-the-start"'
    assert value["other"] == "https://app.ticketmaster.com/x"
    assert value["relative"] == "/partners/v1/polling/x"
    assert value["http://127.0.0.1:9000/key"] == "a key stays"
    assert b'"wait": 1.50, "amount": 1e2,\n' in moved.body  # numbers as written, line breaks kept


@pytest.mark.parametrize(
    "body",
    [
        b"<a href='http://127.0.0.1:9000/x'>html</a>",
        b"http://127.0.0.1:9000/plain-text",
        b'{"polling_url": "http://127.0.0.1:9000/x", truncated',
        b'{"polling_url": "http://127.0.0.1:9000/x", "bad": "\xff"}',
        b"\x1f\x8b\x08binary http://127.0.0.1:9000/x",
        b"",
    ],
)
def test_bodies_that_are_not_json_are_left_as_they_are(body: bytes):
    original = response(body, ("Content-Length", str(len(body))))
    assert rewrite_response(original, UPSTREAM, PROXY) is original


def test_a_json_body_without_upstream_urls_is_the_same_response():
    original = json_response({"polling_url": "https://app.ticketmaster.com/x", "wait": 1})
    assert rewrite_response(original, UPSTREAM, PROXY) is original


def test_content_length_follows_the_moved_body():
    original = json_response({"polling_url": "http://127.0.0.1:9000/x"})
    moved = rewrite_response(original, UPSTREAM, Origin.at("https", "tmproxy.example.com", 443))
    assert json.loads(moved.body) == {"polling_url": "https://tmproxy.example.com/x"}
    assert (
        moved.headers.get("Content-Length") == str(len(moved.body)) != original.headers.get("Content-Length")
    )
    assert [name for name, _ in moved.headers] == ["Content-Type", "Content-Length"]


def test_a_chunked_body_gets_no_content_length():
    body = json.dumps({"polling_url": "http://127.0.0.1:9000/x"}).encode()
    moved = rewrite_response(response(body, ("Transfer-Encoding", "chunked")), UPSTREAM, PROXY)
    assert "Content-Length" not in moved.headers and b"127.0.0.1:8080" in moved.body


def zstd_compress(body: bytes) -> bytes:
    """mitmproxy's own codec: zstandard under mitmproxy 11, the zstd backport under 12."""
    return encoding.encode(body, "zstd")


def zstd_decompress(body: bytes) -> bytes:
    return encoding.decode(body, "zstd")


ENCODINGS = {
    "gzip": (gzip.compress, gzip.decompress),
    "x-gzip": (gzip.compress, gzip.decompress),
    "deflate": (zlib.compress, zlib.decompress),
    "br": (brotli.compress, brotli.decompress),
    "zstd": (zstd_compress, zstd_decompress),
}


@pytest.mark.parametrize(
    "codings",
    [
        ["gzip"],
        ["x-gzip"],
        ["deflate"],
        ["br"],
        ["zstd"],
        ["gzip", "br"],
    ],
)
def test_an_encoded_body_is_moved_and_encoded_again_the_same_way(codings: list[str]):
    plain = json.dumps({"cart_id": "c1", "polling_url": "http://127.0.0.1:9000" + POLL}).encode()
    body = plain
    for coding in codings:
        body = ENCODINGS[coding][0](body)
    encoding = ", ".join(codings)
    original = response(body, ("Content-Encoding", encoding), ("Content-Length", str(len(body))), status=202)
    moved = rewrite_response(original, UPSTREAM, PROXY)
    assert moved.headers.get("Content-Encoding") == encoding
    assert moved.headers.get("Content-Length") == str(len(moved.body))
    decoded = moved.body
    for coding in reversed(codings):
        decoded = ENCODINGS[coding][1](decoded)
    assert json.loads(decoded) == {"cart_id": "c1", "polling_url": "http://127.0.0.1:8080" + POLL}


def test_a_body_whose_coding_cannot_be_undone_travels_as_it_came_but_its_headers_move():
    body = b"\x1f\x9d compress-coded http://127.0.0.1:9000/x"
    original = response(body, ("Content-Encoding", "compress"), ("Location", "http://127.0.0.1:9000/x"))
    moved = rewrite_response(original, UPSTREAM, PROXY)
    assert moved.body == body
    assert moved.headers.get("Content-Encoding") == "compress"
    assert moved.headers.get("Location") == "http://127.0.0.1:8080/x"


def test_location_and_content_location_move_other_headers_and_origins_stay():
    original = response(
        b"",
        ("Location", "http://127.0.0.1:9000/partners/v1/orders?order_token=t"),
        ("Content-Location", "HTTP://127.0.0.1:9000"),
        ("Link", "<http://127.0.0.1:9000/next>; rel=next"),
        ("X-Upstream", "http://127.0.0.1:9000/x"),
        status=302,
    )
    moved = rewrite_response(original, UPSTREAM, PROXY)
    assert moved.headers.items() == [
        ("Location", "http://127.0.0.1:8080/partners/v1/orders?order_token=t"),
        ("Content-Location", "http://127.0.0.1:8080"),
        ("Link", "<http://127.0.0.1:9000/next>; rel=next"),
        ("X-Upstream", "http://127.0.0.1:9000/x"),
    ]
    for elsewhere in ("https://elsewhere.example/landing", "/relative", "http://127.0.0.1:9001/x"):
        redirect = response(b"", ("Location", elsewhere), status=302)
        assert rewrite_response(redirect, UPSTREAM, PROXY) is redirect


def test_a_request_maps_the_proxys_urls_back_to_the_upstream():
    body = json.dumps(
        {"return_url": "http://127.0.0.1:8080/done", "note": "http://127.0.0.1:9000/x"}
    ).encode()
    request = Request(
        "POST",
        "http://127.0.0.1:9000/partners/v1/events/E/cart",
        Headers(
            [
                ("Referer", "http://127.0.0.1:8080/page"),
                ("Origin", "http://127.0.0.1:8080"),
                ("Content-Length", "3"),
            ]
        ),
        body,
    )
    moved = rewrite_request(request, PROXY, UPSTREAM)
    assert moved.headers.items() == [
        ("Referer", "http://127.0.0.1:9000/page"),
        ("Origin", "http://127.0.0.1:9000"),
        ("Content-Length", str(len(moved.body))),
    ]
    assert json.loads(moved.body) == {
        "return_url": "http://127.0.0.1:9000/done",
        "note": "http://127.0.0.1:9000/x",
    }
    assert moved.url == request.url and moved.method == "POST"


def test_nothing_moves_between_an_origin_and_itself():
    original = json_response({"polling_url": "http://127.0.0.1:9000/x"})
    assert rewrite_response(original, UPSTREAM, UPSTREAM) is original
