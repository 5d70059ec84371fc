"""Starting and steering the session proxy (`proxy/session_proxy.py`) from the test process.

The control token is made here, given to the proxy on its stdin and kept in memory: only this
process can switch the proxy. Closing the proxy's stdin (this process ending, however it ends)
stops it.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .processes import CliProcess, running

SESSION_READY = re.compile(r"^session proxy on (?P<url>\S+) control (?P<control>\d+) pid (?P<pid>\d+)")
CONTROL_TIMEOUT = 60.0  # a switch may parse a large cassette


class SessionProxyError(RuntimeError):
    """The proxy refused a control call; the message says why."""


@dataclass
class SessionProxy:
    """A running session proxy: where tests send traffic, and the control connection."""

    process: CliProcess
    url: str
    pid: int
    control_port: int
    _token: str = field(repr=False)
    _control: socket.socket | None = field(default=None, repr=False)
    _answers: Any = field(default=None, repr=False)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """One control call; raises SessionProxyError when the proxy answers with an error."""
        try:
            if self._control is None:
                self._control = socket.create_connection(("127.0.0.1", self.control_port), CONTROL_TIMEOUT)
                self._answers = self._control.makefile("rb")
            self._control.sendall(json.dumps({"token": self._token, "op": op, **fields}).encode() + b"\n")
            line = self._answers.readline()
        except OSError as exc:
            line = b""
            reason = f": {exc}"
        else:
            reason = ""
        if not line:
            self.close()
            raise SessionProxyError(
                f"the session proxy (pid {self.pid}) is gone{reason}; exit code {self.process.proc.poll()}"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise SessionProxyError(str(answer.get("error", "refused")))
        return answer

    def switch(self, cassette: str, record_mode: str, upstream: str | None, sid: str) -> dict[str, Any]:
        """Serve the next test from `cassette`; its play state, findings and log start empty."""
        return self.call("switch", cassette=cassette, record_mode=record_mode, upstream=upstream, sid=sid)

    def end(self) -> dict[str, Any]:
        """The current test's findings, replay usage, enforce blocks and log lines."""
        return self.call("end")

    def close(self) -> None:
        if self._control is not None:
            self._answers.close()
            self._control.close()
            self._control = None


@contextmanager
def session_proxy() -> Iterator[SessionProxy]:
    """Start a session proxy, wait until it listens (its readiness line), stop it at the end."""
    token = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "proxy.session_proxy"]
    with running(command, SESSION_READY, stdin_line=token) as process:
        proxy = SessionProxy(
            process, process.url, int(process.ready["pid"]), int(process.ready["control"]), token
        )
        try:
            yield proxy
        finally:
            proxy.close()


class BackgroundSessionProxy:
    """A session proxy started in a thread, so that its start-up (mostly importing mitmproxy, in the
    proxy's own process) overlaps whatever this process does meanwhile: collecting tests, say."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._proxy: SessionProxy | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tmproxy-session-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with session_proxy() as proxy:
                self._proxy = proxy
                self._ready.set()
                self._stop.wait()
        except Exception as exc:  # handed to whoever waits for the proxy
            self._error = exc
        finally:
            self._ready.set()

    def wait(self) -> SessionProxy:
        """The proxy once it listens; RuntimeError if it could not start."""
        self._ready.wait()
        if self._proxy is None:
            raise RuntimeError(str(self._error))
        return self._proxy

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
