"""pytest plugin: serve a tmproxy cassette to the code under test, or re-record it.

    @pytest.mark.tm_cassette("compliant.yaml", sid="validate", fail_on="error")
    def test_checkout(tm_proxy):
        requests.get(f"{tm_proxy}/top-picks/v1/events/2000527EE48A9334", params={"apikey": "x"})

`tm_proxy` is the base URL of a tmproxy serving the marked cassette (from the `tm_cassette_dir` ini
setting, default `cassettes/`). One proxy serves the whole session (one per pytest-xdist worker, each
worker being its own session): each test switches it to its cassette through a token-guarded control
port, and gets that test's findings and replay usage back when it ends. `fail_on` fails a test whose
traffic brought a finding at that severity or above, or an enforce block; a failing test shows the
replay summary in a `tmproxy` section. `--tm-record-mode once|new_episodes|all` records to
`--tm-upstream` instead. The cassettes stay plain vcrpy cassettes.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cassette.format import finding_from_dict
from .cassette.paths import CassettePathError, resolve_cassette
from .fan_session import SidPolicy
from .findings import Finding, Severity
from .recording import RecordMode
from .session_client import BackgroundSessionProxy, SessionProxy, SessionProxyError
from .ticketmaster import DEFAULT_UPSTREAM

MARKER = "tm_cassette"
MARKER_OPTIONS = {"sid", "fail_on"}
UNUSED_LISTED = 20  # in a failing test's report; a big cassette may leave thousands unused


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tmproxy")
    group.addoption(
        "--tm-record-mode",
        choices=[m.value for m in RecordMode],
        default=RecordMode.NONE.value,
        help="none (default): replay cassettes offline; once, new_episodes, all: record through tmproxy.",
    )
    group.addoption(
        "--tm-upstream",
        default=DEFAULT_UPSTREAM,
        help="Where tmproxy records from (Ticketmaster, or a sandbox URL).",
    )
    parser.addini(
        "tm_cassette_dir", "Folder of the cassettes named by @pytest.mark.tm_cassette.", default="cassettes"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name, sid='validate', fail_on=None): the cassette the tm_proxy fixture replays (or "
        "records), the X-TM-SESSION-SID policy it applies, and the finding severity (info, warning, "
        "error) that fails the test.",
    )


@dataclass
class CassetteUse:
    """One test's use of the session proxy, and what it brought."""

    cassette: Path
    sid: SidPolicy
    fail_on: Severity | None
    ended: dict[str, Any] | None = None

    def findings(self) -> list[Finding]:
        """The test's findings, as the proxy sent them (`Finding.to_dict`)."""
        return [finding_from_dict(f, "") for f in (self.ended or {}).get("findings", [])]

    def failures(self) -> list[str]:
        """What fails the test under its marker's `fail_on` (nothing without it)."""
        if self.fail_on is None or self.ended is None:
            return []
        found = [f.summary_line() for f in self.findings() if f.severity >= self.fail_on]
        return [*found, *(f"enforce: {block}" for block in self.ended["blocks"])]

    def summary(self) -> str:
        """The replay summary, findings, blocks and log lines of the test, for its report."""
        ended = self.ended or {}
        lines = [f"cassette {self.cassette} (sid {self.sid})"]
        usage = ended.get("usage")
        if usage is not None:
            lines.append(
                f"replay: {usage['served']} served ({usage['repeats']} repeats) of {usage['recorded']} "
                f"recorded, {usage['misses']} missed, {len(usage['unused'])} unused"
            )
            unused = usage["unused"]
            lines += [f"  unused: {u['method']} {u['url']}" for u in unused[:UNUSED_LISTED]]
            if len(unused) > UNUSED_LISTED:
                lines.append(f"  ... and {len(unused) - UNUSED_LISTED} more unused")
        if ended.get("recorded"):
            lines.append(f"recorded: {ended['recorded']} interactions")
        findings = self.findings()
        lines.append(f"findings: {len(findings)}")
        lines += [f"  {f.summary_line()}" for f in findings]
        lines += [f"enforce: {block}" for block in ended.get("blocks", [])]
        lines += [f"log: {line}" for line in ended.get("log", [])]
        return "\n".join(lines)


USE_KEY = pytest.StashKey[CassetteUse]()


PROXY_KEY = pytest.StashKey[BackgroundSessionProxy]()


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Start the session proxy as soon as a test module that uses it is about to be imported: its
    half-second start-up then runs beside the rest of the collection instead of before the first test."""
    stash = collector.config.stash
    if PROXY_KEY not in stash and isinstance(collector, pytest.Module) and mentions_tm_proxy(collector.path):
        stash[PROXY_KEY] = BackgroundSessionProxy()


def mentions_tm_proxy(path: Path) -> bool:
    try:
        return b"tm_proxy" in path.read_bytes()
    except OSError:
        return False


def pytest_sessionfinish(session: pytest.Session) -> None:
    background = session.config.stash.get(PROXY_KEY, None)
    if background is not None:
        background.stop()


@pytest.fixture(scope="session")
def tm_session_proxy(pytestconfig: pytest.Config) -> SessionProxy:
    """The session's tmproxy (under pytest-xdist, this worker's, each worker being a session of its
    own): started once, stopped at the end of the session. `.url` and `.pid` say where it is."""
    stash = pytestconfig.stash
    if PROXY_KEY not in stash:  # no module mentioned tm_proxy: it came through a conftest fixture
        stash[PROXY_KEY] = BackgroundSessionProxy()
    try:
        return stash[PROXY_KEY].wait()
    except RuntimeError as exc:
        pytest.fail(f"tmproxy: the session proxy did not start: {exc}", pytrace=False)


@pytest.fixture
def tm_proxy(request: pytest.FixtureRequest, tm_session_proxy: SessionProxy) -> Iterator[str]:
    """The base URL of the session's tmproxy, switched to the cassette named by the test's marker."""
    use = cassette_use(request)
    mode = request.config.getoption("--tm-record-mode")
    upstream = None if mode == RecordMode.NONE.value else request.config.getoption("--tm-upstream")
    try:
        tm_session_proxy.switch(str(use.cassette), mode, upstream, use.sid.value)
    except SessionProxyError as exc:
        pytest.fail(f"tmproxy: {exc}", pytrace=False)
    request.node.stash[USE_KEY] = use
    yield tm_session_proxy.url
    end_use(request.node, tm_session_proxy)  # a test that failed before its call ends here


def cassette_use(request: pytest.FixtureRequest) -> CassetteUse:
    """The test's marker, checked: a bad one fails the test with a message naming the problem."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None or len(marker.args) != 1 or not isinstance(marker.args[0], str):
        pytest.fail(f"tm_proxy needs @pytest.mark.{MARKER}('name.yaml') on the test", pytrace=False)
    unknown = set(marker.kwargs) - MARKER_OPTIONS
    if unknown:
        pytest.fail(
            f"@pytest.mark.{MARKER}: unknown options {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(MARKER_OPTIONS))})",
            pytrace=False,
        )
    folder = Path(request.config.rootpath, request.config.getini("tm_cassette_dir"))
    try:
        cassette = resolve_cassette(marker.args[0], folder)
        sid = SidPolicy(marker.kwargs.get("sid", SidPolicy.VALIDATE.value))
        fail_on = marker.kwargs.get("fail_on")
        severity = None if fail_on is None else Severity.parse(str(fail_on))
    except CassettePathError as exc:
        pytest.fail(str(exc), pytrace=False)
    except ValueError as exc:
        choices = ", ".join(p.value for p in SidPolicy)
        pytest.fail(f"@pytest.mark.{MARKER}: {exc} (sid: one of {choices})", pytrace=False)
    return CassetteUse(cassette, sid, severity)


def end_use(item: pytest.Item, proxy: SessionProxy) -> CassetteUse | None:
    """Fetch the test's results from the proxy once, and put its summary in the test's report."""
    use = item.stash.get(USE_KEY, None)
    if use is None or use.ended is not None:
        return use
    use.ended = proxy.end()
    item.add_report_section("call", "tmproxy", use.summary())
    return use


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """End the test's use of the proxy as its call ends, so that what the marker fails on fails the
    test itself (not its teardown)."""
    try:
        result = yield
    finally:
        proxy = item.funcargs.get("tm_session_proxy") if isinstance(item, pytest.Function) else None
        use = end_use(item, proxy) if isinstance(proxy, SessionProxy) else None
    failures = use.failures() if use is not None else []
    if use is not None and failures:
        pytest.fail(
            f"tmproxy: the test's traffic brought what fail_on={use.fail_on} fails on:\n  "
            + "\n  ".join(failures),
            pytrace=False,
        )
    return result
