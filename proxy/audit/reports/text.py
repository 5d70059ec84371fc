"""The text report: a table per rule, in colour when the caller says the stream is a terminal."""

from __future__ import annotations

import click

from ...cassette.redact import masked_url
from ...findings import Finding, Severity
from .model import AuditReport, visible

MAX_URI = 72
MAX_MESSAGE = 160
_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_COLUMNS = ("interaction", "method", "uri", "message")


def render(report: AuditReport, color: bool = False) -> str:
    lines = [_style(report.headline(), color, bold=True)]
    for rule, found in report.by_rule().items():
        if found:
            lines += ["", *_rule_table(rule, found, color)]
    return "\n".join(lines) + "\n"


def _rule_table(rule: str, found: list[Finding], color: bool) -> list[str]:
    severity = found[0].severity
    title = f"{rule} ({severity}, {len(found)})"
    rows = [_COLUMNS, *(_row(f) for f in found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    table = [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    return [
        _style(title, color, fg=_COLOURS.get(severity), bold=True),
        _style(table[0], color, dim=True),
        *table[1:],
    ]


def _row(finding: Finding) -> tuple[str, str, str, str]:
    return (
        visible(finding.exchange_id),
        visible(finding.method),
        _clip(visible(masked_url(finding.url)), MAX_URI),
        _clip(visible(finding.message), MAX_MESSAGE),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _style(text: str, color: bool, fg: str | None = None, bold: bool = False, dim: bool = False) -> str:
    return click.style(text, fg=fg, bold=bold, dim=dim) if color else text
