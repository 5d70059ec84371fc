"""The JSON report: `{"findings": [...], "summary": {"interactions": N, "by_rule": {...}}}`.

Each finding is `Finding.to_dict()`: rule, severity, message, interaction (the exchange id),
request {method, uri} and evidence, with secret query parameters of the uri masked.
"""

from __future__ import annotations

import json
from typing import Any

from ...cassette.redact import masked_url
from ...findings import Finding
from .model import AuditReport


def render(report: AuditReport) -> str:
    document = {"findings": [_finding(f) for f in report.findings], "summary": report.summary()}
    return json.dumps(document, indent=2, default=str) + "\n"


def _finding(finding: Finding) -> dict[str, Any]:
    shown = finding.to_dict()
    shown["request"]["uri"] = masked_url(finding.url)
    return shown
