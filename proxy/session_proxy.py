"""The pytest plugin's session proxy: one tmproxy for a whole test session, switched from test to test.

    python -m proxy.session_proxy      # the control token is the first line of stdin

Starting a proxy costs about half a second, mostly importing mitmproxy; a suite pays it once instead
of once per test. The proxy listens on a free loopback port for the code under test and on another
for control; it prints `session proxy on URL control PORT pid PID` once both listen. Control is one
JSON object per line, each carrying the token (which never appears on the command line or on disk):

    {"token": T, "op": "switch", "cassette": PATH, "record_mode": "none", "upstream": null, "sid": "validate"}
    {"token": T, "op": "end"}    -> that test's findings, replay usage, enforce blocks and log lines

Each answer is one JSON line with `ok` and, when not ok, `error`. A wrong token is answered once and
the connection closed. The proxy stops when its stdin closes (the plugin ended, however it ended),
on SIGTERM, or on SIGINT.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from proxy.cassette import CassetteError
from proxy.cassette_cache import cached_index, has_interactions
from proxy.lean_mitmproxy import skip_default_addons
from proxy.recording import CassettePlan, RecordMode, UpstreamUnknownError, infer_upstream

skip_default_addons()

from mitmproxy import exceptions, master  # noqa: E402

from addons.chain import TmproxyAddons, tmproxy_addons  # noqa: E402
from addons.fan_session import logger as fan_session_log  # noqa: E402
from addons.session_router import SessionRouter  # noqa: E402
from proxy.config import ConfigError, load_config  # noqa: E402
from proxy.mitm_master import Announce, ProxySettings, ProxyStartError, build_master, run_master  # noqa: E402

NOWHERE = "http://127.0.0.1:9"  # the fixed reverse-mode target; SessionRouter routes every request
LOG_LINES_PER_TEST = 200


class SwitchError(ValueError):
    """A switch the proxy cannot carry out; the message is for the test's author."""


class TestLog(logging.Handler):
    """Warnings and errors logged during one test (misses, refused recordings), for its report.
    Findings are left out: they come structured."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != fan_session_log.name and len(self.lines) < LOG_LINES_PER_TEST:
            self.lines.append(self.format(record))

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


class SessionControl:
    """Switches the running proxy from test to test, through its mitmproxy options, on its event loop."""

    def __init__(self, m: master.Master, built: TmproxyAddons, router: SessionRouter, log: TestLog) -> None:
        self.master = m
        self.built = built
        self.router = router
        self.log = log
        self.cassette = ""
        self._recorded_before = 0

    def switch(self, cassette: str, record_mode: str, upstream: str | None, sid: str) -> dict[str, Any]:
        if self.cassette:
            self.end()  # the previous test did not end (its process was interrupted)
        try:
            mode = RecordMode(record_mode)
        except ValueError:
            raise SwitchError(f"unknown record mode {record_mode!r}") from None
        path = Path(cassette)
        try:
            if mode is RecordMode.NONE and not path.is_file():
                raise SwitchError(f"no cassette {path}: record it with --tm-record-mode once")
            plan = CassettePlan.for_record_mode(mode, has_interactions(path))
            if not plan.record:  # replayed as recorded, whatever the upstream of a recording run
                upstream = infer_upstream(cached_index(path).recorded_urls())
            elif not upstream:
                raise SwitchError(f"record mode {mode} needs an upstream")
            self.master.options.update(tm_sid=sid, tm_route_to=upstream, **plan.options(str(path)))
        except (CassetteError, UpstreamUnknownError, exceptions.OptionsError) as exc:
            raise SwitchError(str(exc)) from None
        self.cassette = str(path)
        self._recorded_before = self.built.recorder.recorded
        return {"replay": plan.replay, "record": plan.record, "upstream": upstream}

    def end(self) -> dict[str, Any]:
        """The current test's results; the proxy then serves nothing until the next switch."""
        replayer = self.built.replayer
        usage = replayer.index.usage().to_dict() if replayer.index is not None else None
        findings = [f.to_dict() for f in self.built.fan_session.restart()]
        self.master.options.update(tm_replay="", tm_record="", tm_route_to="")  # closes the recording
        ended = {
            "cassette": self.cassette,
            "findings": findings,
            "usage": usage,
            "recorded": self.built.recorder.recorded - self._recorded_before,
            "blocks": self.router.take_blocks(),
            "log": self.log.take(),
        }
        self.cassette = ""
        self._recorded_before = self.built.recorder.recorded
        return ended

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        try:
            if op == "switch":
                switched = self.switch(
                    str(message.get("cassette", "")),
                    str(message.get("record_mode", RecordMode.NONE.value)),
                    message.get("upstream") or None,
                    str(message.get("sid", "validate")),
                )
                return {"ok": True, **switched}
            if op == "end":
                return {"ok": True, **self.end()}
        except SwitchError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r}"}


async def serve_control(control: SessionControl, token: str) -> asyncio.Server:
    expected = token.encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if not isinstance(message, dict) or not hmac.compare_digest(
                    str(message.get("token", "")).encode(), expected
                ):
                    writer.write(b'{"ok": false, "error": "refused: missing or wrong token"}\n')
                    await writer.drain()
                    break
                writer.write(json.dumps(control.answer(message)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):  # ValueError: a line longer than the reader's limit
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def stop_when_stdin_closes(m: master.Master, loop: asyncio.AbstractEventLoop) -> None:
    def watch() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(m.shutdown)

    threading.Thread(target=watch, daemon=True, name="stdin-watch").start()


async def serve_session(token: str) -> None:
    log = TestLog()
    root = logging.getLogger()
    root.addHandler(log)
    root.setLevel(logging.WARNING)
    logging.getLogger("mitmproxy").setLevel(logging.ERROR)

    config = load_config(None)
    built = tmproxy_addons()
    router = SessionRouter()
    control_ready: list[int] = []

    def ready(url: str) -> None:
        print(f"session proxy on {url} control {control_ready[0]} pid {os.getpid()}", flush=True)

    announce = Announce(ready)
    m = build_master(ProxySettings(listen_port=0, upstream=NOWHERE), [router, *built.chain], announce)
    m.options.update(tm_sid="validate", **config.redaction_options())
    control = SessionControl(m, built, router, log)
    server = await serve_control(control, token)
    control_ready.append(server.sockets[0].getsockname()[1])
    stop_when_stdin_closes(m, asyncio.get_running_loop())
    try:
        await run_master(m, announce)
    finally:
        server.close()


def main() -> None:
    token = sys.stdin.readline().strip()
    if not token:
        sys.exit("tmproxy session proxy: give the control token as the first line of stdin")
    try:
        asyncio.run(serve_session(token))
    except (ProxyStartError, ConfigError) as exc:
        sys.exit(f"tmproxy session proxy: {exc}")
    # Recordings are closed (the recorder's `done`): skip the interpreter's slow teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
