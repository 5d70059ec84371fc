"""The pytest plugin, tested the way a partner's test suite uses it (pytester, a real session proxy)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
import requests

from proxy.cassette import load_cassette
from proxy.fan_session import SidPolicy
from proxy.pytest_plugin import CassetteUse
from proxy.session_client import SessionProxyError, session_proxy

pytest_plugins = ["pytester"]

SHIPPED = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED_DIR = f"tm_cassette_dir={SHIPPED}"

HEADER = """
import pytest
import requests

def client():
    session = requests.Session()
    session.trust_env = False
    return session

def top_picks(base):
    return client().get(
        f"{base}/top-picks/v1/events/2000527EE48A9334",
        params={"selection": "resale", "apikey": "anything"},
        timeout=30,
    )
"""

USES_SHIPPED_CASSETTE = (
    HEADER
    + """
@pytest.mark.tm_cassette("compliant.yaml")
def test_top_picks_from_the_cassette(tm_proxy):
    picks = top_picks(tm_proxy)
    assert picks.status_code == 200
    assert picks.json()["fanSession"]["resaleSid"]["sessionId"]
"""
)

RESERVE_WITHOUT_SID = """
from urllib.parse import urlsplit
from proxy.cassette import load_cassette

RESERVE = next(e.request for e in load_cassette({flawed!r}).exchanges if e.request.method == "POST")

def reserve(base):
    return client().post(
        f"{{base}}{{urlsplit(RESERVE.url).path}}",
        params={{"apikey": "anything"}},
        data=RESERVE.body,
        headers={{"Content-Type": "application/json"}},
        timeout=30,
    )

@pytest.mark.tm_cassette("flawed.yaml", {marker})
def test_reserve_without_the_session_id(tm_proxy):
    assert reserve(tm_proxy).status_code == {status}
"""


def reserve_without_sid(marker: str, status: int) -> str:
    """A test file posting flawed.yaml's resale reserve without its X-TM-SESSION-SID."""
    return HEADER + RESERVE_WITHOUT_SID.format(
        flawed=str(SHIPPED / "flawed.yaml"), marker=marker, status=status
    )


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_fixture_serves_a_shipped_cassette_to_requests(pytester: pytest.Pytester):
    pytester.makepyfile(USES_SHIPPED_CASSETTE)
    run(pytester, "-o", SHIPPED_DIR).assert_outcomes(passed=1)


def test_one_proxy_process_serves_two_cassettes_to_two_tests(pytester: pytest.Pytester):
    pytester.makepyfile(
        HEADER
        + """
import os

@pytest.mark.tm_cassette("compliant.yaml")
def test_compliant(tm_proxy, tm_session_proxy):
    assert top_picks(tm_proxy).status_code == 200
    print(f"PROXY pid={tm_session_proxy.pid} url={tm_proxy} test={os.getpid()}")

@pytest.mark.tm_cassette("flawed.yaml")
def test_flawed(tm_proxy, tm_session_proxy):
    assert top_picks(tm_proxy).status_code == 200
    print(f"PROXY pid={tm_session_proxy.pid} url={tm_proxy} test={os.getpid()}")
    assert False, "show the replay summary"
"""
    )
    result = run(pytester, "-o", SHIPPED_DIR, "-s")
    result.assert_outcomes(passed=1, failed=1)
    seen = re.findall(r"PROXY pid=(\d+) url=(\S+) test=(\d+)", result.stdout.str())
    assert len(seen) == 2
    (pid, url, test_pid), (pid_again, url_again, _) = seen
    assert (pid, url) == (pid_again, url_again)
    assert pid != test_pid
    with pytest.raises(ProcessLookupError):  # and it ended with the session
        os.kill(int(pid), 0)
    # the failing test's report shows its own replay, not the first test's: flawed.yaml's 12 recordings
    result.stdout.fnmatch_lines(
        [
            "*Captured tmproxy call*",
            "cassette *flawed.yaml (sid validate)",
            "replay: 1 served (0 repeats) of 12 recorded, 0 missed, 11 unused",
        ]
    )


def test_failing_test_shows_the_replay_summary(pytester: pytest.Pytester):
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.tm_cassette("compliant.yaml")
def test_fails_after_a_miss(tm_proxy):
    top_picks(tm_proxy)
    assert client().get(f"{tm_proxy}/discovery/v2/nothing", params={"apikey": "x"}, timeout=30).status_code == 404
    assert False
"""
    )
    result = run(pytester, "-o", SHIPPED_DIR)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Captured tmproxy call*",
            "cassette *compliant.yaml (sid validate)",
            "replay: 1 served (0 repeats) of 7 recorded, 1 missed, 6 unused",
            "  unused: POST https://app.ticketmaster.com/oauth/token",
            "*log: replay miss: GET https://app.ticketmaster.com/discovery/v2/nothing*closest*",
        ]
    )


def test_an_error_finding_fails_the_test_only_when_the_marker_asks(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_lenient=reserve_without_sid("sid='validate'", 200),
        test_strict=reserve_without_sid("fail_on='error'", 200),
        test_strict_but_clean=USES_SHIPPED_CASSETTE.replace(
            '"compliant.yaml"', '"compliant.yaml", fail_on="error"'
        ),
    )
    result = run(pytester, "-o", SHIPPED_DIR)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "tmproxy: the test's traffic brought what fail_on=error fails on:",
            "  [[]sid-missing[]] error: *(POST https://app.ticketmaster.com/partners/v1/events/*/cart*)",
            "*Captured tmproxy call*",
            "findings: 2",
            "  [[]sid-missing[]] error: *",
            "  [[]abandoned-cart[]] warning: *",  # below fail_on: listed, not failing
            "FAILED test_strict.py::test_reserve_without_the_session_id*",
        ]
    )


def test_an_enforce_block_fails_the_test_when_the_marker_asks(pytester: pytest.Pytester):
    pytester.makepyfile(test_enforced=reserve_without_sid("sid='enforce', fail_on='error'", 428))
    result = run(pytester, "-o", SHIPPED_DIR)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*enforce: POST /partners/v1/events/*/cart?apikey=* blocked (sid-missing)*"])


def test_missing_marker_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile("def test_no_marker(tm_proxy):\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*tm_proxy needs @pytest.mark.tm_cassette*"])


def test_bad_marker_options_are_usage_errors(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.mark.tm_cassette('compliant.yaml', fail_on='fatal')\ndef test_severity(tm_proxy):\n    pass\n\n"
        "@pytest.mark.tm_cassette('compliant.yaml', sid='sometimes')\ndef test_sid(tm_proxy):\n    pass\n\n"
        "@pytest.mark.tm_cassette('compliant.yaml', record='all')\ndef test_unknown(tm_proxy):\n    pass\n"
    )
    result = run(pytester, "-o", SHIPPED_DIR)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        ["*unknown severity 'fatal'*", "*'sometimes' is not a valid SidPolicy*", "*unknown options record*"]
    )


def test_missing_cassette_in_record_mode_none_says_how_to_record_it(pytester: pytest.Pytester):
    pytester.makepyfile(USES_SHIPPED_CASSETTE.replace("compliant.yaml", "never-recorded.yaml"))
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no cassette *never-recorded.yaml: record it with --tm-record-mode once*"])


def test_cassette_name_escaping_the_folder_is_refused(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.tm_cassette('../../etc/passwd')\ndef test_escape(tm_proxy):\n    pass\n"
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*escapes the cassette folder*"])


def test_record_mode_once_records_a_missing_cassette_and_replays_an_existing_one(
    pytester: pytest.Pytester, sandbox
):
    folder = pytester.path / "cassettes"
    folder.mkdir()
    shutil.copy(SHIPPED / "compliant.yaml", folder / "compliant.yaml")
    pytester.makepyfile(
        test_fresh=USES_SHIPPED_CASSETTE.replace("compliant.yaml", "fresh.yaml"),
        test_existing=USES_SHIPPED_CASSETTE,
    )
    recorded = run(pytester, "--tm-record-mode", "once", "--tm-upstream", sandbox.url)
    recorded.assert_outcomes(passed=2)
    assert len(load_cassette(folder / "fresh.yaml").exchanges) == 1
    assert len(sandbox.requests()) == 1  # compliant.yaml was replayed, not recorded again
    replayed = run(pytester)
    replayed.assert_outcomes(passed=2)
    assert len(sandbox.requests()) == 1


def test_control_port_refuses_a_missing_or_wrong_token():
    with session_proxy() as proxy:
        for message in ({"op": "end"}, {"op": "end", "token": "guess"}, "not json"):
            with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as control:
                control.sendall(json.dumps(message).encode() + b"\n")
                answers = control.makefile("rb")
                refused = json.loads(answers.readline())
                assert refused["ok"] is False
                assert "token" in refused["error"]
                assert answers.readline() == b""  # and the connection is closed
        assert proxy.end()["ok"] is True  # the plugin's own token still works
        token = proxy._token
        with open(f"/proc/{proxy.pid}/cmdline", "rb") as cmdline:
            assert token.encode() not in cmdline.read()
        with open(f"/proc/{proxy.pid}/environ", "rb") as environ:
            assert token.encode() not in environ.read()
        # and the control port is not on the proxy's port: a Ticketmaster path there is only traffic
        session = requests.Session()
        session.trust_env = False
        assert (
            session.post(f"{proxy.url}/switch", json={"op": "end", "token": token}, timeout=10).status_code
            == 503
        )


def test_switches_the_proxy_cannot_carry_out_are_answered_with_the_reason(tmp_path: Path):
    (tmp_path / "garbage.yaml").write_text("interactions: [")
    with session_proxy() as proxy:
        for cassette, mode, upstream, expected in [
            (tmp_path / "garbage.yaml", "none", None, "garbage.yaml"),
            (tmp_path / "missing.yaml", "none", None, "record it with --tm-record-mode once"),
            (tmp_path / "missing.yaml", "once", None, "needs an upstream"),
            (SHIPPED / "compliant.yaml", "sometimes", None, "unknown record mode"),
        ]:
            with pytest.raises(SessionProxyError, match=expected):
                proxy.switch(str(cassette), mode, upstream, "validate")
        with pytest.raises(SessionProxyError, match="unknown op"):
            proxy.call("shutdown")
        assert proxy.switch(str(SHIPPED / "compliant.yaml"), "none", None, "validate")["replay"] is True


def test_a_proxy_that_died_is_reported_as_gone():
    with session_proxy() as proxy:
        os.kill(proxy.pid, 9)
        proxy.process.proc.wait()
        with pytest.raises(SessionProxyError, match="is gone"):
            proxy.end()


def test_a_report_lists_at_most_twenty_unused_interactions():
    unused = [
        {"interaction": str(i), "method": "GET", "url": f"https://app.ticketmaster.com/{i}"}
        for i in range(25)
    ]
    usage = {"recorded": 25, "served": 0, "repeats": 0, "misses": 0, "unused": unused}
    ended = {"usage": usage, "findings": [], "blocks": [], "log": [], "recorded": 0}
    lines = CassetteUse(Path("big.yaml"), SidPolicy.VALIDATE, None, ended).summary().splitlines()
    assert sum(line.startswith("  unused: GET") for line in lines) == 20
    assert "  ... and 5 more unused" in lines
