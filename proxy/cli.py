"""The `tmproxy` command line."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cassette import CassetteError
from .cassette_cache import cached_index, has_interactions
from .config import CONFIG_ENV, CONFIG_FILE, Config, ConfigError, load_config
from .fan_key_option import check_fan_key
from .faults import FAULT_SYNTAX, FaultSpecError, parse_faults
from .netaddr import ListenAddressError, check_exposure, parse_listen, url_host, warn_if_exposed
from .recording import CassettePlan, OnMiss, RecordMode, UpstreamUnknownError, infer_upstream
from .ticketmaster import DEFAULT_UPSTREAM

DEFAULT_PROXY_LISTEN = "127.0.0.1:8080"
DEFAULT_SANDBOX_LISTEN = "127.0.0.1:9000"


def option(*decls: str, env: str, **attrs: Any) -> Callable[[Any], Any]:
    """A click option that can also come from the environment variable TMPROXY_<env>."""
    return click.option(*decls, envvar=f"TMPROXY_{env}", show_envvar=True, **attrs)


UPSTREAM_OPTION = option(
    "--upstream",
    env="UPSTREAM",
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help="Ticketmaster, or the sandbox's URL.",
)


def listen_address(default_port: int) -> Callable[[click.Context, click.Parameter, str], tuple[str, int]]:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
        try:
            return parse_listen(value, default_port)
        except ListenAddressError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


class LazyGroup(click.Group):
    """Commands whose modules are imported only when they are asked for: `audit` brings its report
    renderers, a megabyte a proxy process would carry for nothing."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


def fault_specs(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        parse_faults(value)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def proxy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every proxying command shares (run, record, replay)."""
    decorators = [
        option(
            "--listen",
            default=DEFAULT_PROXY_LISTEN,
            env="LISTEN",
            show_default=True,
            callback=listen_address(8080),
            help="HOST:PORT to listen on; port 0 picks a free port.",
        ),
        option(
            "--mode",
            env="MODE",
            type=click.Choice(["reverse", "regular"]),
            default="reverse",
            show_default=True,
            help="reverse: point the app's base URL at the proxy; regular: use it as the HTTP(S) proxy.",
        ),
        option(
            "--sid",
            env="SID",
            type=click.Choice(["inject", "validate", "enforce", "off"]),
            default="validate",
            show_default=True,
            help="X-TM-SESSION-SID policy on Partner API cart calls.",
        ),
        option(
            "--fan-key",
            env="FAN_KEY",
            default="",
            callback=lambda _ctx, _param, value: check_fan_key(value),
            help="Tell fans behind one partner address apart by header:NAME or cookie:NAME "
            "when a call carries no bearer token (default: by client address).",
        ),
        option(
            "--confdir",
            env="CONFDIR",
            default="~/.mitmproxy",
            show_default=True,
            help="mitmproxy's folder for its CA certificate (regular mode HTTPS).",
        ),
        option(
            "--ssl-insecure",
            is_flag=True,
            env="SSL_INSECURE",
            help="Do not verify the upstream's TLS certificate.",
        ),
        option(
            "--upstream-timeout",
            env="UPSTREAM_TIMEOUT",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            help="Seconds to wait for the upstream before answering 502 (0: wait forever).",
        ),
        option(
            "--allow-remote",
            is_flag=True,
            env="ALLOW_REMOTE",
            help="Allow listening on a non-loopback address (reachable from other machines).",
        ),
        option(
            "--rewrite-urls/--no-rewrite-urls",
            env="REWRITE_URLS",
            default=True,
            show_default=True,
            help="Reverse mode: the upstream's absolute URLs in responses (polling_url, Location) "
            "point at the proxy, so the app keeps coming through it.",
        ),
        option(
            "--judge-process/--judge-in-proxy",
            env="JUDGE_PROCESS",
            default=True,
            show_default=True,
            help="Under --sid validate or off, when nothing is recorded, judge in a second process "
            "while mitmproxy forwards (findings are logged a few milliseconds later); inject, enforce "
            "and recording always judge in the proxy.",
        ),
        option(
            "--fault",
            "faults",
            env="FAULT",
            multiple=True,
            callback=fault_specs,
            metavar="KIND[:RATE]",
            help=f"Inject a Ticketmaster fault (repeatable): {FAULT_SYNTAX}, KIND one of quota, polling, "
            "niterun, concurrent, session-expiry, slow; RATE the share of the calls it applies to "
            "(0 to 1, default 1). See docs/faults.md.",
        ),
        option(
            "--fault-seed",
            env="FAULT_SEED",
            type=click.IntRange(min=0),
            default=None,
            help="Seed for --fault: the same seed injects the same faults on the same traffic "
            "(default: a new seed, shown at start and in the summary).",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Also show mitmproxy's own log."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@click.group(
    cls=LazyGroup,
    lazy={"audit": "proxy.audit.cli:audit_command"},
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="tmproxy")
@click.option(
    "--config",
    "config_path",
    envvar=CONFIG_ENV,
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help=f"Settings file (default: ./{CONFIG_FILE} when present). Flags and TMPROXY_* variables win over it.",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """tmproxy: keep Ticketmaster resale prices stable from Top Picks to checkout.

    A local proxy that injects, validates or enforces X-TM-SESSION-SID on Partner API cart calls,
    records and replays cassettes, audits partner traffic, and ships a Ticketmaster sandbox.

    \b
    Example:
      tmproxy sandbox --listen 127.0.0.1:9000 &
      tmproxy run --upstream http://127.0.0.1:9000 --sid inject
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = config
    ctx.default_map = config.default_map()


@main.command()
@option(
    "--listen",
    default=DEFAULT_SANDBOX_LISTEN,
    env="SANDBOX_LISTEN",
    show_default=True,
    callback=listen_address(9000),
    help="HOST:PORT to listen on; port 0 picks a free port.",
)
@option(
    "--seed",
    env="SANDBOX_SEED",
    type=int,
    default=1,
    show_default=True,
    help="Seed for listings and price moves.",
)
@option(
    "--session-ttl",
    env="SANDBOX_SESSION_TTL",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Fan session lifetime in seconds.",
)
@option(
    "--quota",
    env="SANDBOX_QUOTA",
    type=click.IntRange(min=1),
    default=None,
    help="Calls per minute per API key.",
)
@option(
    "--allow-remote",
    is_flag=True,
    env="ALLOW_REMOTE",
    help="Allow listening on a non-loopback address (reachable from other machines).",
)
def sandbox(
    listen: tuple[str, int], seed: int, session_ttl: float, quota: int | None, allow_remote: bool
) -> None:
    """Run the local Ticketmaster sandbox (Top Picks, fan sessions, Partner API cart).

    \b
    Example:
      tmproxy sandbox --listen 127.0.0.1:0 --seed 7 --session-ttl 60
      curl 'http://127.0.0.1:9000/top-picks/v1/events/2000527EE48A9334?apikey=demo'
    """
    from .sandbox.server import serve_forever

    host, port = listen
    exposure_check(host, allow_remote)
    serve_forever(f"{url_host(host)}:{port}", seed=seed, session_ttl=session_ttl, quota=quota)


@main.command()
@UPSTREAM_OPTION
@proxy_options
def run(upstream: str, **proxy: Any) -> None:
    """Run the fan-session proxy in front of Ticketmaster (or the sandbox).

    \b
    Example:
      tmproxy run --upstream http://127.0.0.1:9000 --listen 127.0.0.1:8080 --sid enforce
      curl -X POST 'http://127.0.0.1:8080/partners/v1/events/2000527EE48A9334/cart?apikey=KEY' ...
    """
    serve_proxy(upstream, **proxy)


@main.command()
@click.argument("cassette", type=click.Path(dir_okay=False, path_type=Path))
@UPSTREAM_OPTION
@option(
    "--record-mode",
    env="RECORD_MODE",
    type=click.Choice([m.value for m in RecordMode]),
    default=RecordMode.ONCE.value,
    show_default=True,
    help="vcrpy's record modes: once, new_episodes, all, none.",
)
@option(
    "--record-as",
    env="RECORD_AS",
    default="",
    help="Record URLs at this origin instead of the upstream's (e.g. https://app.ticketmaster.com).",
)
@proxy_options
def record(cassette: Path, upstream: str, record_mode: str, record_as: str, **proxy: Any) -> None:
    """Record traffic through the proxy to a vcrpy-compatible cassette, secrets redacted.

    Each interaction is appended as it completes, so a crash loses at most those in flight.

    \b
    Example:
      tmproxy record cassettes/checkout.yaml --upstream http://127.0.0.1:9000 --record-as https://app.ticketmaster.com
      tmproxy record cassettes/checkout.yaml --record-mode new_episodes
    """
    plan = CassettePlan.for_record_mode(RecordMode(record_mode), cassette_has_interactions(cassette))
    serve_proxy(upstream, cassette=cassette, plan=plan, record_as=record_as, **proxy)


@main.command()
@click.argument("cassette", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@option(
    "--upstream",
    default=None,
    env="UPSTREAM",
    help="Where misses go and, in reverse mode, the origin served (default: the cassette's one host).",
)
@option(
    "--on-miss",
    env="ON_MISS",
    type=click.Choice([m.value for m in OnMiss]),
    default=OnMiss.ERROR.value,
    show_default=True,
    help="error: answer 404 naming the closest recordings; forward: pass upstream and record.",
)
@option(
    "--latency",
    env="LATENCY",
    type=click.Choice(["none", "recorded"]),
    default="none",
    show_default=True,
    help="Serve at once, or after each interaction's recorded duration.",
)
@option(
    "--repeat",
    env="REPEAT",
    type=click.Choice(["repeat_last", "exhaust"]),
    default="repeat_last",
    show_default=True,
    help="After the last recording of a repeated request: serve it again, or miss.",
)
@proxy_options
def replay(
    cassette: Path, upstream: str | None, on_miss: str, latency: str, repeat: str, **proxy: Any
) -> None:
    """Serve a cassette offline, with fan sessions shifted to be valid now.

    \b
    Example:
      tmproxy replay cassettes/compliant.yaml --listen 127.0.0.1:8080
      curl 'http://127.0.0.1:8080/top-picks/v1/events/2000527EE48A9334?apikey=REDACTED'
    """
    if upstream is None:
        upstream = DEFAULT_UPSTREAM if proxy["mode"] == "regular" else upstream_of_cassette(cassette)
    plan = CassettePlan.for_replay(OnMiss(on_miss))
    options = {"tm_latency": latency, "tm_repeat": repeat}
    serve_proxy(upstream, cassette=cassette, plan=plan, extra_options=options, **proxy)


def exposure_check(host: str, allow_remote: bool) -> None:
    try:
        check_exposure(host, allow_remote)
    except ListenAddressError as exc:
        raise click.UsageError(str(exc)) from None


def cassette_has_interactions(path: Path) -> bool:
    try:
        return has_interactions(path)
    except CassetteError as exc:
        raise click.ClickException(f"{exc} (the file was left as it is)") from None


def upstream_of_cassette(path: Path) -> str:
    try:
        return infer_upstream(cached_index(path).recorded_urls())  # read once: the replayer reuses it
    except (CassetteError, UpstreamUnknownError) as exc:
        raise click.ClickException(str(exc)) from None


def serve_proxy(
    upstream: str,
    *,
    listen: tuple[str, int],
    mode: str,
    sid: str,
    fan_key: str,
    confdir: str,
    ssl_insecure: bool,
    upstream_timeout: float,
    allow_remote: bool,
    rewrite_urls: bool,
    judge_process: bool,
    verbose: bool,
    faults: tuple[str, ...] = (),
    fault_seed: int | None = None,
    cassette: Path | None = None,
    plan: CassettePlan | None = None,
    record_as: str = "",
    extra_options: dict[str, Any] | None = None,
) -> None:
    """Run the proxy with tmproxy's addons until SIGINT/SIGTERM, then print the summary."""
    from .lean_mitmproxy import skip_default_addons

    skip_default_addons()  # before anything imports mitmproxy.addons
    from addons.chain import tmproxy_addons

    from .mitm_master import ProxySettings, ProxyStartError, install_console_logging, serve

    settings = ProxySettings(
        listen_host=listen[0],
        listen_port=listen[1],
        mode=mode,
        upstream=upstream,
        confdir=confdir,
        ssl_insecure=ssl_insecure,
    )
    config = click.get_current_context().find_object(Config) or Config()
    options: dict[str, Any] = {"tm_sid": sid, "tm_fan_key": fan_key, "tm_upstream_timeout": upstream_timeout}
    if cassette is not None and plan is not None:
        options.update(config.redaction_options(), **plan.options(str(cassette), record_as))
    options.update(extra_options or {})
    if faults:
        options.update(tm_faults=list(faults), tm_fault_seed=fault_seed)
    exposure_check(settings.listen_host, allow_remote)
    warn_if_exposed(settings.listen_host, "the proxy")
    install_console_logging(verbose)
    built = tmproxy_addons(
        faults,
        rewrite_urls=rewrite_urls and mode == "reverse",
        cassette=cassette is not None and plan is not None,
        judge=start_judge(sid, recording=plan is not None and plan.record) if judge_process else None,
    )
    try:
        asyncio.run(serve(settings, built.chain, announce_listening, options))
    except ProxyStartError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if built.judge_link is not None:
            built.judge_link.stop()
    print_summary(built, cassette)
    if built.judge_link is not None and built.judge_link.failure is not None:
        raise click.ClickException(built.judge_link.failure)


def start_judge(sid: str, recording: bool) -> Any:
    """The process that judges while mitmproxy's loop forwards (addons/judge_process.py), forked here,
    before mitmproxy starts (one thread, no loop); None under the policies that change calls, and when
    recording (a recording carries its call's findings and is on disk before the answer): those are
    judged in the proxy."""
    from addons.judge_process import JudgeProcess

    from .judging import HANDED_OFF_POLICIES

    if sid not in HANDED_OFF_POLICIES or recording or not hasattr(os, "fork"):  # no fork: Windows
        return None
    return JudgeProcess()


def announce_listening(url: str) -> None:
    print(f"listening on {url}", flush=True)


def print_summary(built: Any, cassette: Path | None) -> None:
    """The exit summary of `built`, a TmproxyAddons (addons/chain.py: not imported at start-up)."""
    traffic = built.fan_session.guard.summary() if built.judge_link is None else built.judge_link.summary
    lines = (
        traffic.lines() if traffic is not None else ["findings: unknown (the judge process gave no summary)"]
    )
    if built.fault_answers.injector is not None:
        lines.append(built.fault_answers.injector.summary_line())
    if built.replayer.index is not None:
        lines.append(built.replayer.index.usage().summary_line())
    recorder = built.recorder
    if cassette is not None and (recorder.recorded or recorder.refused):
        lines.append(f"recorded: {recorder.recorded} interactions to {cassette} ({recorder.refused} refused)")
    print("summary:")
    for line in lines:
        print(f"  {line}")
    sys.stdout.flush()


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tmproxy-demo"),
    show_default=True,
    help="Folder for the demo's cassettes and HTML report.",
)
def demo(out: Path) -> None:
    """Run the whole product offline: sandbox, proxy, recordings, replay and audit.

    \b
    Example:
      tmproxy demo --out tmproxy-demo
      tmproxy demo --out cassettes     # regenerates the shipped sample cassettes
    """
    from .demo import run_demo

    run_demo(out)


if __name__ == "__main__":
    main()
