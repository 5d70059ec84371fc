"""Running mitmproxy embedded, with exactly the addons tmproxy needs.

DumpMaster exits the process on any error logged at startup, so the CLI builds a plain Master
with the core mitmproxy addons plus tmproxy's, and reports its own startup failures.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mitmproxy import addonmanager, ctx, exceptions, hooks, master, options
from mitmproxy.addons import core, disable_h2c, next_layer, proxyserver, tlsconfig

from .netaddr import url_host

logger = logging.getLogger(__name__)


@dataclass
class ProxySettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    mode: str = "reverse"
    upstream: str = "https://app.ticketmaster.com"
    confdir: str = "~/.mitmproxy"
    ssl_insecure: bool = False

    def mitm_mode(self) -> str:
        return f"reverse:{self.upstream}" if self.mode == "reverse" else "regular"


class ProxyStartError(RuntimeError):
    pass


class Announce:
    """Prints `listening on ...` once the server is bound; stops the master if nothing could bind."""

    def __init__(self, on_listening: Callable[[str], None]) -> None:
        self.on_listening = on_listening
        self.url: str | None = None
        self.failure: str | None = None

    def running(self) -> None:
        server = ctx.master.addons.get("proxyserver")
        addrs = server.listen_addrs() if server else []
        if not addrs:
            self.failure = (
                f"could not listen on {ctx.options.listen_host}:{ctx.options.listen_port} "
                "(address in use or not allowed?)"
            )
            ctx.master.shutdown()
            return
        host, port = addrs[0][0], addrs[0][1]
        self.url = f"http://{url_host(host)}:{port}"
        self.on_listening(self.url)
        # Done: mitmproxy visits every addon in the chain on every event of every flow, hook or not
        # (about 12 µs of CPU per request each). `remove` replaces the chain it is iterating over.
        ctx.master.addons.remove(self)


class AddonBundle:
    """tmproxy's addons as one link of mitmproxy's chain.

    mitmproxy visits every link on every event of every flow, hook or not (a safecall context, a
    coroutine, a walk over the addon's children: about 12 µs of CPU per addon and request); the bundle
    looks its members' hooks up once and calls them in order. As in mitmproxy, a member's exception is
    logged and the other members still run; OptionsError and AddonHalt go through. `register_members`
    files the members under their own names, so `addons.get(name)` finds them.
    """

    name = "tmproxy-addons"

    def __init__(self, members: Sequence[Any]) -> None:
        self.members = list(members)
        for hook in hooks.all_hooks:
            handlers = [handler for m in self.members if callable(handler := getattr(m, hook, None))]
            if handlers:
                setattr(self, hook, _dispatcher(hook, handlers))

    def register_members(self, manager: addonmanager.AddonManager) -> None:
        for member in self.members:
            name = getattr(member, "name", type(member).__name__.lower())
            if manager.get(name) is not None:
                raise exceptions.AddonManagerError(f"An addon called '{name}' already exists.")
            manager.lookup[name] = member
            manager.master.commands.collect_commands(member)


_PASSED_ON = (exceptions.AddonHalt, exceptions.OptionsError)


def _dispatcher(hook: str, handlers: list[Callable[..., Any]]) -> Callable[..., Any]:
    if hook == "load":  # as mitmproxy registers an addon: a failing load fails the start

        def load(*args: Any) -> None:
            for handler in handlers:
                handler(*args)

        return load

    def dispatch(*args: Any) -> Any:
        """Call the members in order; a member that hands back an awaitable (an async hook, or a sync one
        that must wait this time) makes the rest a coroutine, which mitmproxy awaits. Most events
        wait for nothing, and cost no coroutine."""
        waiting = _call_until_awaitable(hook, handlers, args)
        return None if waiting is None else _dispatch_rest(hook, waiting, args)

    return dispatch


Waiting = tuple[Callable[..., Any], Any, list[Callable[..., Any]]]
"""A member that handed back an awaitable, the awaitable, and the members still to call."""


def _call_until_awaitable(
    hook: str, handlers: list[Callable[..., Any]], args: tuple[Any, ...]
) -> Waiting | None:
    for position, handler in enumerate(handlers):
        result = _guarded_call(hook, handler, args)
        if result is not None and inspect.isawaitable(result):
            return handler, result, handlers[position + 1 :]
    return None


async def _dispatch_rest(hook: str, waiting: Waiting | None, args: tuple[Any, ...]) -> None:
    while waiting is not None:
        handler, pending, rest = waiting
        try:
            await pending
        except _PASSED_ON:
            raise
        except Exception as exc:
            _log_addon_error(hook, handler, exc)
        waiting = _call_until_awaitable(hook, rest, args)


def _guarded_call(hook: str, handler: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """As mitmproxy calls an addon: its exception is logged and the next one runs."""
    try:
        return handler(*args)
    except _PASSED_ON:
        raise
    except Exception as exc:
        _log_addon_error(hook, handler, exc)
        return None


def _log_addon_error(hook: str, handler: Callable[..., Any], exc: Exception) -> None:
    owner = type(getattr(handler, "__self__", handler)).__name__
    logger.error(f"Addon error: {exc} ({owner}.{hook})", exc_info=exc)


def mitm_listen_host(host: str) -> str:
    """`localhost` as the IP address it means: in reverse mode to an https upstream mitmproxy also opens
    an HTTP/3 (UDP) port, whose server takes IP addresses only and fails on a name."""
    return "127.0.0.1" if host.lower() == "localhost" else host


def build_master(settings: ProxySettings, addons: Sequence[Any], announce: Announce) -> master.Master:
    opts = options.Options(
        listen_host=mitm_listen_host(settings.listen_host),
        listen_port=settings.listen_port,
        mode=[settings.mitm_mode()],
        confdir=settings.confdir,
    )
    m = master.Master(opts)
    m.addons.add(
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        disable_h2c.DisableH2C(),
    )
    bundle = AddonBundle(addons)
    m.addons.add(bundle, announce)
    bundle.register_members(m.addons)
    m.options.update(connection_strategy="lazy", ssl_insecure=settings.ssl_insecure)
    return m


async def serve(
    settings: ProxySettings,
    addons: Sequence[Any],
    on_listening: Callable[[str], None],
    option_updates: dict[str, Any] | None = None,
) -> None:
    """Run the proxy until SIGINT or SIGTERM; raise ProxyStartError if it could not start."""
    announce = Announce(on_listening)
    m = build_master(settings, addons, announce)
    try:
        m.options.update(**(option_updates or {}))
    except exceptions.OptionsError as exc:
        raise ProxyStartError(str(exc)) from None
    await run_master(m, announce)


async def run_master(m: master.Master, announce: Announce) -> None:
    """Run a built master until SIGINT, SIGTERM or its shutdown; ProxyStartError if it could not listen."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, m.shutdown)
    try:
        await m.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        ignore_cancelled_connections(loop)
    if announce.failure:
        raise ProxyStartError(announce.failure)


def ignore_cancelled_connections(loop: asyncio.AbstractEventLoop) -> None:
    """Stopping with clients still connected cancels their handlers; Python 3.11's asyncio then logs a
    traceback per connection (`StreamReaderProtocol` calls `task.exception()` on a cancelled task; fixed
    in 3.12). A clean stop must not look like a crash: those, and only those, are dropped."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def install_console_logging(verbose: bool = False) -> None:
    """Findings and warnings as one plain line each on stderr; mitmproxy's chatter only with -v."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("mitmproxy").setLevel(logging.ERROR)
