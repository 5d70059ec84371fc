"""Soak: 10,000 requests at concurrency 20 through a real `tmproxy record`, not one lost or failed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
import vcr
from aiohttp import web

from proxy.cassette import load_cassette
from proxy.processes import recording

REQUESTS = 10_000
CONCURRENCY = 20
APIKEY = "soak-apikey-4c7a1f9e2b"


async def top_picks(request: web.Request) -> web.Response:
    now = int(time.time() * 1000)
    body = {
        "n": request.query["n"],
        "fanSession": {
            "resaleSid": {
                "sessionId": f"3f0c4c2e-9d7b-4d59-8c55-0a6f4e2b{int(request.query['n']) % 10_000:04d}",
                "sessionStartTime": now,
                "sessionExpireTime": now + 3_600_000,
            }
        },
        "_embedded": {"offer": [{"offerId": "R1", "ticketId": "resale-1", "totalPrice": 120.5}]},
    }
    return web.json_response(body)


@contextmanager
def fast_upstream() -> Iterator[str]:
    """A tiny aiohttp server on its own loop and thread: Top Picks-shaped answers echoing `n`."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/top-picks/v1/events/{event}", top_picks)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def hammer(base_url: str) -> dict[int, tuple[int, bytes]]:
    """REQUESTS GETs from CONCURRENCY workers over keep-alive connections: {n: (status, body)}."""
    answers: dict[int, tuple[int, bytes]] = {}
    todo = iter(range(REQUESTS))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:

        async def worker() -> None:
            for n in todo:
                url = f"{base_url}/top-picks/v1/events/E{n % 50}"
                async with session.get(url, params={"apikey": APIKEY, "n": str(n)}) as response:
                    answers[n] = (response.status, await response.read())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answers


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ten_thousand_requests_at_concurrency_20_are_all_answered_and_recorded(tmp_path: Path):
    cassette = tmp_path / "soak.yaml"
    with fast_upstream() as upstream:
        with recording(cassette, upstream) as proxy:
            answers = asyncio.run(hammer(proxy.url))
            assert proxy.stop() == 0

    assert len(answers) == REQUESTS
    failed = {n: status for n, (status, _) in answers.items() if status != 200}
    assert not failed, f"{len(failed)} requests failed, e.g. {list(failed.items())[:5]}"
    assert all(json.loads(body)["n"] == str(n) for n, (_, body) in answers.items())
    assert proxy.stderr_text == "", proxy.stderr_text[-2000:]  # no error, no warning, no finding
    assert f"recorded: {REQUESTS} interactions to {cassette} (0 refused)" in proxy.stdout

    loaded = load_cassette(cassette)
    assert not loaded.warnings
    recorded = sorted(int(ex.request.url.rsplit("n=", 1)[1]) for ex in loaded.exchanges)
    assert recorded == list(range(REQUESTS)), "every request recorded exactly once"
    assert all("apikey=REDACTED" in ex.request.url for ex in loaded.exchanges)
    assert APIKEY.encode() not in cassette.read_bytes()

    with vcr.use_cassette(str(cassette), record_mode="none") as played:
        assert len(played.data) == REQUESTS
