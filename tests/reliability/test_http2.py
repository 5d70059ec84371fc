"""HTTP/2 clients through `tmproxy record`.

mitmproxy speaks HTTP/2 to clients over TLS only. In reverse mode it terminates TLS itself (with a
certificate from its CA in --confdir), so an app that talks HTTPS + h2 to the proxy is recorded like any
other; the upstream is then spoken to over HTTP/1.1. Cleartext HTTP/2 is not supported: a prior-knowledge
h2c client is turned away cleanly and an `Upgrade: h2c` request is served as HTTP/1.1.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
from reliability.harness import Reply, scripted_upstream, send

from proxy.cassette import load_cassette
from proxy.processes import recording

Request = tuple[str, str, list[tuple[str, str]], bytes]


class H2Client:
    """A minimal HTTP/2 client over TLS (ALPN h2), trusting only the proxy's CA."""

    def __init__(self, base_url: str, cafile: Path) -> None:
        parts = urlsplit(base_url)
        context = ssl.create_default_context(cafile=str(cafile))
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def exchange(self, requests: list[Request]) -> list[tuple[int, dict[str, str], bytes]]:
        """Send the requests on concurrent streams of this one connection; their answers in order."""
        streams: dict[int, dict] = {}
        for method, path, headers, body in requests:
            stream = self.conn.get_next_available_stream_id()
            pseudo = [(":method", method), (":path", path), (":authority", "localhost"), (":scheme", "https")]
            self.conn.send_headers(stream, pseudo + headers, end_stream=not body)
            if body:
                self.conn.send_data(stream, body, end_stream=True)
            streams[stream] = {"status": 0, "headers": {}, "body": b"", "ended": False}
        self.sock.sendall(self.conn.data_to_send())
        while not all(s["ended"] for s in streams.values()):
            data = self.sock.recv(65536)
            assert data, "the proxy closed the HTTP/2 connection"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    fields = {k.decode(): v.decode() for k, v in event.headers}
                    streams[event.stream_id].update(status=int(fields[":status"]), headers=fields)
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id]["body"] += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    streams[event.stream_id]["ended"] = True
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream {event.stream_id} was reset ({event.error_code})")
            self.sock.sendall(self.conn.data_to_send())
        return [(s["status"], s["headers"], s["body"]) for s in streams.values()]

    def close(self) -> None:
        self.conn.close_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.close()


def test_an_https_h2_client_is_recorded_with_its_findings(tmp_path: Path):
    cassette, confdir = tmp_path / "h2.yaml", tmp_path / "confdir"
    sid = str(uuid.uuid4())
    now = int(time.time() * 1000)
    picks = {
        "fanSession": {
            "resaleSid": {"sessionId": sid, "sessionStartTime": now, "sessionExpireTime": now + 3_600_000}
        },
        "_embedded": {"offer": [{"offerId": "R1", "ticketId": "resale-h2", "totalPrice": 50.0}]},
    }
    reserve = json.dumps({"reserve": {"tickets": [{"id": "resale-h2", "quantity": 1}]}}).encode()
    cart = "/partners/v1/events/EH2/cart?apikey=k"
    with scripted_upstream() as upstream:
        upstream.replies["picks"] = Reply(200, json.dumps(picks).encode())
        upstream.replies["reserve"] = Reply(200, b"{}")
        for n in range(10):
            upstream.replies[f"many-{n}"] = Reply(200, b'{"n": %d}' % n)
        with recording(
            cassette,
            upstream.url,
            "--confdir",
            str(confdir),
        ) as proxy:
            client = H2Client(proxy.url, confdir / "mitmproxy-ca-cert.pem")
            ((status, _, body),) = client.exchange(
                [("GET", "/top-picks/v1/events/EH2?apikey=k&case=picks", [], b"")]
            )
            assert status == 200 and json.loads(body) == picks
            json_type = [("content-type", "application/json")]
            answers = client.exchange(
                [
                    (
                        "POST",
                        f"{cart}&case=reserve&n=same",
                        [*json_type, ("x-tm-session-sid", sid)],
                        reserve,
                    ),
                ]
            )
            answers += client.exchange(
                [
                    (
                        "POST",
                        f"{cart}&case=reserve&n=twice",
                        [*json_type, ("x-tm-session-sid", sid), ("x-tm-session-sid", sid)],
                        reserve,
                    )
                ]
            )
            answers += client.exchange([("POST", f"{cart}&case=reserve&n=none", json_type, reserve)])
            answers += client.exchange(
                [
                    (
                        "POST",
                        f"{cart}&case=reserve&n=two",
                        [*json_type, ("x-tm-session-sid", sid), ("x-tm-session-sid", str(uuid.uuid4()))],
                        reserve,
                    )
                ]
            )
            many = client.exchange([("GET", f"/unknown/{n}?case=many-{n}", [], b"") for n in range(10)])
            client.close()
            assert proxy.stop() == 0
        assert [a[0] for a in answers] == [200] * 4
        assert [json.loads(b)["n"] for _, _, b in many] == list(range(10))
        forwarded = [s for s in upstream.seen if "case=reserve" in s.path]
        assert [sum(k.lower() == "x-tm-session-sid" for k, _ in s.headers) for s in forwarded] == [1, 2, 0, 2]

    loaded = load_cassette(cassette)
    assert len(loaded.exchanges) == 15
    rules = {
        ex.request.url.rsplit("n=", 1)[1]: {f.rule for f in loaded.findings if f.exchange_id == ex.id}
        for ex in loaded.exchanges
        if "case=reserve" in ex.request.url
    }
    assert rules == {"same": set(), "twice": set(), "none": {"sid-missing"}, "two": {"sid-malformed"}}
    assert "Traceback" not in proxy.stderr_text


def test_cleartext_http2_is_turned_away_cleanly_and_the_proxy_serves_on(tmp_path: Path):
    cassette = tmp_path / "h2c.yaml"
    with scripted_upstream() as upstream:
        upstream.replies["after"] = Reply(200, b'{"after": true}')
        upstream.replies["upgrade"] = Reply(200, b'{"upgrade": true}')
        with recording(cassette, upstream.url) as proxy:
            parts = urlsplit(proxy.url)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.send_headers(
                1,
                [(":method", "GET"), (":path", "/x?case=after"), (":authority", "h"), (":scheme", "http")],
                end_stream=True,
            )
            with socket.create_connection((parts.hostname, parts.port), timeout=30) as prior_knowledge:
                prior_knowledge.sendall(conn.data_to_send())
                answer = b""
                while chunk := prior_knowledge.recv(65536):  # the proxy answers and hangs up: no hang here
                    answer += chunk
            assert answer == b"" or answer.startswith(b"HTTP/1.1 4")

            upgraded = send(
                proxy.url,
                "GET",
                "/x?case=upgrade",
                [
                    ("Connection", "Upgrade, HTTP2-Settings"),
                    ("Upgrade", "h2c"),
                    ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
                ],
            )
            assert (upgraded.status, upgraded.body) == (200, b'{"upgrade": true}')
            assert send(proxy.url, "GET", "/x?case=after").status == 200
            assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr_text
    assert [ex.request.url.rsplit("case=", 1)[1] for ex in load_cassette(cassette).exchanges] == [
        "upgrade",
        "after",
    ]
