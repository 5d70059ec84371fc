"""The one place where a mitmproxy flow becomes an `Exchange` (and a response goes back)."""

from __future__ import annotations

import copy
import time
from typing import Any

from mitmproxy import http
from mitmproxy.net import encoding
from mitmproxy.net.http import status_codes

from proxy.cassette.format import decode_body
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.netaddr import url_host

FLOW_EXCHANGE_KEY = "tmproxy.exchange"

Fields = tuple[tuple[bytes, bytes], ...]


def _headers_of(message: http.Message) -> Headers:
    return _headers_of_fields(message.headers.fields)


def _headers_of_fields(fields: Fields) -> Headers:
    """The header fields as mitmproxy's `items(multi=True)` gives them, decoded without its per-field calls."""
    return Headers([(k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                    for k, v in fields])  # fmt: skip


def _decoded(fields: Fields, raw: bytes) -> tuple[bytes, Headers]:
    """The body without Content-Encoding; the header goes only when decoding worked.

    What mitmproxy cannot decode (`x-gzip`, stacked codings such as `br, gzip`) goes through the
    cassette's decoder, so that the live rules see the body the recording stores. A body without
    the header (nearly all) is taken as it is: nothing to decode, no header to remove.
    """
    headers = _headers_of_fields(fields)
    if not headers.get_all("content-encoding"):
        return raw, headers
    coding = http.Headers(fields).get("content-encoding", "")  # as `get_content` reads it
    if not coding:  # an empty header: nothing to decode, and the header goes
        headers.remove("content-encoding")
        return raw, headers
    try:
        content = encoding.decode(raw, coding)
        if isinstance(content, str):  # a text codec named as a content coding
            raise ValueError(coding)
    except ValueError:
        return decode_body(raw, headers)
    headers.remove("content-encoding")
    return content or b"", headers


def request_of(flow: http.HTTPFlow) -> Request:
    return _request_of(flow.request)


def _request_of(message: http.Request) -> Request:
    body, headers = _decoded(message.headers.fields, message.raw_content or b"")
    request = Request(method=message.method, url=message.url, headers=headers, body=body)
    path = path_of(message.path)
    return request if path is None else request.knowing_path(path)


def path_of(target: str) -> str | None:
    """A request target's path without query and fragment, as `Request.path` (urlsplit) gives it;
    None for anything urlsplit might read otherwise (whitespace, controls, no leading slash)."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or not path.isprintable() or " " in path:
        return None
    return path


def response_of(flow: http.HTTPFlow) -> Response | None:
    return None if flow.response is None else _response_of(flow.response)


def _response_of(message: http.Response) -> Response:
    body, headers = _decoded(message.headers.fields, message.raw_content or b"")
    return Response(status=message.status_code, headers=headers, body=body, reason=message.reason)


def client_of(flow: http.HTTPFlow) -> str:
    return _client(flow.client_conn.peername)


def _client(peer: Any) -> str:
    if not peer:
        return ""
    return f"{url_host(str(peer[0]))}:{peer[1]}"


def exchange_of(flow: http.HTTPFlow) -> Exchange:
    """The flow's Exchange, made at request time and completed with the response.

    Kept in `flow.metadata` so every addon sees the same record with the same id.
    """
    exchange = flow.metadata.get(FLOW_EXCHANGE_KEY)
    if not isinstance(exchange, Exchange):
        exchange = _exchange(flow.request, client_of(flow), flow.id)
        flow.metadata[FLOW_EXCHANGE_KEY] = exchange
    if flow.response is not None and exchange.response is None:
        _complete(exchange, flow.response)
    return exchange


def _exchange(request: http.Request, client: str, flow_id: str) -> Exchange:
    return Exchange(
        request=_request_of(request), started_at=request.timestamp_start, client=client, id=flow_id
    )


def _complete(exchange: Exchange, response: http.Response) -> None:
    exchange.response = _response_of(response)
    exchange.ended_at = response.timestamp_end or response.timestamp_start


RequestSnapshot = tuple[tuple[Any, ...], Any, str]
"""A request as mitmproxy holds it (its data's fields), the client's address and the flow's id: a few
attribute reads to take, plain values to hand to another process (addons/judge_process.py), where
`exchange_of_snapshot` makes the request again and converts it as `exchange_of` does."""
ResponseSnapshot = tuple[Any, ...]
"""A response as mitmproxy holds it (its data's fields)."""


def request_snapshot(flow: http.HTTPFlow) -> RequestSnapshot:
    data = flow.request.data
    fields = (data.host, data.port, data.method, data.scheme, data.authority, data.path, data.http_version,
              data.headers.fields, data.content, None, data.timestamp_start, data.timestamp_end)  # fmt: skip
    return fields, flow.client_conn.peername, flow.id


def response_snapshot(response: http.Response) -> ResponseSnapshot:
    data = response.data
    return (data.http_version, data.status_code, data.reason, data.headers.fields, data.content, None,
            data.timestamp_start, data.timestamp_end)  # fmt: skip


def exchange_of_snapshot(snapshot: RequestSnapshot) -> Exchange:
    fields, peer, flow_id = snapshot
    return _exchange(http.Request(*fields), _client(peer), flow_id)


def complete(exchange: Exchange, snapshot: ResponseSnapshot) -> Exchange:
    """The exchange with its response, from a snapshot."""
    _complete(exchange, http.Response(*snapshot))
    return exchange


def refresh_request(flow: http.HTTPFlow) -> Exchange:
    """Re-read the request after an addon changed it (e.g. injected a header)."""
    exchange = exchange_of(flow)
    exchange.request = request_of(flow)
    return exchange


def travelling_request(flow: http.HTTPFlow) -> Request:
    """The request as it travels: body and Content-Encoding untouched (unlike `request_of`)."""
    message = flow.request
    headers = _headers_of(message)
    return Request(method=message.method, url=message.url, headers=headers, body=message.raw_content or b"")


def travelling_response(response: http.Response) -> Response:
    """The response as it travels: body and Content-Encoding untouched (unlike `response_of`)."""
    headers = _headers_of(response)
    return Response(response.status_code, headers, response.raw_content or b"", response.reason)


def update_message(message: http.Message, changed: Request | Response) -> None:
    """Give a flow's request or response the headers and (travelling) body of `changed`."""
    message.headers = http.Headers(header_fields(changed.headers))
    if changed.body != (message.raw_content or b""):  # a streamed (None) body stays None
        message.raw_content = changed.body


_CHECKED = http.Response.make(200)


def make_response(response: Response) -> http.Response:
    """What `http.Response.make` makes, a few times cheaper: it type-checks every field of a new
    response (half of what serving a replayed one cost); this sets them, with the same setters in the
    same order, on a copy of one it made. The reason is the recorded one where there is one
    (mitmproxy knows no phrase for some codes, 429)."""
    made = copy.copy(_CHECKED)
    made.data = copy.copy(_CHECKED.data)
    made.status_code = response.status
    made.reason = response.reason or status_codes.RESPONSES.get(response.status, "")
    made.headers = http.Headers(header_fields(response.headers))
    made.content = response.body
    made.timestamp_start = made.timestamp_end = time.time()
    return made


def header_fields(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1", "replace"), v.encode("utf-8", "surrogateescape")) for k, v in headers]
