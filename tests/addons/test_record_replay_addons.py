"""Arbitrary bodies and headers survive recorder -> cassette -> replayer byte-exact, through the hooks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import taddons, tflow, tutils

from addons.convert import header_fields, make_response
from addons.recorder import Recorder
from addons.replayer import Replayer
from proxy.exchange import Headers, Response

header_names = st.sampled_from(["X-Trace", "X-Note", "ETag", "X-Tm-Meta", "Cache-Control"])
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
).map(str.strip)
LARGE_BODY = 200_000


def repeated_to_large(chunk: bytes) -> bytes:
    """A 200 kB body from a small drawn chunk: hypothesis draws a few bytes (so no health check
    needs suppressing) and the cassette still has to carry a body far larger than a YAML line."""
    return (chunk * (LARGE_BODY // len(chunk) + 1))[:LARGE_BODY]


bodies = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=512).map(str.encode),
    st.just(b""),
    st.binary(min_size=1, max_size=64).map(repeated_to_large),
)


def flow_for(path: str, request_body: bytes, response_body: bytes, headers: list[tuple[str, str]]):
    req = tutils.treq(
        host="app.ticketmaster.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=path.encode(),
        headers=http.Headers(),
        content=request_body,
    )
    flow = tflow.tflow(req=req)
    flow.response = http.Response.make(
        200,
        response_body,
        [(k.encode(), v.encode()) for k, v in headers] + [(b"Content-Type", b"application/x-data")],
    )
    return flow


@settings(max_examples=25, deadline=None)
@given(
    request_body=bodies,
    response_body=bodies,
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
)
def test_bodies_and_headers_survive_record_and_replay(request_body, response_body, headers):
    with tempfile.TemporaryDirectory() as folder:
        cassette = str(Path(folder) / "prop.yaml")
        recorder = Recorder()
        with taddons.context(recorder) as tctx:
            tctx.configure(recorder, tm_record=cassette)
            recorded = flow_for("/partners/v1/events/E/cart?apikey=k", request_body, response_body, headers)
            recorder.response(recorded)
            recorder.done()

        replayer = Replayer()
        with taddons.context(replayer) as tctx:
            tctx.configure(replayer, tm_replay=cassette)
            again = flow_for("/partners/v1/events/E/cart?apikey=other", request_body, b"", [])
            again.response = None
            asyncio.run(tctx.master.addons.invoke_addon(replayer, HttpRequestHook(again)))
            assert again.response is not None
            assert again.response.content == response_body
            replayed = [(k, v) for k, v in again.response.headers.items(multi=True) if k != "Content-Type"]
            kept = [(k, v) for k, v in replayed if k.lower() != "content-length"]
            assert by_name(kept) == by_name(headers)


def by_name(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """vcrpy's cassette keeps each header's values in order, grouped under its name."""
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, []).append(value)
    return grouped


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([200, 202, 204, 404, 429, 599]),
    reason=st.sampled_from(["", "OK", "Too Many Requests", "Custom Réason"]),
    body=bodies,
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                ["Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "X-A"]
            ),
            st.sampled_from(["gzip", "br", "chunked", "identity", "12", "0", "text/plain", "x\udcff", "é"]),
        ),
        max_size=4,
    ),
)
def test_a_made_response_is_what_mitmproxy_makes(
    status: int, reason: str, body: bytes, headers: list[tuple[str, str]]
):
    """`make_response` builds responses on a copy of one checked response (much cheaper): whatever the
    recording, the result must be what `http.Response.make` gives."""
    recorded = Response(status, Headers(headers), body, reason)
    fast = make_response(recorded)
    made = http.Response.make(status, body, header_fields(recorded.headers))
    if reason:
        made.reason = reason
    fast.timestamp_start = fast.timestamp_end = made.timestamp_start = made.timestamp_end = 0.0
    assert fast.get_state() == made.get_state()
    assert make_response(recorded) is not fast and make_response(recorded).headers is not fast.headers
