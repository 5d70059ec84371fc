"""`tmproxy demo`: the whole product in under a minute, offline, with no API key.

Starts the sandbox and the proxy on free ports, records a compliant partner app and a flawed one,
replays the compliant recording with the sandbox gone, and audits both recordings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .audit.engine import audit_exchanges, with_recorded_findings
from .audit.inputs import load_exchanges
from .audit.reports import AuditReport, render
from .audit.rules import rule_ids
from .findings import Finding
from .partner_flows import (
    TM,
    abandon_cart,
    compliant_purchase,
    concurrent_reserves,
    renew_expired_session,
    reserve_without_session,
)
from .processes import CliProcess, tmproxy
from .sandbox.server import RunningSandbox, running_sandbox

DEMO_SEED = 1
COMPLIANT = "compliant.yaml"
FLAWED = "flawed.yaml"
REPORT = "audit.html"


def flawed_partner(base_url: str, sandbox: RunningSandbox) -> None:
    """Every mistake the demo shows, one after another."""
    reserve_without_session(base_url, sandbox)
    abandon_cart(base_url, sandbox)
    renew_expired_session(base_url, sandbox)
    concurrent_reserves(base_url, sandbox)


def run_demo(out: Path, echo: Callable[[str], None] = click.echo) -> None:
    out.mkdir(parents=True, exist_ok=True)
    compliant, flawed = out / COMPLIANT, out / FLAWED
    for stale in (compliant, flawed):
        stale.unlink(missing_ok=True)
    echo(click.style("tmproxy demo", bold=True) + ": the Ticketmaster sandbox, the proxy, two partner apps\n")
    with running_sandbox(seed=DEMO_SEED) as sandbox:
        echo(f"sandbox listening on {sandbox.url} (seed {DEMO_SEED}, no network, no API key)\n")
        step(echo, 1, "A compliant partner app, recorded through the proxy")
        proxy = record(sandbox, compliant, lambda url: compliant_purchase(url))
        report_proxy(echo, proxy)
        step(echo, 2, "A flawed partner app: no session id on a resale reserve, an expired session,")
        echo("   an abandoned cart, concurrent cart calls")
        proxy = record(sandbox, flawed, lambda url: flawed_partner(url, sandbox))
        report_proxy(echo, proxy)
    step(echo, 3, f"The sandbox is gone: replaying {COMPLIANT} offline to the same app")
    with tmproxy("replay", str(compliant), "--listen", "127.0.0.1:0") as replay:
        compliant_purchase(replay.url)
        replay.stop()
    report_proxy(echo, replay)
    step(echo, 4, "The audit of both recordings")
    recorded: list[Finding] = []
    exchanges = load_exchanges([compliant, flawed], recorded)
    findings = with_recorded_findings(audit_exchanges(exchanges), recorded)
    report = AuditReport(exchanges=exchanges, findings=findings, rules=rule_ids())
    echo(render(report, "text", color=sys.stdout.isatty()))
    (out / REPORT).write_text(render(report, "html"), encoding="utf-8")
    echo(click.style("Where things are", bold=True))
    echo(f"  cassettes:   {compliant}  {flawed}")
    echo(f"  HTML report: {out / REPORT}")
    echo(f"  next:        tmproxy replay {compliant}   |   tmproxy audit {out}")


def record(sandbox: RunningSandbox, cassette: Path, drive: Callable[[str], Any]) -> CliProcess:
    args = ("record", str(cassette), "--upstream", sandbox.url, "--record-as", TM, "--listen", "127.0.0.1:0")
    with tmproxy(*args) as proxy:
        drive(proxy.url)
        proxy.stop()
    return proxy


def step(echo: Callable[[str], None], number: int, title: str) -> None:
    echo(click.style(f"{number}. {title}", bold=True))


def report_proxy(echo: Callable[[str], None], proxy: CliProcess) -> None:
    """What the proxy said: its live findings and its exit summary."""
    for line in proxy.stderr_text.splitlines():
        if line.startswith("["):
            echo(f"   {click.style(line, fg='yellow')}")
    for line in proxy.stdout_lines:
        if line.startswith("  "):
            echo(f"  {line.rstrip()}")
    echo("")
