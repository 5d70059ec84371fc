"""The judge process (addons/judge_process.py) behind real `tmproxy` proxies, with the sandbox and `requests`.

Under `validate` and `off`, `tmproxy run` and `replay` judge in a forked process while mitmproxy
forwards: the same findings as judging in the proxy, and no judge outliving its proxy however the proxy
ends. A proxy that records judges in process.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from proxy.processes import READY_TIMEOUT, recording, tmproxy
from proxy.sandbox.client import SandboxClient

IN_PROXY = {"TMPROXY_JUDGE_PROCESS": "false"}
FINDING_LINE = re.compile(r"^\[(?P<rule>[a-z0-9-]+)\]", re.MULTILINE)


def judges_of(pid: int) -> list[int]:
    """The processes a proxy started: its judge, if it has one."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for_exit(pid: int, timeout: float = 15.0) -> bool:
    """Whether the process (not our child) ended within `timeout`: a pidfd turns readable when it does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


def partner_app(base_url: str) -> None:
    """A fan's Top Picks, then a reserve that forgets the session, then one that sends it."""
    client = SandboxClient(base_url)
    client.http.headers["Authorization"] = "Bearer fan-token-judge-process-0001"
    picks = client.top_picks(selection="resale").json()
    offer = next(o for o in picks["_embedded"]["offer"] if o.get("inventoryType") == "resale")
    client.reserve([{"id": offer["offerId"], "quantity": 1}])
    client.reserve(
        [{"id": offer["offerId"], "quantity": 1}], sid=picks["fanSession"]["resaleSid"]["sessionId"]
    )


def summary_of(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.split("summary:", 1)[1].strip().splitlines()]


FOUND = "findings: 3 (abandoned-cart=2, sid-missing=1)"  # the two carts are never bought


def test_the_judge_process_finds_what_the_proxy_finds_judging_itself(sandbox):
    seen = {}
    for name, env in (("judge process", None), ("in the proxy", IN_PROXY)):
        sandbox.reset()
        with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0", env=env) as proxy:
            judges = judges_of(proxy.proc.pid)
            partner_app(proxy.url)
            assert proxy.stop() == 0
        seen[name] = (len(judges), summary_of(proxy.stdout), Counter(FINDING_LINE.findall(proxy.stderr_text)))
    (judges, summary, findings), (in_proxy_judges, in_proxy_summary, in_proxy_findings) = seen.values()
    assert (judges, in_proxy_judges) == (1, 0)
    assert FOUND in summary
    assert summary == in_proxy_summary
    assert findings == in_proxy_findings == Counter({"sid-missing": 1, "abandoned-cart": 2})


def test_a_recording_proxy_judges_in_process_and_its_recordings_carry_the_findings(sandbox, tmp_path: Path):
    cassette = tmp_path / "judged.yaml"
    with recording(cassette, sandbox.url) as proxy:
        assert judges_of(proxy.proc.pid) == []
        partner_app(proxy.url)
        assert proxy.stop() == 0
    assert FOUND in summary_of(proxy.stdout)
    assert "sid-missing" in cassette.read_text()


def test_a_proxy_killed_with_sigkill_leaves_no_judge_behind(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        (judge,) = judges_of(proxy.proc.pid)
        partner_app(proxy.url)
        assert proxy.stop(signal.SIGKILL) == -signal.SIGKILL
        assert wait_for_exit(judge), "the judge outlived its proxy"


def test_a_judge_that_dies_stops_its_proxy_with_an_error(sandbox):
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        (judge,) = judges_of(proxy.proc.pid)
        os.kill(judge, signal.SIGKILL)
        assert proxy.proc.wait(timeout=30) == 1
    assert "judge process ended unexpectedly" in proxy.stderr_text
    assert "Traceback" not in proxy.stderr_text
    assert "findings: unknown" in proxy.stdout


def test_ctrl_c_to_the_terminals_process_group_stops_proxy_and_judge_with_the_summary(sandbox):
    """A Ctrl-C reaches every process of the group: the judge leaves the stopping to the proxy, which
    still gets the judge's findings for its summary."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        first = proc.stdout.readline() if ready else ""
        assert first.startswith("listening on "), first
        (judge,) = judges_of(proc.pid)
        partner_app(first.split("listening on ", 1)[1].strip())
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr
    assert FOUND in summary_of(stdout)
    assert wait_for_exit(judge)
    assert "Traceback" not in stderr


def test_a_judge_that_falls_behind_never_stalls_forwarding(sandbox):
    """With the judge stopped, the calls it cannot take yet wait in the proxy, which keeps answering;
    once it runs again it judges every one of them."""
    with tmproxy("run", "--upstream", sandbox.url, "--listen", "127.0.0.1:0") as proxy:
        (judge,) = judges_of(proxy.proc.pid)
        os.kill(judge, signal.SIGSTOP)
        try:
            client = SandboxClient(proxy.url)
            padding = {"X-Partner-Trace": "t" * 4000}  # 600 calls: more than the pipe's megabyte
            answered = [client.request("GET", "/discovery/v2/events", headers=padding) for _ in range(600)]
        finally:
            os.kill(judge, signal.SIGCONT)
        assert all(a.status_code < 500 for a in answered)
        assert proxy.stop() == 0
    assert "requests: 600" in summary_of(proxy.stdout)
