"""pytest plugin: serve a tmproxy cassette to the code under test, or re-record it.

    @pytest.mark.tm_cassette("compliant.yaml")
    def test_checkout(tm_proxy):
        requests.get(f"{tm_proxy}/top-picks/v1/events/2000527EE48A9334", params={"apikey": "x"})

`tm_proxy` is the base URL of a `tmproxy replay` of the marked cassette (from the `tm_cassette_dir`
ini setting, default `cassettes/`). `--tm-record-mode once|new_episodes|all` records through
`tmproxy record` to `--tm-upstream` instead. The cassettes stay plain vcrpy cassettes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cassette.paths import CassettePathError, resolve_cassette
from .processes import tmproxy
from .recording import RecordMode
from .ticketmaster import DEFAULT_UPSTREAM

MARKER = "tm_cassette"


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
        f"{MARKER}(name, sid='validate'): the cassette the tm_proxy fixture replays (or records), "
        "and the X-TM-SESSION-SID policy it applies.",
    )


@pytest.fixture
def tm_proxy(request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of a tmproxy replaying (or recording) the cassette named by the test's marker."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        pytest.fail(f"tm_proxy needs @pytest.mark.{MARKER}('name.yaml') on the test", pytrace=False)
    folder = Path(request.config.rootpath, request.config.getini("tm_cassette_dir"))
    try:
        cassette = resolve_cassette(str(marker.args[0]), folder)
    except CassettePathError as exc:
        pytest.fail(str(exc), pytrace=False)
    mode = request.config.getoption("--tm-record-mode")
    args = ["--listen", "127.0.0.1:0", "--sid", marker.kwargs.get("sid", "validate")]
    if mode == RecordMode.NONE.value:
        if not cassette.is_file():
            pytest.fail(f"no cassette {cassette}: record it with --tm-record-mode once", pytrace=False)
        command = ["replay", str(cassette), *args]
    else:
        upstream = request.config.getoption("--tm-upstream")
        command = ["record", str(cassette), "--record-mode", mode, "--upstream", upstream, *args]
    with tmproxy(*command) as proxy:
        yield proxy.url
