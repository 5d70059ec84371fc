"""The addons loaded the mitmproxy way: `mitmdump -s addons/<file>.py --set ...`."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from proxy.cassette import load_cassette
from proxy.partner_flows import resale_offer
from proxy.processes import running
from proxy.sandbox.client import SandboxClient

ADDONS = Path(__file__).resolve().parents[2] / "addons"
MITMDUMP = shutil.which("mitmdump", path=str(Path(sys.executable).parent))
MITMDUMP_READY = re.compile(r"listening at (?P<url>[\d.]+:\d+)")


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_with_the_fan_session_and_recorder_scripts(sandbox, tmp_path: Path):
    cassette = tmp_path / "mitmdump.yaml"
    command = [
        str(MITMDUMP),
        "-s", str(ADDONS / "fan_session.py"),
        "-s", str(ADDONS / "recorder.py"),
        "--set", "tm_sid=inject",
        "--set", f"tm_record={cassette}",
        "--mode", f"reverse:{sandbox.url}",
        "--listen-host", "127.0.0.1",
        "--listen-port", "0",
    ]  # fmt: skip
    with running(command, MITMDUMP_READY) as mitmdump:
        client = SandboxClient(f"http://{mitmdump.url}")
        offer = resale_offer(client.top_picks(selection="resale"))
        assert client.reserve([{"id": offer["ticketId"], "quantity": 1}]).status_code == 200
    reserve = next(r for r in sandbox.requests() if r["method"] == "POST")
    assert reserve["headers"].get("X-TM-SESSION-SID")
    assert len(load_cassette(cassette).exchanges) == 2


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_replays_a_shipped_cassette_offline():
    cassette = Path(__file__).resolve().parents[2] / "cassettes" / "compliant.yaml"
    command = [
        str(MITMDUMP),
        "-s", str(ADDONS / "fan_session.py"),
        "-s", str(ADDONS / "replayer.py"),
        "--set", f"tm_replay={cassette}",
        "--set", "connection_strategy=lazy",
        "--mode", "reverse:https://app.ticketmaster.com",
        "--listen-host", "127.0.0.1",
        "--listen-port", "0",
    ]  # fmt: skip
    with running(command, MITMDUMP_READY) as mitmdump:
        client = SandboxClient(f"http://{mitmdump.url}")
        assert client.top_picks(selection="resale").status_code == 200
        assert client.top_picks(quantity=9).status_code == 404


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_with_the_fault_scripts_around_the_fan_session_one(sandbox):
    command = [
        str(MITMDUMP),
        "-s", str(ADDONS / "fault_rewrites.py"),
        "-s", str(ADDONS / "fan_session.py"),
        "-s", str(ADDONS / "faults.py"),
        "--set", "tm_faults=polling:1,wait=0",
        "--mode", f"reverse:{sandbox.url}",
        "--listen-host", "127.0.0.1",
        "--listen-port", "0",
    ]  # fmt: skip
    with running(command, MITMDUMP_READY) as mitmdump:
        client = SandboxClient(f"http://{mitmdump.url}")
        offer = resale_offer(client.top_picks(selection="resale"))
        accepted = client.reserve([{"id": offer["ticketId"], "quantity": 1}])
        assert accepted.status_code == 202
        assert accepted.json()["polling_url"].startswith(
            f"http://{mitmdump.url}/partners/v1/polling/cart/POST/"
        )
        reserved = client.follow(accepted.json()["polling_url"])
        assert reserved.status_code == 200 and reserved.json()["cart_id"] == accepted.json()["cart_id"]
    assert "[fault:polling]" in mitmdump.stderr_text + mitmdump.stdout
