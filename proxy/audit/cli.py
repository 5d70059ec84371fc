"""`tmproxy audit`: run the audit rules over recorded traffic and report.

Exit status: 0 when nothing at or above `--fail-on` was found, 1 otherwise, 2 for unusable input
(or an unwritable `--output`). Runs standalone too: `python -m proxy.audit.cli PATH...`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NoReturn, TypeVar

import click

from ..exchange import Exchange
from ..fan_key_option import check_fan_key
from ..fans import FanKeySpec
from ..findings import Finding, Severity
from .engine import audit_events, traffic_events, with_recorded_findings
from .inputs import AuditInputError, find_inputs, read_input
from .reports import FORMATS, AuditReport, render
from .rules import rule_ids

logger = logging.getLogger(__name__)

PROGRESS_MIN_BYTES = 1_000_000
PROGRESS_MIN_EXCHANGES = 10_000
FAIL_ON = ("error", "warning", "never")
INPUT_ERROR_EXIT = 2
FINDINGS_EXIT = 1

T = TypeVar("T")


@click.command("audit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    envvar="TMPROXY_AUDIT_FORMAT",
    show_envvar=True,
    help="Report format.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    envvar="TMPROXY_AUDIT_FAIL_ON",
    show_envvar=True,
    default="error",
    show_default=True,
    help="Exit 1 when a finding at or above this severity is found (never: always exit 0).",
)
@click.option(
    "--fan-key",
    envvar="TMPROXY_FAN_KEY",
    show_envvar=True,
    default="",
    callback=lambda _ctx, _param, value: check_fan_key(value),
    help="header:NAME or cookie:NAME: tells fans apart in recordings that name no fan (vcrpy, HAR, flow).",
)
def audit_command(paths: tuple[Path, ...], fmt: str, output: Path | None, fail_on: str, fan_key: str) -> None:
    """Audit recorded Ticketmaster traffic against the Fan Session and Partner API rules.

    PATHS are tmproxy or vcrpy cassettes (.yaml), HAR files (.har), mitmproxy flow files
    (.flow, from `mitmdump -w`) or folders, which are searched recursively.

    \b
    Example:
      tmproxy audit cassettes/ --format html --output audit.html
      tmproxy audit session.flow --format junit -o audit.xml --fail-on warning

    Exits 0 when nothing at or above --fail-on was found, 1 when something was,
    2 when an input is missing, unreadable or not traffic.
    """
    recorded: list[Finding] = []
    try:
        exchanges = _load(list(paths), recorded)
    except AuditInputError as error:
        _fail(f"unusable input: {error}")
    spec = FanKeySpec.parse(fan_key) if fan_key else None
    findings = with_recorded_findings(_audit(exchanges, spec), recorded)
    report = AuditReport(exchanges=exchanges, findings=findings, rules=rule_ids())
    _write(report, fmt, output)
    if _fails(report.findings, fail_on):
        sys.exit(FINDINGS_EXIT)


def _load(paths: list[Path], recorded: list[Finding]) -> list[Exchange]:
    files = find_inputs(paths)
    size = sum(_size(f) for f in files)
    exchanges: list[Exchange] = []
    with _progress(files, len(files), "Reading", size >= PROGRESS_MIN_BYTES) as bar:
        for path in bar:
            exchanges.extend(read_input(path, recorded))
    return exchanges


def _audit(exchanges: list[Exchange], fan_key: FanKeySpec | None) -> list[Finding]:
    """`audit_exchanges`, with a progress bar on a terminal."""
    large = len(exchanges) >= PROGRESS_MIN_EXCHANGES
    with _progress(traffic_events(exchanges), 2 * len(exchanges), "Auditing", large) as events:
        return audit_events(events, fan_key=fan_key)


@contextmanager
def _progress(items: Iterable[T], length: int, label: str, large: bool) -> Iterator[Iterable[T]]:
    """A progress bar on stderr for large inputs, only when stderr is a terminal."""
    if not (large and sys.stderr.isatty()):
        yield items
        return
    with click.progressbar(items, length=length, label=label, file=sys.stderr) as bar:
        yield bar


def _write(report: AuditReport, fmt: str, output: Path | None) -> None:
    if output is None:
        click.echo(render(report, fmt, color=_colour_wanted(sys.stdout)), nl=False, color=True)
        return
    try:
        output.write_text(render(report, fmt), encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {output}: {error.strerror or error}")
    logger.info("wrote the %s report to %s", fmt, output)


def _colour_wanted(stream: IO[str]) -> bool:
    """Colour only on a terminal and only when NO_COLOR is unset (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and stream.isatty()


def _fails(findings: list[Finding], fail_on: str) -> bool:
    if fail_on == "never":
        return False
    threshold = Severity.parse(fail_on)
    return any(f.severity >= threshold for f in findings)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fail(message: str) -> NoReturn:
    click.echo(f"tmproxy audit: {message}", err=True)
    sys.exit(INPUT_ERROR_EXIT)


if __name__ == "__main__":
    audit_command()
