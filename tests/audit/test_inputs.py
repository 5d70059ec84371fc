"""Input readers: tmproxy and vcrpy cassettes, HAR, mitmproxy flow files, folders, and unusable input."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from audit.flows import purchase

from proxy.audit.engine import audit_exchanges
from proxy.audit.inputs import AuditInputError, find_inputs, iter_exchanges, load_exchanges, read_input
from proxy.cassette.format import exchange_to_interaction


def write_tmproxy_cassette(path: Path, exchanges) -> Path:
    document = {"version": 1, "interactions": [exchange_to_interaction(ex) for ex in exchanges]}
    path.write_text(yaml.safe_dump(document))
    return path


def test_tmproxy_cassette_keeps_ids_times_clients_and_bodies(tmp_path):
    flow = purchase()
    loaded = load_exchanges([write_tmproxy_cassette(tmp_path / "run.yaml", flow)])
    assert [(e.id, e.started_at, e.ended_at, e.client) for e in loaded] == [
        (e.id, e.started_at, e.ended_at, e.client) for e in flow
    ]
    assert loaded[6].request.json() == flow[6].request.json()
    assert audit_exchanges(loaded) == []


class _Api(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_plain_vcrpy_cassette_gets_ordered_times_and_file_ids(tmp_path):
    requests = pytest.importorskip("requests")
    vcr = pytest.importorskip("vcr")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with vcr.VCR().use_cassette(str(tmp_path / "plain.yaml")):
            for n in range(3):
                requests.get(f"{base}/partners/v1/events/E{n}", timeout=5)
    finally:
        server.shutdown()
    loaded = load_exchanges([tmp_path / "plain.yaml"])
    assert [e.id for e in loaded] == ["plain.yaml#0", "plain.yaml#1", "plain.yaml#2"]
    assert [(e.started_at, e.ended_at) for e in loaded] == [(0.0, 0.5), (1.0, 1.5), (2.0, 2.5)]
    assert loaded[2].response is not None and loaded[2].response.json() == {"path": "/partners/v1/events/E2"}


def har_entry(url, *, method="GET", started="2024-05-01T12:00:00.000Z", time=250, status=200, **extra):
    entry = {
        "startedDateTime": started,
        "time": time,
        "request": {"method": method, "url": url, "headers": [{"name": ":authority", "value": "x"},
                                                             {"name": "X-TM-SESSION-SID", "value": "s"}]},
        "response": {"status": status, "statusText": "OK", "headers": [{"name": "Content-Encoding", "value": "gzip"}],
                     "content": {"size": 2, "mimeType": "application/json", "text": "{}"}},
    }  # fmt: skip
    for key, value in extra.items():
        entry[key.split("_")[0]][key.split("_", 1)[1]] = value
    return entry


def write_har(path: Path, entries) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t"}, "entries": entries}}))
    return path


def test_har_entries_become_exchanges(tmp_path):
    encoded = {"size": 9, "mimeType": "application/json", "encoding": "base64",
               "text": base64.b64encode(b'{"cart_id": "c1"}').decode()}  # fmt: skip
    entries = [
        har_entry("https://app.ticketmaster.com/partners/v1/events/E/cart", method="POST",
                  request_postData={"mimeType": "application/json", "text": '{"reserve": {}}'},
                  response_content=encoded),
        har_entry("https://oauth.ticketmaster.com/oauth/token", method="POST", started="2024-05-01T14:00:01+02:00",
                  request_postData={"mimeType": "application/x-www-form-urlencoded",
                                    "params": [{"name": "grant_type", "value": "refresh_token"}]}),
        har_entry("https://app.ticketmaster.com/aborted", status=0, time=-1),
    ]  # fmt: skip
    loaded = read_input(write_har(tmp_path / "browser.har", entries))
    reserve, token, aborted = loaded
    assert reserve.id == "browser.har#0"
    assert reserve.started_at == 1714564800.0 and reserve.ended_at == 1714564800.25
    assert reserve.request.json() == {"reserve": {}} and reserve.response.json() == {"cart_id": "c1"}
    assert reserve.request.headers.items() == [("X-TM-SESSION-SID", "s")]
    assert "Content-Encoding" not in reserve.response.headers
    assert token.started_at == 1714564801.0 and token.request.body == b"grant_type=refresh_token"
    assert aborted.response is None


def test_mitmproxy_flow_file(tmp_path):
    from mitmproxy import io
    from mitmproxy.test import tflow

    flow = tflow.tflow(resp=True)
    flow.request.url = "https://app.ticketmaster.com/partners/v1/events/E/cart?apikey=REDACTED"
    errored = tflow.tflow(err=True)
    path = tmp_path / "capture.flow"
    with path.open("wb") as stream:
        writer = io.FlowWriter(stream)
        writer.add(flow)
        writer.add(errored)
        writer.add(tflow.ttcpflow())
    loaded = read_input(path)
    assert [e.id for e in loaded] == [flow.id, errored.id]
    assert loaded[0].request.path == "/partners/v1/events/E/cart"
    assert loaded[0].response is not None and loaded[0].response.status == 200
    assert loaded[1].response is None


def test_folders_are_searched_recursively_without_repeats(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    cassette = write_tmproxy_cassette(nested / "one.yml", purchase()[:2])
    write_har(tmp_path / "a" / "two.har", [har_entry("https://app.ticketmaster.com/x")])
    (tmp_path / "notes.txt").write_text("not traffic")
    assert [p.name for p in find_inputs([tmp_path, cassette])] == ["one.yml", "two.har"]
    assert len(list(iter_exchanges([tmp_path]))) == 3


def test_files_with_other_extensions_are_sniffed(tmp_path):
    har = write_har(tmp_path / "export.json", [har_entry("https://app.ticketmaster.com/x")])
    cassette = write_tmproxy_cassette(tmp_path / "cassette.txt", purchase()[:1])
    assert len(load_exchanges([har, cassette])) == 2


@pytest.mark.parametrize(
    ("name", "content", "complaint"),
    [
        ("evil.yaml", "!!python/object/apply:os.system ['echo owned']\n", "unsafe"),
        ("list.yaml", "- 1\n- 2\n", "not a cassette"),
        ("bad.yaml", "interactions: [\n", "not valid YAML"),
        ("fake.har", "{not json", "not a HAR file"),
        ("fake2.har", '{"log": {}}', "no log.entries"),
        ("broken.har", '{"log": {"entries": [{"request": {}}]}}', "malformed HAR entry"),
        ("fake.flow", "this is not a flow file", "not a mitmproxy flow file"),
        ("binary.har", b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_unusable_files_raise_an_error_naming_the_file(tmp_path, name, content, complaint):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(AuditInputError) as raised:
        load_exchanges([path])
    assert name in str(raised.value) and complaint in str(raised.value)


def test_missing_paths_and_empty_folders_are_unusable(tmp_path):
    with pytest.raises(AuditInputError, match="no such file"):
        load_exchanges([tmp_path / "missing.yaml"])
    with pytest.raises(AuditInputError, match="no cassette"):
        load_exchanges([tmp_path])
