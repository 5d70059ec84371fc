"""`tmproxy demo`: the whole product in under a minute, offline, with no API key.

Starts the sandbox and the proxy on free ports, records a compliant partner app and a flawed one,
then two apps under Ticketmaster's failures (`--fault`), one that copes and one that does not,
replays the compliant recording with the sandbox gone, and audits every recording.
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
    coping_purchase,
    naive_purchase,
    renew_expired_session,
    reserve_without_session,
)
from .processes import CliProcess, tmproxy
from .sandbox.server import RunningSandbox, running_sandbox

DEMO_SEED = 1
COMPLIANT = "compliant.yaml"
FLAWED = "flawed.yaml"
COPING = "faults-coping.yaml"
NAIVE = "faults-naive.yaml"
REPORT = "audit.html"
FAULTS = ("--fault", "quota:0.3,reset=0.25", "--fault", "polling:0.5,wait=0.25", "--fault-seed", "7")
"""Ticketmaster's waits shortened to a quarter second, and a seed that shows every reaction rule the
naive app breaks with these two faults."""


def flawed_partner(base_url: str, sandbox: RunningSandbox) -> None:
    """Every mistake the demo shows, one after another."""
    reserve_without_session(base_url, sandbox)
    abandon_cart(base_url, sandbox)
    renew_expired_session(base_url, sandbox)
    concurrent_reserves(base_url, sandbox)


def run_demo(out: Path, echo: Callable[[str], None] = click.echo) -> None:
    out.mkdir(parents=True, exist_ok=True)
    compliant, flawed, coping, naive = (out / name for name in (COMPLIANT, FLAWED, COPING, NAIVE))
    for stale in (compliant, flawed, coping, naive):
        stale.unlink(missing_ok=True)
    echo(
        click.style("tmproxy demo", bold=True)
        + ": the Ticketmaster sandbox, the proxy, partner apps good and bad\n"
    )
    with running_sandbox(seed=DEMO_SEED) as sandbox:
        echo(f"sandbox listening on {sandbox.url} (seed {DEMO_SEED}, no network, no API key)\n")
        step(echo, 1, "A compliant partner app, recorded through the proxy")
        proxy = record(sandbox, compliant, lambda url: compliant_purchase(url))
        report_proxy(echo, proxy)
        step(echo, 2, "A flawed partner app: no session id on a resale reserve, an expired session,")
        echo("   an abandoned cart, concurrent cart calls")
        proxy = record(sandbox, flawed, lambda url: flawed_partner(url, sandbox))
        report_proxy(echo, proxy)
        step(echo, 3, "Ticketmaster failing on purpose: " + " ".join(FAULTS))
        echo("   an app that copes (waits out each 429, follows polling) and one that does not")
        for cassette, partner in ((coping, coping_purchase), (naive, naive_purchase)):
            proxy = record(sandbox, cassette, partner, *FAULTS)
            report_proxy(echo, proxy)
        echo("   the audit tells them apart:")
        for cassette in (coping, naive):
            exchanges = load_exchanges([cassette])
            verdict = AuditReport(exchanges=exchanges, findings=audit_exchanges(exchanges))
            rules = ", ".join(f"{rule}={len(found)}" for rule, found in verdict.by_rule().items())
            echo(f"   {cassette.name:20} {verdict.headline()}{': ' + rules if rules else ''}")
        echo("")
    step(echo, 4, f"The sandbox is gone: replaying {COMPLIANT} offline to the same app")
    with tmproxy("replay", str(compliant), "--listen", "127.0.0.1:0") as replay:
        compliant_purchase(replay.url)
        replay.stop()
    report_proxy(echo, replay)
    step(echo, 5, "The audit of every recording")
    recorded: list[Finding] = []
    exchanges = load_exchanges([compliant, flawed, coping, naive], recorded)
    findings = with_recorded_findings(audit_exchanges(exchanges), recorded)
    report = AuditReport(exchanges=exchanges, findings=findings, rules=rule_ids())
    echo(render(report, "text", color=sys.stdout.isatty()))
    (out / REPORT).write_text(render(report, "html"), encoding="utf-8")
    echo(click.style("Where things are", bold=True))
    echo(f"  cassettes:   {compliant}  {flawed}  {coping}  {naive}")
    echo(f"  HTML report: {out / REPORT}")
    echo(f"  next:        tmproxy replay {compliant}   |   tmproxy audit {out}")


def record(sandbox: RunningSandbox, cassette: Path, drive: Callable[[str], Any], *flags: str) -> CliProcess:
    args = (
        "record",
        str(cassette),
        "--upstream",
        sandbox.url,
        "--record-as",
        TM,
        "--listen",
        "127.0.0.1:0",
        *flags,
    )
    with tmproxy(*args) as proxy:
        drive(proxy.url)
        proxy.stop()
    return proxy


def step(echo: Callable[[str], None], number: int, title: str) -> None:
    echo(click.style(f"{number}. {title}", bold=True))


def report_proxy(echo: Callable[[str], None], proxy: CliProcess) -> None:
    """What the proxy said: its live findings and its exit summary (which counts the injected faults)."""
    for line in proxy.stderr_text.splitlines():
        if line.startswith("[") and not line.startswith("[fault:"):
            echo(f"   {click.style(line, fg='yellow')}")
    for line in proxy.stdout_lines:
        if line.startswith("  "):
            echo(f"  {line.rstrip()}")
    echo("")
