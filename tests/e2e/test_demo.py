"""`tmproxy demo`, the README's first command, as a newcomer runs it."""

from __future__ import annotations

from pathlib import Path

from proxy.partner_flows import APIKEY, CLIENT_SECRET, OAUTH_CODE
from proxy.processes import run_tmproxy


def test_demo_records_replays_and_audits_offline(tmp_path: Path):
    out = tmp_path / "demo"
    result = run_tmproxy("demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for rule in ("sid-missing", "session-expired", "abandoned-cart", "concurrent-cart-calls"):
        assert f"{rule} (" in result.stdout, rule
    assert "7 responses served (0 repeats) from 7 recorded interactions, 0 unused, 0 misses" in result.stdout
    verdicts = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("faults-")]
    coping, naive = (" ".join(words) for words in verdicts)
    assert coping.startswith("faults-coping.yaml") and coping.endswith("audited, 0 findings")
    for reaction in ("rate-limit-retry=", "polling-too-fast=", "polling-abandoned="):
        assert reaction in naive, naive
    assert {p.name for p in out.iterdir()} == {
        "compliant.yaml",
        "flawed.yaml",
        "faults-coping.yaml",
        "faults-naive.yaml",
        "audit.html",
    }
    assert str(out / "audit.html") in result.stdout
    for secret in (APIKEY, CLIENT_SECRET, OAUTH_CODE):
        assert secret not in result.stdout + result.stderr
        for written in out.iterdir():
            assert secret not in written.read_text()
