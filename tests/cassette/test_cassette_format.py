"""Exchange <-> vcrpy interaction, and the round trip through the writer and the reader."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import brotli
import pytest
from cassette.cassette_helpers import UPSTREAM, exchange, json_bytes, top_picks_body
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mitmproxy.net import encoding
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from proxy.cassette import CassetteWriter, decode_body, exchange_to_interaction, load_cassette
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.findings import Finding, Severity

BODY = json_bytes(top_picks_body())
ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda b: encoding.encode(b, "zstd"),  # mitmproxy's codec: zstandard or the zstd backport
}


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_decode_body_removes_each_coding_and_fixes_the_length(coding: str) -> None:
    headers = Headers([("Content-Encoding", coding), ("Content-Length", "3")])
    body, fixed = decode_body(ENCODERS[coding](BODY), headers)
    assert body == BODY
    assert "Content-Encoding" not in fixed
    assert fixed.get("Content-Length") == str(len(BODY))


def test_decode_body_undoes_stacked_codings_in_reverse_order() -> None:
    body, headers = decode_body(
        brotli.compress(gzip.compress(BODY)), Headers([("Content-Encoding", "gzip, br")])
    )
    assert body == BODY and "Content-Encoding" not in headers


@pytest.mark.parametrize(("coding", "raw"), [("gzip", b"not gzip at all"), ("compress", b"\x1f\x9d??")])
def test_decode_body_keeps_corrupt_or_unknown_bodies_with_their_coding(coding: str, raw: bytes) -> None:
    headers = Headers([("Content-Encoding", coding)])
    body, kept = decode_body(raw, headers)
    assert body == raw and kept.get("Content-Encoding") == coding


def test_interaction_has_vcrpy_shape_and_tmproxy_key() -> None:
    ex = exchange(started_at=1.5, ended_at=2.5, client="10.0.0.1:4000")
    item = exchange_to_interaction(ex, [Finding("TM001", Severity.ERROR, "m", ex.id)])
    assert set(item["request"]) == {"body", "headers", "method", "uri"}
    assert item["request"]["body"] is None
    assert item["response"]["status"] == {"code": 200, "message": "OK"}
    assert item["response"]["body"] == {"string": BODY.decode()}
    assert item["response"]["headers"]["Content-Type"] == ["application/json"]
    assert item["tmproxy"]["client"] == "10.0.0.1:4000"
    assert item["tmproxy"]["findings"][0]["rule"] == "TM001"


def test_binary_bodies_stay_bytes_and_text_bodies_become_strings() -> None:
    item = exchange_to_interaction(exchange(request_body=b"\xff\x00", response_body="é".encode()))
    assert item["request"]["body"] == b"\xff\x00"
    assert item["response"]["body"]["string"] == "é"


def test_exchange_without_response_is_not_an_interaction() -> None:
    with pytest.raises(ValueError):
        exchange_to_interaction(Exchange(Request("GET", UPSTREAM)))


def test_gzip_upstream_body_is_stored_decoded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    gz = gzip.compress(BODY)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", str(len(gz))),
    ]
    with CassetteWriter(path) as writer:
        writer.append(exchange(response_headers=headers, response_body=gz))
    text = path.read_text()
    assert "Content-Encoding" not in text and '"sessionId' in text
    response = load_cassette(path).exchanges[0].response
    assert response is not None and response.body == BODY
    assert response.headers.get("Content-Length") == str(len(BODY))


header_names = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n:"), min_size=1, max_size=12
).filter(
    lambda n: (
        n.strip()
        and n.lower() not in {"content-length", "content-encoding", "content-type"}
        and n.lower() not in {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key"}
    )
)
header_values = st.text(max_size=40)
headers = st.lists(st.tuples(header_names, header_values), max_size=5)
bodies = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode), st.just(b""))
times = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18)
LARGE_TEXT = ('{"picks": [' + ",".join(['{"row": "Ä\\u00e9", "seat": 1}'] * 20000) + "]}").encode()
LARGE_BINARY = os.urandom(300_000)


# tmp_path is shared by the examples on purpose: each one removes round.yaml before writing it afresh.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    request_headers=headers,
    response_headers=headers,
    request_body=bodies,
    response_body=bodies,
    started_at=times,
    status=st.integers(100, 599),
)
@example([], [], LARGE_BINARY, LARGE_TEXT, 1700000000.123, 200)
@example(
    [("X-Odd", "\x85\u2028\ufeff\x7f\x00")], [("X-Emoji", "😀")], b"\r\n", "\u2028😀\x00".encode(), 1e-05, 204
)
def test_round_trip_keeps_bodies_and_headers_byte_for_byte(
    tmp_path: Path,
    request_headers: list[tuple[str, str]],
    response_headers: list[tuple[str, str]],
    request_body: bytes,
    response_body: bytes,
    started_at: float,
    status: int,
) -> None:
    original = Exchange(
        Request(
            "POST",
            f"{UPSTREAM}/partners/v1/events/E/cart?x=%C3%A9&y=1",
            Headers(request_headers),
            request_body,
        ),
        Response(status, Headers(response_headers), response_body, "Reason ü"),
        started_at=started_at,
        ended_at=started_at + 0.5,
        client="[::1]:1234",
    )
    finding = Finding(
        "TM042", Severity.WARNING, "note é", original.id, evidence={"n": started_at, "l": [1, "x"]}
    )
    path = tmp_path / "round.yaml"
    path.unlink(missing_ok=True)
    with CassetteWriter(path) as writer:
        writer.append(original, [finding])
    cassette = load_cassette(path)
    (loaded,) = cassette.exchanges
    assert loaded.request.body == request_body
    assert loaded.response is not None and loaded.response.body == response_body
    assert list(loaded.request.headers.as_lists().items()) == list(
        Headers(request_headers).as_lists().items()
    )
    assert list(loaded.response.headers.as_lists().items()) == list(
        Headers(response_headers).as_lists().items()
    )
    assert (loaded.request.method, loaded.request.url) == (original.request.method, original.request.url)
    assert (loaded.response.status, loaded.response.reason) == (status, "Reason ü")
    assert (loaded.id, loaded.started_at, loaded.ended_at, loaded.client) == (
        original.id,
        original.started_at,
        original.ended_at,
        original.client,
    )
    assert cassette.findings == [finding] and cassette.findings[0].evidence == finding.evidence

    # vcrpy reads the same item as YAML: it must mean exactly the same.
    (vcr_request,), (vcr_response,), *_ = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    assert (vcr_request.body or b"") == request_body
    assert vcr_response["body"]["string"] == response_body
    assert vcr_response["headers"] == Headers(response_headers).as_lists()
    assert vcr_response["status"] == {"code": status, "message": "Reason ü"}
