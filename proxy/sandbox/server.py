"""Running the sandbox: in the foreground for the CLI, or on a background thread for tests."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from proxy.netaddr import parse_listen, warn_if_exposed
from proxy.sandbox.app import build_app
from proxy.sandbox.pricing import DEFAULT_REPRICE_INTERVAL
from proxy.sandbox.quota import DEFAULT_QUOTA
from proxy.sandbox.state import DEFAULT_POLL_WAIT, SandboxConfig, SandboxState

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:0"
_SHUTDOWN_TIMEOUT = 2.0
_STARTUP_TIMEOUT = 30.0


def serve_forever(
    listen: str = DEFAULT_LISTEN,
    seed: int = 0,
    session_ttl: float = 3600.0,
    quota: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then return normally (so the CLI exits 0).

    Prints exactly one line, `listening on http://HOST:PORT` with the real port, once bound.
    A non-loopback host is allowed but warned about on stderr: the sandbox has no real security.
    """
    host, port = parse_listen(listen, default_port=0)
    warn_if_exposed(host, "the sandbox")
    state = SandboxState(_config(seed, session_ttl, quota))
    asyncio.run(_serve_until_signalled(state, host, port))


async def _serve_until_signalled(state: SandboxState, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner, url = await _start(state, host, port)
    print(f"listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("sandbox stopping")
        await runner.cleanup()


async def _start(
    state: SandboxState, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if ssl_context is not None else "http"
    return runner, f"{scheme}://{shown}:{bound_port}"


def _config(
    seed: int,
    session_ttl: float,
    quota: int | None,
    reprice_interval: float = DEFAULT_REPRICE_INTERVAL,
) -> SandboxConfig:
    """`quota=None` means Ticketmaster's usual 1200 calls a minute."""
    return SandboxConfig(
        seed=seed,
        session_ttl=session_ttl,
        quota=DEFAULT_QUOTA if quota is None else quota,
        reprice_interval=reprice_interval,
    )


class RunningSandbox:
    """A sandbox served on a background thread: its `url`, its `state`, and the test controls."""

    def __init__(self, state: SandboxState, ssl_context: ssl.SSLContext | None = None) -> None:
        self.state = state
        self.ssl_context = ssl_context
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="tm-sandbox", daemon=True)

    # ---- lifecycle ----

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT):
            raise RuntimeError("sandbox did not start")
        if self._error is not None:
            raise RuntimeError("sandbox failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            log.exception("sandbox thread failed")
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner, self.url = await _start(self.state, "127.0.0.1", 0, self.ssl_context)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # ---- controls (the same as the /_sandbox/ endpoints) ----

    def now(self) -> float:
        return self.state.now()

    def advance_clock(self, seconds: float) -> float:
        return self.state.advance_clock(seconds)

    def reprice(
        self,
        event_id: str | None = None,
        listing: str | None = None,
        factor: float | None = None,
        price: float | None = None,
    ) -> dict[str, float]:
        return self.state.reprice(event_id=event_id, listing=listing, factor=factor, price=price)

    def current_price(self, ticket_id: str) -> float:
        return self.state.current_price(ticket_id)

    def set_quota(self, limit: int) -> None:
        self.state.set_quota(limit)

    def set_delay(self, seconds: float) -> None:
        self.state.set_delay(seconds)

    def set_polling(self, wait: int = DEFAULT_POLL_WAIT, extra_rounds: int = 0) -> None:
        self.state.set_polling(wait, extra_rounds)

    def fail_next(self, count: int = 1, status: int | None = None) -> None:
        self.state.fail_next(count, status)

    def reset(self) -> None:
        self.state.reset()

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def catalog(self) -> dict[str, Any]:
        return self.state.catalog()

    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests()

    def clear_requests(self) -> None:
        self.state.clear_requests()

    def wait_until_busy(self, cart_id: str, timeout: float = 5.0) -> bool:
        return self.state.wait_until_busy(cart_id, timeout)


@contextmanager
def running_sandbox(
    seed: int = 0,
    session_ttl: float = 3600.0,
    quota: int | None = None,
    reprice_interval: float = DEFAULT_REPRICE_INTERVAL,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[RunningSandbox]:
    """A sandbox on 127.0.0.1 and a free port, served from its own thread and event loop.

    With an `ssl_context` it serves HTTPS, like Ticketmaster, for tests of the proxy's regular mode.
    """
    sandbox = RunningSandbox(SandboxState(_config(seed, session_ttl, quota, reprice_interval)), ssl_context)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
