"""Record a whole partner flow from the sandbox through `tmproxy record`, then replay it offline."""

from __future__ import annotations

import json
from pathlib import Path

import requests
import vcr

from proxy.cassette import load_cassette
from proxy.partner_flows import APIKEY, CLIENT_SECRET, OAUTH_CODE, TM, compliant_purchase
from proxy.processes import recording, run_tmproxy, tmproxy
from proxy.sandbox.client import EVENT_ID, SandboxClient, valid_payment
from proxy.sandbox.server import running_sandbox


def secrets_of(responses: list[requests.Response]) -> list[str]:
    token = responses[0].json()
    card = valid_payment("x")["payment"]["card"]
    return [
        APIKEY,
        CLIENT_SECRET,
        OAUTH_CODE,
        token["access_token"],
        token["refresh_token"],
        card["number"],
        card["cin"],
    ]


def test_recorded_flow_replays_offline_to_the_same_client_and_in_vcrpy(tmp_path: Path):
    cassette = tmp_path / "purchase.yaml"
    with (
        running_sandbox(seed=11) as sandbox,
        recording(cassette, sandbox.url, "--record-as", TM) as proxy,
    ):
        live = compliant_purchase(proxy.url)
        assert [r.status_code for r in live] == [200, 200, 200, 200, 200, 200, 200]
        assert proxy.stop() == 0
    assert "recorded: 7 interactions" in proxy.stdout

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    for secret in secrets_of(live):
        for path in written:
            assert secret.encode() not in path.read_bytes(), f"a secret reached {path.name}"

    loaded = load_cassette(cassette)
    assert [ex.request.url.split("?")[0] for ex in loaded.exchanges][:2] == [
        f"{TM}/oauth/token",
        f"{TM}/top-picks/v1/events/{EVENT_ID}",
    ]

    with tmproxy("replay", str(cassette), "--listen", "127.0.0.1:0") as replay:
        offline = compliant_purchase(replay.url)
        assert replay.stop() == 0
    assert [r.status_code for r in offline] == [r.status_code for r in live]
    for before, after in zip(live[2:], offline[2:], strict=True):
        assert after.content == before.content
    live_sid, offline_sid = (r.json()["fanSession"]["resaleSid"] for r in (live[1], offline[1]))
    assert offline_sid["sessionId"] == live_sid["sessionId"]
    assert (
        offline_sid["sessionExpireTime"] - offline_sid["sessionStartTime"]
        == live_sid["sessionExpireTime"] - live_sid["sessionStartTime"]
    )
    assert offline_sid["sessionStartTime"] >= live_sid["sessionStartTime"]
    assert "7 responses served" in replay.stdout and "0 misses" in replay.stdout

    tm_vcr = vcr.VCR(
        record_mode="none",
        filter_query_parameters=[("apikey", "REDACTED")],
        filter_post_data_parameters=[("client_secret", "REDACTED"), ("code", "REDACTED")],
    )
    with tm_vcr.use_cassette(str(cassette)):
        replayed = compliant_purchase(TM)
    assert [r.status_code for r in replayed] == [r.status_code for r in live]
    assert json.loads(replayed[-1].content) == json.loads(live[-1].content)


def test_replay_miss_names_the_closest_recording(tmp_path: Path):
    cassette = tmp_path / "picks.yaml"
    with (
        running_sandbox(seed=12) as sandbox,
        recording(cassette, sandbox.url) as proxy,
    ):
        SandboxClient(proxy.url).top_picks(quantity=2)
    with tmproxy("replay", str(cassette), "--listen", "127.0.0.1:0") as replay:
        missed = SandboxClient(replay.url).top_picks(quantity=4)
        assert missed.status_code == 404
        closest = missed.json()["closest"][0]
        assert closest["differences"]["query"] == {"changed": {"quantity": {"recorded": "2", "request": "4"}}}
    assert "replay miss" in replay.stderr_text and "1 misses" in replay.stdout


def test_replay_forward_records_misses(tmp_path: Path):
    cassette = tmp_path / "grow.yaml"
    with running_sandbox(seed=13) as sandbox:
        with recording(cassette, sandbox.url) as proxy:
            SandboxClient(proxy.url).top_picks(quantity=2)
        with tmproxy(
            "replay",
            str(cassette),
            "--upstream",
            sandbox.url,
            "--on-miss",
            "forward",
            "--listen",
            "127.0.0.1:0",
        ) as replay:
            client = SandboxClient(replay.url)
            assert client.top_picks(quantity=2).status_code == 200
            assert client.top_picks(quantity=4).status_code == 200
            assert len(sandbox.requests()) == 2
    assert len(load_cassette(cassette).exchanges) == 2


def test_record_mode_once_replays_an_existing_cassette(tmp_path: Path):
    cassette = tmp_path / "once.yaml"
    with running_sandbox(seed=14) as sandbox:
        for _ in range(2):
            with recording(cassette, sandbox.url) as proxy:
                assert SandboxClient(proxy.url).top_picks().status_code == 200
        assert len(sandbox.requests()) == 1
    assert len(load_cassette(cassette).exchanges) == 1


def test_corrupt_cassette_is_refused_and_left_alone(tmp_path: Path):
    cassette = tmp_path / "bad.yaml"
    cassette.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    result = run_tmproxy("record", str(cassette), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert "bad.yaml" in result.stderr
    assert cassette.read_text() == "!!python/object/apply:os.system ['echo pwned']\n"


def test_record_mode_all_always_records_and_none_only_replays(tmp_path: Path):
    cassette = tmp_path / "modes.yaml"
    with running_sandbox(seed=15) as sandbox:
        for _ in range(2):
            with tmproxy(
                "record",
                str(cassette),
                "--record-mode",
                "all",
                "--upstream",
                sandbox.url,
                "--listen",
                "127.0.0.1:0",
            ) as proxy:
                assert SandboxClient(proxy.url).top_picks().status_code == 200
        assert len(sandbox.requests()) == 2
        with tmproxy(
            "record",
            str(cassette),
            "--record-mode",
            "none",
            "--upstream",
            sandbox.url,
            "--listen",
            "127.0.0.1:0",
        ) as proxy:
            client = SandboxClient(proxy.url)
            assert client.top_picks().status_code == 200
            assert client.top_picks(quantity=7).status_code == 404
        assert len(sandbox.requests()) == 2
    assert len(load_cassette(cassette).exchanges) == 2
