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


def mitmdump(scripts: list[str], settings: list[str], upstream: str) -> list[str]:
    """`mitmdump -s addons/SCRIPT... --set SETTING... --mode reverse:UPSTREAM` on a free loopback port."""
    command = [str(MITMDUMP)]
    for script in scripts:
        command += ["-s", str(ADDONS / script)]
    for setting in settings:
        command += ["--set", setting]
    return [*command, "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1", "--listen-port", "0"]


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_with_the_url_rewrite_fan_session_and_recorder_scripts(sandbox, tmp_path: Path):
    cassette = tmp_path / "mitmdump.yaml"
    command = mitmdump(
        ["url_rewrite.py", "fan_session.py", "recorder.py"],
        ["tm_sid=inject", f"tm_record={cassette}"],
        sandbox.url,
    )
    with running(command, MITMDUMP_READY) as proxy:
        client = SandboxClient(f"http://{proxy.url}")
        offer = resale_offer(client.top_picks(selection="resale"))
        assert client.reserve([{"id": offer["ticketId"], "quantity": 1}]).status_code == 200
        accepted = client.reserve([{"id": offer["ticketId"], "quantity": 1}], poll=True)
        polling_url = accepted.json()["polling_url"]
        assert polling_url.startswith(f"http://{proxy.url}/partners/v1/polling/")
        assert client.follow(polling_url).status_code == 200
    reserve = next(r for r in sandbox.requests() if r["method"] == "POST")
    assert reserve["headers"].get("X-TM-SESSION-SID")
    recorded = load_cassette(cassette).exchanges
    assert len(recorded) == 4 and recorded[-1].request.url.startswith(f"{sandbox.url}/partners/v1/polling/")


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_replays_a_shipped_cassette_offline():
    cassette = Path(__file__).resolve().parents[2] / "cassettes" / "compliant.yaml"
    settings = [f"tm_replay={cassette}", "connection_strategy=lazy"]
    command = mitmdump(["fan_session.py", "replayer.py"], settings, "https://app.ticketmaster.com")
    with running(command, MITMDUMP_READY) as proxy:
        client = SandboxClient(f"http://{proxy.url}")
        assert client.top_picks(selection="resale").status_code == 200
        assert client.top_picks(quantity=9).status_code == 404


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed beside this Python")
def test_mitmdump_with_the_fault_scripts_around_the_fan_session_one(sandbox):
    scripts = ["fault_rewrites.py", "fan_session.py", "faults.py"]
    command = mitmdump(scripts, ["tm_faults=polling:1,wait=0"], sandbox.url)
    with running(command, MITMDUMP_READY) as proxy:
        client = SandboxClient(f"http://{proxy.url}")
        offer = resale_offer(client.top_picks(selection="resale"))
        accepted = client.reserve([{"id": offer["ticketId"], "quantity": 1}])
        assert accepted.status_code == 202
        assert accepted.json()["polling_url"].startswith(f"http://{proxy.url}/partners/v1/polling/cart/POST/")
        reserved = client.follow(accepted.json()["polling_url"])
        assert reserved.status_code == 200 and reserved.json()["cart_id"] == accepted.json()["cart_id"]
    assert "[fault:polling]" in proxy.stderr_text + proxy.stdout
