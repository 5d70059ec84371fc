"""The JUnit XML report for CI: one testcase per rule that ran, one <failure> per finding."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ...cassette.redact import masked_url
from ...findings import Finding
from .model import AuditReport, visible

SUITE = "tmproxy audit"


def render(report: AuditReport) -> str:
    groups = report.by_rule()
    failing = sum(1 for found in groups.values() if found)
    attrs = {"name": SUITE, "tests": str(len(groups)), "failures": str(failing), "errors": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "skipped": "0"})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "interactions", "value": str(len(report.exchanges))})
    for rule, found in groups.items():
        case = ET.SubElement(suite, "testcase", {"classname": "tmproxy.audit", "name": rule})
        for finding in found:
            failure = ET.SubElement(
                case, "failure", {"message": visible(finding.message), "type": str(finding.severity)}
            )
            failure.text = _details(finding)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _details(finding: Finding) -> str:
    lines = [
        f"interaction: {finding.exchange_id}",
        f"request: {finding.method} {masked_url(finding.url)}",
        f"message: {finding.message}",
    ]
    if finding.evidence:
        lines.append("evidence: " + json.dumps(finding.evidence, default=str, sort_keys=True))
    return "\n".join(visible(line) for line in lines)
