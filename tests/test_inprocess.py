"""tmproxy.replay: a tmproxy cassette served in-process to requests, urllib3, aiohttp and httpx.

Replayed requests go to https://app.ticketmaster.com, which no test may reach: a request the cassette
does not answer must raise ReplayMiss, never go out (with no network it would fail differently).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3
from vcr.errors import CannotOverwriteExistingCassetteException

import tmproxy
from proxy.cassette import load_cassette
from proxy.sandbox.client import API_KEY, EVENT_ID
from proxy.sandbox.server import RunningSandbox
from proxy.ticketmaster import resale_sid

COMPLIANT = Path(__file__).resolve().parents[1] / "cassettes" / "compliant.yaml"
FLAWED = COMPLIANT.with_name("flawed.yaml")
TM = "https://app.ticketmaster.com"
TOP_PICKS = f"{TM}/top-picks/v1/events/{EVENT_ID}"
CART = f"{TM}/partners/v1/events/{EVENT_ID}/cart"
LIVE_KEY = {"apikey": "live-key-not-in-the-cassette"}
PICKS_QUERY = {**LIVE_KEY, "selection": "resale"}


def recorded(method: str, path_end: str) -> Any:
    """The compliant cassette's exchange for a method and a path ending."""
    exchanges = load_cassette(COMPLIANT).exchanges
    return next(e for e in exchanges if e.request.method == method and e.request.path.endswith(path_end))


RESERVE = recorded("POST", "/cart")


def assert_session_valid_now(body: dict[str, Any]) -> None:
    """The replayed fan session starts no later than now and has not expired (the recording's has)."""
    now_ms = time.time() * 1000
    sid = resale_sid(body)
    assert sid is not None
    assert sid.start_ms <= now_ms < sid.expire_ms
    original = resale_sid(recorded("GET", EVENT_ID).response.json())
    assert original is not None and original.expire_ms < now_ms, "the recorded session must be stale"
    assert sid.session_id == original.session_id
    assert sid.expire_ms - sid.start_ms == original.expire_ms - original.start_ms


def test_requests_gets_top_picks_with_the_fan_session_shifted_to_now() -> None:
    with tmproxy.replay(COMPLIANT) as cassette:
        response = requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert_session_valid_now(response.json())
    usage = cassette.usage
    assert (usage.served, usage.misses, len(usage.unused)) == (1, 0, usage.recorded - 1)


def test_urllib3_gets_top_picks() -> None:
    with tmproxy.replay(COMPLIANT):
        response = urllib3.PoolManager().request("GET", TOP_PICKS, fields=PICKS_QUERY)
    assert response.status == 200
    assert_session_valid_now(response.json())


def test_aiohttp_posts_a_json_reserve() -> None:
    async def reserve() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.post(CART, params=LIVE_KEY, json=RESERVE.request.json()) as response:
                return response.status, await response.read()

    with tmproxy.replay(COMPLIANT) as cassette:
        status, body = asyncio.run(reserve())
    assert (status, body) == (RESERVE.response.status, RESERVE.response.body)
    assert cassette.usage.served == 1


def test_httpx_sync_and_async() -> None:
    async def reserve() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(CART, params=LIVE_KEY, json=RESERVE.request.json())

    with tmproxy.replay(COMPLIANT) as cassette:
        picks = httpx.get(TOP_PICKS, params=PICKS_QUERY)
        reserved = asyncio.run(reserve())
    assert picks.status_code == 200
    assert_session_valid_now(picks.json())
    assert reserved.status_code == RESERVE.response.status
    assert reserved.content == RESERVE.response.body
    assert cassette.usage.served == 2


def test_each_block_plays_afresh_and_a_rewritten_cassette_is_read_again(tmp_path: Path) -> None:
    """Blocks share the process's parsed cassette (as a suite's tests do) but not what was played;
    a file changed between them is served as it now is."""
    path = tmp_path / "checkout.yaml"
    shutil.copy(COMPLIANT, path)
    for _ in range(2):
        with tmproxy.replay(path, repeat="exhaust") as cassette:
            assert requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5).status_code == 200
        assert (cassette.usage.served, cassette.usage.misses) == (1, 0)
    shutil.copy(FLAWED, path)
    with tmproxy.replay(path) as cassette:
        requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)

    def replayable(source: Path) -> int:
        return sum(e.response is not None for e in load_cassette(source).exchanges)

    assert replayable(FLAWED) != replayable(COMPLIANT)
    assert cassette.usage.recorded == replayable(FLAWED)


def test_a_miss_names_the_closest_recording_and_the_query_difference() -> None:
    with tmproxy.replay(COMPLIANT) as cassette:
        with pytest.raises(tmproxy.ReplayMiss) as miss:
            requests.get(TOP_PICKS, params={**LIVE_KEY, "quantity": "9"}, timeout=5)
    message = str(miss.value)
    closest = message.splitlines()[message.splitlines().index("closest recordings:") + 1]
    assert f"{TOP_PICKS}?selection=resale&apikey=REDACTED" in closest
    assert "added quantity" in closest and "removed selection" in closest
    assert LIVE_KEY["apikey"] not in message
    assert miss.value.report.candidates[0].differences["query"] == {
        "added": {"quantity": "9"},
        "removed": {"selection": "resale"},
    }
    assert isinstance(miss.value, CannotOverwriteExistingCassetteException)
    assert cassette.usage.misses == 1


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
def test_an_async_miss_names_the_json_path_that_differs(client: str) -> None:
    body = RESERVE.request.json()
    changed = {"reserve": {"tickets": [{**body["reserve"]["tickets"][0], "quantity": 9}]}}

    async def post() -> None:
        if client == "aiohttp":
            async with aiohttp.ClientSession() as session:
                await session.post(CART, params=LIVE_KEY, json=changed)
        else:
            async with httpx.AsyncClient() as http:
                await http.post(CART, params=LIVE_KEY, json=changed)

    with tmproxy.replay(COMPLIANT), pytest.raises(tmproxy.ReplayMiss) as miss:
        asyncio.run(post())
    assert "body differs at $.reserve.tickets[0].quantity" in str(miss.value)


def test_exhaust_misses_a_second_play_where_repeat_last_serves_it_again() -> None:
    with tmproxy.replay(COMPLIANT) as cassette:
        first = requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)
        again = requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)
    assert (
        first.json()["fanSession"]["resaleSid"]["sessionId"]
        == again.json()["fanSession"]["resaleSid"]["sessionId"]
    )
    assert (cassette.usage.served, cassette.usage.repeats) == (2, 1)

    with tmproxy.replay(COMPLIANT, repeat="exhaust"):
        requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)
        with pytest.raises(tmproxy.ReplayMiss, match="already played") as miss:
            requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5)
    assert miss.value.reason == "already_played"  # vcrpy's name for it


def test_decorates_sync_and_async_functions_with_a_fresh_replay_per_call() -> None:
    @tmproxy.replay(COMPLIANT, repeat="exhaust")
    def picks() -> dict[str, Any]:
        return requests.get(TOP_PICKS, params=PICKS_QUERY, timeout=5).json()

    @tmproxy.replay(COMPLIANT, repeat="exhaust")
    async def reserve() -> int:
        async with aiohttp.ClientSession() as session:
            async with session.post(CART, params=LIVE_KEY, json=RESERVE.request.json()) as response:
                return response.status

    for _ in range(2):  # with exhaust, a second call could only be served by a fresh replay
        assert_session_valid_now(picks())
        assert asyncio.run(reserve()) == 200


def sandbox_picks(
    sandbox: RunningSandbox, selection: str = "resale", apikey: str = API_KEY
) -> requests.Response:
    """Top Picks from the sandbox (live), or from the cassette when a replay serves it."""
    url = f"{sandbox.url}/top-picks/v1/events/{EVENT_ID}"
    return requests.get(url, params={"apikey": apikey, "selection": selection}, timeout=5)


def record_once(sandbox: RunningSandbox, path: Path) -> dict[str, Any]:
    """Record one Top Picks call to a new cassette; its body as the app saw it."""
    with tmproxy.replay(path, record_mode="once") as recording:
        picks = sandbox_picks(sandbox).json()
    assert recording.recorded == 1
    return picks


def test_clients_go_to_the_network_again_after_the_block(sandbox: RunningSandbox) -> None:
    with tmproxy.replay(COMPLIANT):
        with pytest.raises(tmproxy.ReplayMiss):
            sandbox_picks(sandbox)
    assert sandbox_picks(sandbox).status_code == 200


def test_record_once_writes_a_redacted_tmproxy_cassette_that_then_replays(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    live = record_once(sandbox, path)
    text = path.read_text()
    assert API_KEY not in text and "apikey=REDACTED" in text
    assert load_cassette(path).metadata["tmproxy"]  # tmproxy's own layout, readable by vcrpy too

    with tmproxy.replay(path) as replayed:  # record_mode none: served from the file
        again = sandbox_picks(sandbox, apikey="another-key-entirely")
        with pytest.raises(tmproxy.ReplayMiss):
            sandbox_picks(sandbox, selection="standard")
    assert again.status_code == 200
    assert resale_sid(again.json()).session_id == resale_sid(live).session_id
    assert replayed.usage.served == 1


@pytest.mark.parametrize(("mode", "served"), [("new_episodes", 1), ("all", 0)])
def test_new_episodes_serves_what_is_recorded_where_all_records_everything_again(
    mode: str, served: int, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "more.yaml"
    first = record_once(sandbox, path)
    with tmproxy.replay(path, record_mode=mode) as run:
        resale = sandbox_picks(sandbox).json()  # recorded
        standard = sandbox_picks(sandbox, selection="standard")  # not recorded
    replayed = resale_sid(resale).session_id == resale_sid(first).session_id  # live: the sandbox's new one
    assert replayed is (mode == "new_episodes")
    assert standard.status_code == 200
    assert (run.usage.served, run.recorded) == (served, 2 - served)
    assert len(load_cassette(path).exchanges) == 3 - served


def test_a_missing_cassette_or_a_bad_option_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="record_mode='once'"):
        with tmproxy.replay(tmp_path / "absent.yaml"):
            pass
    with pytest.raises(ValueError, match="record_mode must be one of"):
        tmproxy.replay(COMPLIANT, record_mode="sometimes")
    with pytest.raises(ValueError, match="repeat must be"):
        tmproxy.replay(COMPLIANT, repeat="forever")  # type: ignore[arg-type]


def test_aiohttp_form_as_pairs_matches_the_oauth_recording_whatever_its_secrets() -> None:
    form = [("grant_type", "authorization_code"), ("client_id", "partner")]
    form += [("client_secret", "live-secret-0123456789"), ("code", "live-code-0123456789")]

    async def token() -> int:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{TM}/oauth/token", data=form) as response:
                return response.status

    with tmproxy.replay(COMPLIANT) as cassette:
        assert asyncio.run(token()) == 200
    assert cassette.usage.served == 1
