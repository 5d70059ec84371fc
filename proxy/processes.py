"""Running tmproxy commands as child processes, synchronised on their `listening on` line.

The demo, the pytest plugin and the end-to-end tests start proxies and sandboxes this way: a real
process on a real port, ready when it says so, stopped with SIGTERM so it prints its summary.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

READY_TIMEOUT = 30.0


@dataclass
class CliProcess:
    proc: subprocess.Popen[str]
    url: str = ""
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


def _pump(stream: IO[str], lines: list[str], ready: queue.Queue[str]) -> None:
    for line in stream:
        lines.append(line)
        if line.startswith("listening on "):
            ready.put(line.split("listening on ", 1)[1].strip())
    ready.put("")


@contextmanager
def tmproxy(*args: str, env: dict[str, str] | None = None) -> Iterator[CliProcess]:
    """Start `tmproxy ARGS...`, wait until it says where it listens, stop it with SIGTERM at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    running = CliProcess(proc)
    ready: queue.Queue[str] = queue.Queue()
    stderr_chunks: list[str] = []
    out = threading.Thread(target=_pump, args=(proc.stdout, running.stdout_lines, ready), daemon=True)
    err = threading.Thread(target=lambda: stderr_chunks.extend(proc.stderr or ()), daemon=True)
    out.start()
    err.start()
    try:
        try:
            running.url = ready.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            running.url = ""
        if not running.url:
            proc.kill()
            proc.wait()
            err.join(5)
            raise RuntimeError(f"tmproxy {' '.join(args)} did not start: {''.join(stderr_chunks)}")
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.join(5)
        err.join(5)
        running.stderr_text = "".join(stderr_chunks)
