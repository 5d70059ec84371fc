"""Flows to Exchanges (addons/convert.py): what the rules see is what they saw before the fast paths."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addons.convert import FLOW_EXCHANGE_KEY, exchange_of, path_of
from addons.fan_session import FanSession


@pytest.mark.parametrize(
    "target",
    ["/a/b?x=1", "/a#frag?x", "/a?x#y", "/", "/top-picks/v1/events/E1?apikey=k&quantity=2", "/%20x;p?q"],
)
def test_the_path_taken_from_mitmproxy_is_the_one_urlsplit_gives(target):
    assert path_of(target) == urlsplit(f"https://app.ticketmaster.com{target}").path


@pytest.mark.parametrize("target", ["*", "", "/a b", "/a\tb", "app.ticketmaster.com:443"])
def test_targets_urlsplit_may_read_otherwise_are_left_to_it(target):
    assert path_of(target) is None


def test_a_plain_body_is_taken_as_it_is_and_an_encoded_one_decoded():
    plain = tflow.tflow(req=tutils.treq(content=b'{"a": 1}'))
    assert exchange_of(plain).request.body == b'{"a": 1}'
    encoded = tflow.tflow(req=tutils.treq(content=b""))
    encoded.request.headers["Content-Encoding"] = "gzip"
    encoded.request.content = b'{"b": 2}'  # mitmproxy compresses it
    request = exchange_of(encoded).request
    assert request.body == b'{"b": 2}' and "Content-Encoding" not in request.headers
    assert request.path == urlsplit(encoded.request.url).path


def test_a_static_file_is_counted_but_never_converted():
    addon = FanSession()
    with taddons.context(addon):
        flow = tflow.tflow(req=tutils.treq(method=b"GET", path=b"/static/app.js?v=3"))
        addon.request(flow)
        flow.response = http.Response.make(200, b"var x;", {"Content-Type": "application/javascript"})
        addon.response(flow)
        assert FLOW_EXCHANGE_KEY not in flow.metadata
        assert addon.guard.summary().requests == 1
