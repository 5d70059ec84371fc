"""Traffic recorded through the proxy from the sandbox, audited offline with `tmproxy audit`."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.partner_flows import (
    TM,
    abandon_cart,
    compliant_purchase,
    concurrent_reserves,
    renew_expired_session,
    reserve_without_session,
)
from proxy.processes import recording, run_tmproxy
from proxy.sandbox.client import SandboxClient, valid_payment


def record(sandbox, cassette: Path, drive: Callable[[str], object]) -> None:
    with recording(cassette, sandbox.url, "--record-as", TM) as proxy:
        drive(proxy.url)
        assert proxy.stop() == 0


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tmproxy("audit", *args)


def findings_of(cassette: Path) -> Counter[str]:
    result = audit(str(cassette), "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return Counter(f["rule"] for f in json.loads(result.stdout)["findings"])


def test_compliant_flow_recorded_through_the_proxy_audits_clean(sandbox, tmp_path: Path):
    cassette = tmp_path / "compliant.yaml"
    record(sandbox, cassette, compliant_purchase)
    result = audit(str(cassette), "--format", "json", "--fail-on", "warning")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["findings"] == [] and report["summary"]["interactions"] == 7


@pytest.mark.parametrize(
    ("drive", "expected"),
    [
        (reserve_without_session, {"sid-missing": 1}),
        (abandon_cart, {"abandoned-cart": 1}),
        (renew_expired_session, {"session-expired": 1}),
        (concurrent_reserves, {"concurrent-cart-calls": 1}),
    ],
    ids=["sid-missing", "abandoned-cart", "session-expired", "concurrent-cart-calls"],
)
def test_seeded_mistakes_give_exactly_the_expected_findings(sandbox, tmp_path: Path, drive, expected):
    cassette = tmp_path / "flawed.yaml"
    record(sandbox, cassette, lambda url: drive(url, sandbox))
    assert findings_of(cassette) == Counter(expected)


def test_errors_fail_the_audit_and_html_names_them(sandbox, tmp_path: Path):
    cassette = tmp_path / "flawed.yaml"
    record(sandbox, cassette, lambda url: reserve_without_session(url, sandbox))
    report = tmp_path / "audit.html"
    result = audit(str(cassette), "--format", "html", "--output", str(report))
    assert result.returncode == 1
    assert "sid-missing" in report.read_text()


def pay_with_a_plain_card(base_url: str, sandbox) -> None:
    client = SandboxClient(base_url)
    payment = valid_payment("cart-that-does-not-matter")
    payment["payment"]["card"].update(number="4111111111111111", cin="123")
    client.add_payment(payment)


def test_a_plain_card_number_found_live_survives_redaction_into_the_audit(sandbox, tmp_path: Path):
    cassette = tmp_path / "card.yaml"
    record(sandbox, cassette, lambda url: pay_with_a_plain_card(url, sandbox))
    assert "4111111111111111" not in cassette.read_text()
    assert findings_of(cassette) == Counter({"unencrypted-card": 1})
