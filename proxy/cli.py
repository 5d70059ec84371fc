"""The `tmproxy` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .audit.cli import audit_command
from .netaddr import ListenAddressError, parse_listen, warn_if_exposed
from .ticketmaster import DEFAULT_UPSTREAM

DEFAULT_PROXY_LISTEN = "127.0.0.1:8080"
DEFAULT_SANDBOX_LISTEN = "127.0.0.1:9000"


def listen_address(default_port: int) -> Callable[[click.Context, click.Parameter, str], tuple[str, int]]:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
        try:
            return parse_listen(value, default_port)
        except ListenAddressError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


def proxy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every proxying command shares (run, record, replay)."""
    decorators = [
        click.option(
            "--listen",
            default=DEFAULT_PROXY_LISTEN,
            show_default=True,
            callback=listen_address(8080),
            help="HOST:PORT to listen on; port 0 picks a free port.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["reverse", "regular"]),
            default="reverse",
            show_default=True,
            help="reverse: point the app's base URL at the proxy; regular: use it as the HTTP(S) proxy.",
        ),
        click.option(
            "--sid",
            type=click.Choice(["inject", "validate", "enforce", "off"]),
            default="validate",
            show_default=True,
            help="X-TM-SESSION-SID policy on Partner API cart calls.",
        ),
        click.option(
            "--confdir",
            default="~/.mitmproxy",
            show_default=True,
            help="mitmproxy's folder for its CA certificate (regular mode HTTPS).",
        ),
        click.option("--ssl-insecure", is_flag=True, help="Do not verify the upstream's TLS certificate."),
        click.option(
            "--upstream-timeout",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            help="Seconds to wait for the upstream before answering 502 (0: wait forever).",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Also show mitmproxy's own log."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tmproxy")
def main() -> None:
    """tmproxy: keep Ticketmaster resale prices stable from Top Picks to checkout.

    A local proxy that injects, validates or enforces X-TM-SESSION-SID on Partner API cart calls,
    records and replays cassettes, audits partner traffic, and ships a Ticketmaster sandbox.

    \b
    Example:
      tmproxy sandbox --listen 127.0.0.1:9000 &
      tmproxy run --upstream http://127.0.0.1:9000 --sid inject
    """


@main.command()
@click.option(
    "--listen",
    default=DEFAULT_SANDBOX_LISTEN,
    show_default=True,
    callback=listen_address(9000),
    help="HOST:PORT to listen on; port 0 picks a free port.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for listings and price moves.")
@click.option(
    "--session-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Fan session lifetime in seconds.",
)
@click.option("--quota", type=click.IntRange(min=1), default=None, help="Calls per minute per API key.")
def sandbox(listen: tuple[str, int], seed: int, session_ttl: float, quota: int | None) -> None:
    """Run the local Ticketmaster sandbox (Top Picks, fan sessions, Partner API cart).

    \b
    Example:
      tmproxy sandbox --listen 127.0.0.1:0 --seed 7 --session-ttl 60
      curl 'http://127.0.0.1:9000/top-picks/v1/events/2000527EE48A9334?apikey=demo'
    """
    from .sandbox.server import serve_forever

    host, port = listen
    serve_forever(f"{host}:{port}", seed=seed, session_ttl=session_ttl, quota=quota)


@main.command()
@click.option(
    "--upstream", default=DEFAULT_UPSTREAM, show_default=True, help="Ticketmaster, or the sandbox's URL."
)
@proxy_options
def run(
    upstream: str,
    listen: tuple[str, int],
    mode: str,
    sid: str,
    confdir: str,
    ssl_insecure: bool,
    upstream_timeout: float,
    verbose: bool,
) -> None:
    """Run the fan-session proxy in front of Ticketmaster (or the sandbox).

    \b
    Example:
      tmproxy run --upstream http://127.0.0.1:9000 --listen 127.0.0.1:8080 --sid enforce
      curl -X POST 'http://127.0.0.1:8080/partners/v1/events/2000527EE48A9334/cart?apikey=KEY' ...
    """
    from addons.fan_session import FanSession
    from addons.upstream_timeout import UpstreamTimeout

    from .mitm_master import ProxySettings

    fan_session = FanSession()
    settings = ProxySettings(
        listen_host=listen[0],
        listen_port=listen[1],
        mode=mode,
        upstream=upstream,
        confdir=confdir,
        ssl_insecure=ssl_insecure,
    )
    options = {"tm_sid": sid, "tm_upstream_timeout": upstream_timeout}
    run_proxy(settings, [UpstreamTimeout(), fan_session], options, verbose)
    print_summary(fan_session)


def run_proxy(settings: Any, addons: list[Any], option_updates: dict[str, Any], verbose: bool) -> None:
    """Serve until SIGINT/SIGTERM; a startup failure is a clear message and exit 1."""
    from .mitm_master import ProxyStartError, install_console_logging, serve

    warn_if_exposed(settings.listen_host, "the proxy")
    install_console_logging(verbose)
    try:
        asyncio.run(serve(settings, addons, announce_listening, option_updates))
    except ProxyStartError as exc:
        raise click.ClickException(str(exc)) from None


def announce_listening(url: str) -> None:
    print(f"listening on {url}", flush=True)


def print_summary(fan_session: Any) -> None:
    print("summary:")
    for line in fan_session.guard.summary().lines():
        print(f"  {line}")
    sys.stdout.flush()


main.add_command(audit_command)

if __name__ == "__main__":
    main()
