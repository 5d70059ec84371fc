"""The `tmproxy` command itself: help, version, and the sandbox as a real process."""

from __future__ import annotations

import signal

import pytest
import requests
from click.testing import CliRunner

from proxy import __version__
from proxy.cli import main
from proxy.processes import tmproxy


def test_help_lists_the_commands_and_each_has_an_example():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = list(main.commands)  # type: ignore[attr-defined]
    assert {"run", "sandbox"} <= set(commands)
    for name in commands:
        sub = CliRunner().invoke(main, [name, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output, name


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_bad_listen_address_is_a_usage_error():
    result = CliRunner().invoke(main, ["sandbox", "--listen", "127.0.0.1:99999"])
    assert result.exit_code == 2 and "invalid port" in result.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sandbox_command_serves_and_stops_cleanly(sig):
    with tmproxy("sandbox", "--listen", "127.0.0.1:0", "--seed", "5") as sandbox:
        picks = requests.get(
            f"{sandbox.url}/top-picks/v1/events/2000527EE48A9334", params={"apikey": "k"}, timeout=30
        )
        assert picks.status_code == 200 and "resaleSid" in picks.json()["fanSession"]
        assert sandbox.stop(sig) == 0
    assert sandbox.stdout_lines[0].startswith("listening on http://127.0.0.1:")


@pytest.mark.parametrize("command", [["sandbox"], ["run"], ["replay", "cassettes/compliant.yaml"]])
def test_non_loopback_listen_needs_allow_remote(command):
    refused = CliRunner().invoke(main, [*command, "--listen", "0.0.0.0:0"])
    assert refused.exit_code == 2 and "--allow-remote" in refused.output


def test_allow_remote_listens_with_a_warning():
    with tmproxy("sandbox", "--listen", "0.0.0.0:0", "--allow-remote") as sandbox:
        assert sandbox.stop() == 0
    assert "reachable beyond this machine" in sandbox.stderr_text
