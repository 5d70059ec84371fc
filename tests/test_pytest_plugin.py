"""The pytest plugin, tested the way a partner's test suite uses it (pytester, a real replay proxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cassette import load_cassette

pytest_plugins = ["pytester"]

SHIPPED = Path(__file__).resolve().parent.parent / "cassettes"

USES_SHIPPED_CASSETTE = """
import pytest
import requests

@pytest.mark.tm_cassette("compliant.yaml")
def test_top_picks_from_the_cassette(tm_proxy):
    session = requests.Session()
    session.trust_env = False
    picks = session.get(
        f"{tm_proxy}/top-picks/v1/events/2000527EE48A9334",
        params={"selection": "resale", "apikey": "anything"},
        timeout=30,
    )
    assert picks.status_code == 200
    assert picks.json()["fanSession"]["resaleSid"]["sessionId"]
"""


def test_fixture_serves_a_shipped_cassette_to_requests(pytester: pytest.Pytester):
    pytester.makepyfile(USES_SHIPPED_CASSETTE)
    result = pytester.runpytest_subprocess("-o", f"tm_cassette_dir={SHIPPED}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_missing_marker_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile("def test_no_marker(tm_proxy):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*tm_proxy needs @pytest.mark.tm_cassette*"])


def test_cassette_name_escaping_the_folder_is_refused(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.tm_cassette('../../etc/passwd')\ndef test_escape(tm_proxy):\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*escapes the cassette folder*"])


def test_record_mode_once_records_from_the_upstream_then_replays(pytester: pytest.Pytester, sandbox):
    pytester.makepyfile(USES_SHIPPED_CASSETTE.replace("compliant.yaml", "fresh.yaml"))
    recorded = pytester.runpytest_subprocess(
        "--tm-record-mode", "once", "--tm-upstream", sandbox.url, "-p", "no:cacheprovider"
    )
    recorded.assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "fresh.yaml"
    assert len(load_cassette(cassette).exchanges) == 1
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=1)
    assert len(sandbox.requests()) == 1
