"""Cassettes tmproxy did not record (vcrpy's own) and the cassettes tmproxy ships."""

from __future__ import annotations

import json
from pathlib import Path

import vcr

from proxy.processes import run_tmproxy, tmproxy
from proxy.sandbox.client import SandboxClient

SHIPPED = Path(__file__).resolve().parents[2] / "cassettes"


def test_a_cassette_vcrpy_wrote_replays_through_tmproxy(sandbox, tmp_path: Path):
    cassette = tmp_path / "vcrpy.yaml"
    with vcr.use_cassette(str(cassette), record_mode="all", decode_compressed_response=True):
        direct = SandboxClient(sandbox.url)
        recorded = direct.top_picks(selection="resale")
        assert recorded.status_code == 200
    requests_seen = len(sandbox.requests())
    with tmproxy("replay", str(cassette), "--listen", "127.0.0.1:0") as replay:
        replayed = SandboxClient(replay.url).top_picks(selection="resale")
    assert replayed.status_code == 200
    assert replayed.json()["_embedded"] == recorded.json()["_embedded"]
    assert len(sandbox.requests()) == requests_seen


def audit_json(path: Path) -> dict:
    result = run_tmproxy("audit", str(path), "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_shipped_compliant_cassette_audits_clean():
    report = audit_json(SHIPPED / "compliant.yaml")
    assert report["findings"] == [] and report["summary"]["interactions"] == 7


def test_shipped_flawed_cassette_shows_each_seeded_mistake_once():
    report = audit_json(SHIPPED / "flawed.yaml")
    found = {rule: count for rule, count in report["summary"]["by_rule"].items() if count}
    assert found == {"sid-missing": 1, "session-expired": 1, "abandoned-cart": 1, "concurrent-cart-calls": 1}


def test_shipped_cassette_replays_in_plain_vcrpy_with_the_documented_settings():
    tm_vcr = vcr.VCR(record_mode="none", filter_query_parameters=[("apikey", "REDACTED")])
    with tm_vcr.use_cassette(str(SHIPPED / "compliant.yaml")):
        client = SandboxClient("https://app.ticketmaster.com", api_key="any-key")
        picks = client.top_picks(selection="resale")
    assert picks.status_code == 200
    assert picks.json()["fanSession"]["resaleSid"]["sessionId"]


def test_shipped_fault_cassettes_tell_the_app_that_copes_from_the_one_that_does_not():
    coping, naive = (audit_json(SHIPPED / f"faults-{name}.yaml") for name in ("coping", "naive"))
    assert coping["findings"] == [] and coping["summary"]["injected"] == {"polling": 6, "quota": 2}
    found = {rule: count for rule, count in naive["summary"]["by_rule"].items() if count}
    assert found == {
        "polling-too-fast": 1,
        "rate-limit-retry": 2,
        "polling-abandoned": 1,
        "abandoned-cart": 1,
    }
