"""Every server tmproxy starts listens on loopback unless told otherwise: checked on the real processes'
sockets (/proc/net/tcp*), not only on what they print."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from reliability.harness import closed_port_url, listening_addresses

from proxy.cassette import CassetteWriter
from proxy.exchange import Exchange, Request, Response
from proxy.processes import tmproxy

CLEAN_ENV = {k: "" for k in os.environ if k.startswith("TMPROXY_")}


def commands(tmp_path: Path) -> dict[str, list[str]]:
    cassette = tmp_path / "one.yaml"
    with CassetteWriter(cassette, overwrite=True) as writer:
        writer.append(Exchange(Request("GET", "https://app.ticketmaster.com/a"), Response(200)))
    return {
        "run": ["run", "--upstream", closed_port_url()],
        "record": ["record", str(tmp_path / "new.yaml"), "--upstream", closed_port_url()],
        "replay": ["replay", str(cassette)],
        "sandbox": ["sandbox"],
    }


MITMPROXY_11 = version("mitmproxy").startswith("11.")


def assert_only_loopback(pid: int, url: str) -> None:
    announced = urlsplit(url)
    assert announced.hostname == "localhost" or ipaddress.ip_address(announced.hostname or "").is_loopback, (
        url
    )
    sockets = listening_addresses(pid)
    assert sockets, "the process listens nowhere?"
    assert announced.port in {port for _, port in sockets}, (url, sockets)
    exposed = [(host, port) for host, port in sockets if not ipaddress.ip_address(host).is_loopback]
    assert exposed == [], f"listening beyond loopback: {exposed}"


@pytest.mark.parametrize("listen", [":0", "localhost:0", "[::1]:0"])
@pytest.mark.parametrize("command", ["run", "record", "replay", "sandbox"])
def test_servers_listen_on_loopback_only(tmp_path: Path, command: str, listen: str):
    if listen.startswith("[::1]") and not Path("/proc/net/tcp6").exists():
        pytest.skip("no IPv6 on this machine")
    if listen.startswith("[::1]") and command == "replay" and MITMPROXY_11:
        pytest.skip(
            "mitmproxy 11's HTTP/3 listener (reverse mode to https) cannot take an IPv6 address; 12 can"
        )
    args = commands(tmp_path)[command]
    with tmproxy(*args, "--listen", listen, env=CLEAN_ENV) as server:
        assert_only_loopback(server.proc.pid, server.url)
        assert server.stop() == 0
    assert "warning" not in server.stderr_text.lower()


@pytest.mark.parametrize("command", ["run", "record", "replay", "sandbox"])
def test_the_default_listen_address_is_loopback(tmp_path: Path, command: str):
    shown = subprocess.run(
        [sys.executable, "-m", "proxy.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **CLEAN_ENV},
    ).stdout
    options = shown.split("Options:", 1)[1]
    listen_help = " ".join(options.split("--listen", 1)[1].split("\n  -", 1)[0].split())
    assert "default: 127.0.0.1:" in listen_help, listen_help


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "0", "192.0.2.1:0"])
def test_a_non_loopback_listen_address_is_refused_without_allow_remote(tmp_path: Path, listen: str):
    result = subprocess.run(
        [sys.executable, "-m", "proxy.cli", *commands(tmp_path)["run"], "--listen", listen],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **CLEAN_ENV},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--allow-remote" in result.stderr and "listening on" not in result.stdout
