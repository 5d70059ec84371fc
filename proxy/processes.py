"""Running tmproxy commands as child processes, synchronised on their `listening on` line.

The demo, the pytest plugin and the end-to-end tests start proxies and sandboxes this way: a real
process on a real port, ready when it says so, stopped with SIGTERM so it prints its summary.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO

READY_TIMEOUT = 30.0
STDIN_CLOSE_GRACE = 10.0


@dataclass
class CliProcess:
    proc: subprocess.Popen[str]
    url: str = ""
    ready: dict[str, str] = field(default_factory=dict)  # the readiness line's named groups
    stdout_lines: list[str] = field(default_factory=list)
    stderr_text: str = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)


TMPROXY_READY = re.compile(r"^listening on (?P<url>\S+)")


def _pump(
    stream: IO[str], lines: list[str], ready: queue.Queue[dict[str, str]], pattern: re.Pattern[str]
) -> None:
    for line in stream:
        lines.append(line)
        match = pattern.search(line)
        if match:
            ready.put(match.groupdict())
    ready.put({})


@contextmanager
def tmproxy(*args: str, env: dict[str, str] | None = None) -> Iterator[CliProcess]:
    """Start `tmproxy ARGS...`, wait until it says where it listens, stop it with SIGTERM at the end."""
    with running([sys.executable, "-m", "proxy.cli", *args], TMPROXY_READY, env) as process:
        yield process


def run_tmproxy(
    *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `tmproxy ARGS...` to completion (an audit, a refused start), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def recording(
    cassette: object, upstream: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[CliProcess]:
    """`tmproxy record CASSETTE --upstream UPSTREAM ARGS...` on a free loopback port."""
    with tmproxy(
        "record", str(cassette), "--upstream", upstream, "--listen", "127.0.0.1:0", *args, env=env
    ) as proxy:
        yield proxy


@contextmanager
def running(
    command: list[str],
    ready_pattern: re.Pattern[str],
    env: dict[str, str] | None = None,
    stdin_line: str | None = None,
) -> Iterator[CliProcess]:
    """Start a server process; ready once a stdout line matches `ready_pattern` (its `url` group).

    `stdin_line` (a secret, say) is written to the process's stdin, which stays open until the end."""
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin_line is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    if proc.stdin is not None:
        proc.stdin.write(f"{stdin_line}\n")
        proc.stdin.flush()
    started = CliProcess(proc)
    ready: queue.Queue[dict[str, str]] = queue.Queue()
    stderr_chunks: list[str] = []
    out = threading.Thread(
        target=_pump, args=(proc.stdout, started.stdout_lines, ready, ready_pattern), daemon=True
    )
    err = threading.Thread(target=lambda: stderr_chunks.extend(proc.stderr or ()), daemon=True)
    out.start()
    err.start()
    try:
        with suppress(queue.Empty):
            started.ready = ready.get(timeout=READY_TIMEOUT)
        started.url = started.ready.get("url", "")
        if not started.url:
            proc.kill()
            proc.wait()
            err.join(5)
            raise RuntimeError(f"{' '.join(command)} did not start: {''.join(stderr_chunks)}")
        yield started
    finally:
        if proc.stdin is not None:  # a process told something on stdin may stop when it closes
            with suppress(OSError):
                proc.stdin.close()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STDIN_CLOSE_GRACE)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.join(5)
        err.join(5)
        started.stderr_text = "".join(stderr_chunks)
