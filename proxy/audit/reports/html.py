"""The HTML report: one self-contained page a reviewer opens in a browser.

The flow is a timeline (time, client, method, path, status, duration), each flagged exchange is
highlighted with its findings and their evidence underneath, and a summary table links each rule
to its findings. Inline CSS only, no script, no external resource, and a Content-Security-Policy
that forbids both, so that even a bug in the escaping could not run a recorded `<script>`. Every
piece of recorded text goes through `_text` (HTML-escaped, non-printables made visible).

Past `MAX_TIMELINE_ROWS` exchanges the timeline keeps only the flagged ones (and says so), so a
100,000-interaction audit still gives a page a browser can open.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from ...cassette.redact import masked_url
from ...exchange import Exchange
from ...findings import Finding
from ..partner_api import injected_fault
from ..rules import RULE_CLASSES
from .model import AuditReport, visible

MAX_TIMELINE_ROWS = 5000
MAX_PATH = 160
_COLUMNS = ("#", "time (UTC)", "+s", "client", "method", "path", "status", "duration", "findings")

_SUMMARIES = {cls.id: cls.summary for cls in RULE_CLASSES}
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #e3e3e6; vertical-align: top; }
th { background: #f5f5f7; position: sticky; top: 0; }
td.time, td.offset, td.duration { white-space: nowrap; }
.finding .severity { margin: 0 .4em; font-weight: 600; }
td.path { font-family: ui-monospace, monospace; word-break: break-all; }
tr.flagged.error > td { background: #fdecec; } tr.flagged.warning > td { background: #fff6db; }
tr.flagged.info > td { background: #eaf3fd; }
.badge { display: inline-block; padding: 0 .45em; border-radius: .6em; font-size: .85em; color: #fff;
  text-decoration: none; margin: 0 .2em .2em 0; }
.badge.error { background: #c62828; } .badge.warning { background: #b26a00; } .badge.info { background: #1565c0; }
tr.details > td { padding: .2em .5em .6em 2.5em; border-bottom: 2px solid #e3e3e6; }
.finding { margin: .3em 0; } .finding .message { margin-left: .4em; }
pre.evidence { margin: .2em 0 0; padding: .4em .6em; background: #f5f5f7; font-size: .85em;
  white-space: pre-wrap; word-break: break-all; }
.note { color: #6e6e73; } .clean { color: #1b5e20; font-weight: 600; }
.injected { font-size: .85em; padding: 0 .35em; border: 1px dashed #6e6e73; border-radius: .4em; }
"""


def render(report: AuditReport) -> str:
    ordered = sorted(enumerate(report.exchanges), key=lambda pair: (pair[1].started_at, pair[0]))
    findings_of: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        findings_of[finding.exchange_id].append(finding)
    rows = [(n, ex) for n, (_, ex) in enumerate(ordered, 1)]
    anchors = {ex.id: n for n, ex in rows if ex.id in findings_of}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>tmproxy audit report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>tmproxy audit</h1>",
        f'<p class="headline">{_text(report.headline())}</p>',
        *_summary(report, anchors),
        *_timeline(rows, findings_of),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: AuditReport, anchors: dict[str, int]) -> list[str]:
    if not report.findings:
        return ['<p class="clean">No findings.</p>']
    out = [
        '<h2 id="rules">Findings by rule</h2>',
        "<table><thead><tr><th>rule</th><th>severity</th>"
        "<th>findings</th><th>on interactions</th><th>what it means</th></tr></thead><tbody>",
    ]
    for rule, found in report.by_rule().items():
        if not found:
            continue
        links = " ".join(
            f'<a href="#ex-{anchors[f.exchange_id]}">#{anchors[f.exchange_id]}</a>'
            for f in found
            if f.exchange_id in anchors
        )
        severity = found[0].severity
        out.append(
            f'<tr><td><span class="badge {severity}">{_text(rule)}</span></td><td>{severity}</td>'
            f"<td>{len(found)}</td><td>{links}</td><td>{_text(_SUMMARIES.get(rule, ''))}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _timeline(rows: list[tuple[int, Exchange]], findings_of: dict[str, list[Finding]]) -> list[str]:
    out = ['<h2 id="timeline">Timeline</h2>']
    shown = rows
    if len(rows) > MAX_TIMELINE_ROWS:
        shown = [(n, ex) for n, ex in rows if ex.id in findings_of]
        out.append(
            f'<p class="note">{len(rows)} interactions: only the {len(shown)} with findings are listed.</p>'
        )
    if not rows:
        return [*out, '<p class="note">No interactions.</p>']
    origin = rows[0][1].started_at
    out.append(
        "<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS) + "</tr></thead><tbody>"
    )
    for n, exchange in shown:
        out.extend(_exchange_rows(n, exchange, origin, findings_of.get(exchange.id, [])))
    out.append("</tbody></table>")
    return out


def _exchange_rows(n: int, exchange: Exchange, origin: float, found: Sequence[Finding]) -> list[str]:
    request = exchange.request
    url = masked_url(request.url)
    worst = max((f.severity for f in found), default=None)
    css = f' class="flagged {worst}"' if worst is not None else ""
    badges = "".join(f'<span class="badge {f.severity}">{_text(f.rule)}</span>' for f in found)
    cells = [
        str(n),
        _text(_utc(exchange.started_at)),
        f"{exchange.started_at - origin:+.3f}",
        _text(exchange.client_host),
        _text(request.method),
        f'<span title="{_text(url)}">{_text(_clip(_path_and_query(url), MAX_PATH))}</span>',
        _status(exchange),
        _duration(exchange),
        badges,
    ]
    classes = ["n", "time", "offset", "client", "method", "path", "status", "duration", "findings"]
    row = "".join(f'<td class="{c}">{cell}</td>' for c, cell in zip(classes, cells, strict=True))
    out = [f'<tr id="ex-{n}"{css} data-interaction="{_text(exchange.id)}">{row}</tr>']
    if found:
        details = "".join(_finding_block(f) for f in found)
        out.append(f'<tr class="details"><td colspan="{len(_COLUMNS)}">{details}</td></tr>')
    return out


def _finding_block(finding: Finding) -> str:
    evidence = ""
    if finding.evidence:
        dumped = json.dumps(finding.evidence, indent=2, default=str, sort_keys=True)
        evidence = (
            '<pre class="evidence">' + "\n".join(_text(line) for line in dumped.splitlines()) + "</pre>"
        )
    return (
        f'<div class="finding {finding.severity}"><span class="badge {finding.severity}">'
        f'{_text(finding.rule)}</span><span class="severity">{finding.severity}</span>'
        f'<span class="message">{_text(finding.message)}</span>'
        f'<div class="interaction note">interaction {_text(finding.exchange_id)}</div>{evidence}</div>'
    )


def _text(value: object) -> str:
    return escape(visible(value), quote=True)


def _path_and_query(url: str) -> str:
    scheme_end = url.find("://")
    slash = url.find("/", scheme_end + 3) if scheme_end >= 0 else url.find("/")
    return url[slash:] if slash >= 0 else url


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc(epoch: float) -> str:
    try:
        moment = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return str(epoch)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _status(exchange: Exchange) -> str:
    """The status, and the fault when tmproxy injected the answer (it is not Ticketmaster's)."""
    if exchange.response is None:
        return "—"
    fault = injected_fault(exchange.response)
    injected = (
        f' <span class="injected" title="injected by tmproxy --fault">{_text(fault)}</span>' if fault else ""
    )
    return f"{exchange.response.status}{injected}"


def _duration(exchange: Exchange) -> str:
    if exchange.response is None or exchange.ended_at is None:
        return "—"
    return f"{(exchange.ended_at - exchange.started_at) * 1000:.0f} ms"
