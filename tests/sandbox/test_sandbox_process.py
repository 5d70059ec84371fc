"""`serve_forever` as a real process: readiness line, a request, clean exit on SIGTERM and SIGINT."""

import signal
import subprocess
import sys

import pytest

from proxy.sandbox.client import SandboxClient

SERVE = (
    "from proxy.sandbox.server import serve_forever; "
    "serve_forever('127.0.0.1:0', seed=1, session_ttl=3600, quota=None)"
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_announces_its_url_and_stops_cleanly(stop_signal):
    command = [sys.executable, "-c", SERVE]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            url = line.removeprefix("listening on ")
            assert int(url.rsplit(":", 1)[1]) > 0
            assert SandboxClient(url).top_picks().status_code == 200

            process.send_signal(stop_signal)
            stdout, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert stdout == ""
    assert "Traceback" not in stderr
