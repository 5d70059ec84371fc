"""Report formats: text, JSON, JUnit and HTML, including hostile traffic and a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from audit.flows import CART, ex, purchase
from traffic import T0

from proxy.audit.engine import audit_exchanges
from proxy.audit.reports import FORMATS, AuditReport, render
from proxy.audit.reports.model import visible
from proxy.audit.rules import rule_ids

HOSTILE_SID = "<script>document.title='pwned'</script>"
HOSTILE_PATH = "/partners/v1/events/E1/cart/x?<script>alert(1)</script>&q=\x1b[31mred\x00"


def hostile_report() -> AuditReport:
    """A purchase whose commit overlaps a hostile cart call carrying markup, ANSI and NUL characters."""
    flow = purchase()
    flow.append(ex("GET", HOSTILE_PATH, at=T0 + 11.05, headers={"X-TM-SESSION-SID": HOSTILE_SID},
                   id='"><script>alert(2)</script>\x1b[31m'))  # fmt: skip
    flow.append(ex("GET", f"{CART}?apikey=LEAKEDKEY123&cart_id=c", at=T0 + 20))
    return AuditReport(exchanges=flow, findings=audit_exchanges(flow), rules=rule_ids())


def clean_report() -> AuditReport:
    flow = purchase()
    return AuditReport(exchanges=flow, findings=audit_exchanges(flow), rules=rule_ids())


def test_hostile_report_has_the_expected_findings():
    assert sorted({f.rule for f in hostile_report().findings}) == [
        "concurrent-cart-calls",
        "secret-in-recording",
        "sid-malformed",
    ]


# --- text ---


def test_text_groups_findings_by_rule_without_colour_by_default():
    text = render(hostile_report(), "text")
    assert text.splitlines()[0] == "11 interactions audited, 3 findings (2 errors, 1 warning)"
    assert "concurrent-cart-calls (error, 1)" in text and "sid-malformed (warning, 1)" in text
    assert "\x1b" not in text and "\x00" not in text
    assert '"><script>alert(2)</script>\\x1b[31m' in text


def test_text_colour_only_when_asked():
    assert "\x1b[" in render(hostile_report(), "text", color=True)


def test_text_of_a_clean_audit():
    assert render(clean_report(), "text") == "9 interactions audited, 0 findings\n"


def test_reports_never_repeat_a_leaked_apikey():
    for fmt in FORMATS:
        assert "LEAKEDKEY123" not in render(hostile_report(), fmt), fmt


# --- json ---


def test_json_lists_findings_and_a_summary():
    report = hostile_report()
    document = json.loads(render(report, "json"))
    first = document["findings"][0]
    assert set(first) == {"rule", "severity", "message", "interaction", "request", "evidence"}
    assert set(first["request"]) == {"method", "uri"}
    assert document["summary"]["interactions"] == 11
    assert document["summary"]["by_rule"]["concurrent-cart-calls"] == 1
    assert set(document["summary"]["by_rule"]) == set(rule_ids())
    assert {f["interaction"] for f in document["findings"]} <= {e.id for e in report.exchanges}


# --- junit ---


def test_junit_is_valid_xml_with_a_testcase_per_rule_and_a_failure_per_finding():
    report = hostile_report()
    root = ET.fromstring(render(report, "junit").encode())
    suite = root.find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == rule_ids()
    assert sum(len(case.findall("failure")) for case in cases.values()) == len(report.findings)
    failure = cases["sid-malformed"].find("failure")
    assert failure is not None and failure.get("type") == "warning"
    assert HOSTILE_SID[:20] in (failure.get("message") or "")
    assert suite.get("failures") == "3" and suite.get("tests") == str(len(rule_ids()))


def test_visible_makes_control_characters_printable():
    assert visible("a\x1b[0m\x00\ufffe") == "a\\x1b[0m\\x00\\ufffe"


# --- html ---


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_escapes_everything():
    page = render(hostile_report(), "html")
    parser = _Collect()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert all(attrs.get("href", "#").startswith("#") for _, attrs in parser.tags)
    assert not any("src" in attrs for _, attrs in parser.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page


def test_html_timeline_marks_flagged_exchanges():
    page = render(hostile_report(), "html")
    assert page.count('class="flagged ') == 2  # the hostile call (overlapping the commit), the leaking call
    assert page.count('<tr id="ex-') == 11


def test_html_keeps_only_flagged_rows_past_the_limit(monkeypatch):
    from proxy.audit.reports import html

    monkeypatch.setattr(html, "MAX_TIMELINE_ROWS", 5)
    page = render(hostile_report(), "html")
    assert page.count('<tr id="ex-') == 2 and "only the 2 with findings are listed" in page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (CI installs Debian's chromium)")
def test_html_renders_in_a_headless_browser_without_running_recorded_script(tmp_path):
    page = tmp_path / "audit.html"
    page.write_text(render(hostile_report(), "html"), encoding="utf-8")
    command = [
        str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=90, check=True).stdout
    assert "<title>tmproxy audit report</title>" in dom  # a script that ran would have set it to 'pwned'
    for rule in ("concurrent-cart-calls", "sid-malformed", "secret-in-recording"):
        assert (
            f'<span class="badge error">{rule}</span>' in dom
            or f'<span class="badge warning">{rule}</span>' in dom
        )
    assert "<script" not in dom.lower()
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert dom.count('class="flagged ') == 2


def test_answers_tmproxy_injected_are_told_apart_from_ticketmaster_s():
    flow = purchase()
    flow.insert(1, ex("GET", f"{CART}/shipping?cart_id=c", at=T0 + 0.5, status=429,
                      response_headers={"X-Tmproxy-Fault": "quota"}))  # fmt: skip
    report = AuditReport(exchanges=flow, findings=audit_exchanges(flow), rules=rule_ids())
    assert report.headline().startswith(
        f"{len(flow)} interactions (1 answered by tmproxy --fault, not Ticketmaster) audited"
    )
    assert json.loads(render(report, "json"))["summary"]["injected"] == {"quota": 1}
    assert '429 <span class="injected" title="injected by tmproxy --fault">quota</span>' in render(
        report, "html"
    )
    assert json.loads(render(clean_report(), "json"))["summary"]["injected"] == {}
    assert "tmproxy --fault" not in clean_report().headline()


def test_an_injected_expired_session_is_not_reported_as_ticketmaster_s_message():
    expired = {"X-TM-Session-Message": "SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"}
    genuine = ex("GET", "/top-picks/v1/events/E1", at=T0, response_headers=expired)
    injected = ex("GET", "/top-picks/v1/events/E1", at=T0 + 1,
                  response_headers={**expired, "X-Tmproxy-Fault": "session-expiry"})  # fmt: skip
    assert [f.exchange_id for f in audit_exchanges([genuine, injected]) if f.rule == "session-expired"] == [
        genuine.id
    ]
