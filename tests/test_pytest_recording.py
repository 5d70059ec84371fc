"""pytest-recording (`@pytest.mark.vcr`) replays tmproxy cassettes, as docs/cassette-format.md tells.

The suites run in a subprocess with pytest-recording's `--block-network`, and call
https://app.ticketmaster.com with a live apikey, which the cassette holds as the placeholder REDACTED.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

COMPLIANT = Path(__file__).resolve().parents[1] / "cassettes" / "compliant.yaml"

CONFTEST = """
from pathlib import Path

import pytest
from vcr.persisters.filesystem import FilesystemPersister


@pytest.fixture(scope="module")
def vcr_cassette_dir():
    return str(Path(__file__).parent / "cassettes")


@pytest.fixture
def vcr_config():
    return {
        "record_mode": "none",
        # pytest-recording 0.15's persister cannot read cassettes with `metadata` (every tmproxy
        # cassette) under vcrpy 9.4; vcrpy's own can
        "persister": FilesystemPersister,
        PLACEHOLDERS
    }
"""

APIKEY_PLACEHOLDER = '"filter_query_parameters": [("apikey", "REDACTED")],'

SUITE = """
import asyncio
import time

import aiohttp
import httpx
import pytest
import requests

TM = "https://app.ticketmaster.com"
EVENT = "2000527EE48A9334"
LIVE_KEY = {"apikey": "live-key-from-the-environment"}


@pytest.mark.default_cassette("compliant.yaml")
@pytest.mark.vcr
def test_top_picks_with_requests():
    picks = requests.get(f"{TM}/top-picks/v1/events/{EVENT}", params={**LIVE_KEY, "selection": "resale"})
    assert picks.status_code == 200
    session = picks.json()["fanSession"]["resaleSid"]
    # vcrpy serves the fan session as recorded: long expired (tmproxy.replay shifts it to now)
    assert int(session["sessionExpireTime"]) < time.time() * 1000


@pytest.mark.default_cassette("compliant.yaml")
@pytest.mark.vcr
def test_reserve_with_aiohttp():
    async def reserve():
        async with aiohttp.ClientSession() as session:
            tickets = [{"id": "resale-listing", "quantity": 2}]
            async with session.post(
                f"{TM}/partners/v1/events/{EVENT}/cart", params=LIVE_KEY, json={"reserve": {"tickets": tickets}}
            ) as response:
                return response.status, await response.json()

    status, body = asyncio.run(reserve())
    assert status == 200 and body["cart_id"]


@pytest.mark.default_cassette("compliant.yaml")
@pytest.mark.vcr
def test_top_picks_with_httpx():
    picks = httpx.get(f"{TM}/top-picks/v1/events/{EVENT}", params={**LIVE_KEY, "selection": "resale"})
    assert picks.status_code == 200
"""


def run_suite(pytester: pytest.Pytester, placeholders: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.replace("PLACEHOLDERS", placeholders))
    pytester.makepyfile(test_suite=SUITE)
    (pytester.path / "cassettes").mkdir()
    shutil.copy(COMPLIANT, pytester.path / "cassettes" / COMPLIANT.name)
    return pytester.runpytest_subprocess("--block-network", "-p", "no:cacheprovider")


def test_a_vcr_marked_suite_replays_a_tmproxy_cassette(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, APIKEY_PLACEHOLDER)
    result.assert_outcomes(passed=3)


def test_without_the_apikey_placeholder_the_live_key_misses(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, "")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*CannotOverwriteExistingCassetteException*"])
