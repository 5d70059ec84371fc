"""mitmproxy addon: the live rules in a process of their own (see proxy/judging.py).

`tmproxy run` and `replay` under the `validate` and `off` policies, when they record nothing, load
`JudgeLink` in place of the fan-session addon: it hands each call's request and end to a forked
`Judge` over a pipe, as mitmproxy holds them, in the order mitmproxy sees them, a batch every few
milliseconds, and goes on forwarding. The judge logs the findings, on the same stderr. What changes
against judging in the proxy:

- a call's findings are logged a few milliseconds after its answer went out;
- findings do not mark or comment the flow (nothing in the CLI shows flows);
- the judge ignores SIGINT and SIGTERM: it ends when the proxy says so (and gives the proxy its
  summary), or when the proxy's end of the pipe closes (a proxy killed with SIGKILL). A judge that dies
  stops the proxy, with an error: judging must not stop silently.

A proxy that records keeps the rules in process: each recording carries its call's findings, and is on
disk before the call is answered, so the answer would wait for the other process (measured slower).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.convert import (
    FLOW_EXCHANGE_KEY,
    RequestSnapshot,
    ResponseSnapshot,
    complete,
    exchange_of_snapshot,
    path_of,
    request_snapshot,
    response_snapshot,
)
from addons.fan_session import add_fan_session_options, fan_key_option, sid_policy_option
from proxy.exchange import Exchange
from proxy.fan_session import FanSessionGuard, TrafficSummary
from proxy.judging import HANDED_OFF_POLICIES, Judge, JudgeSettings

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
_PIPE_SIZE = 1 << 20  # a megabyte of calls in flight before the proxy waits for the judge
BACKLOG_LIMIT = 64 << 20
"""Bytes of calls the proxy keeps for a judge that is behind (the pipe holds another megabyte)."""
REPLY_TIMEOUT = 30.0
"""Seconds the proxy waits for the judge's answer, or its exit, before it kills it."""
FLUSH_DELAY = 0.005
"""Seconds a call may wait in the proxy before it goes to the judge: one write per many calls (a write
to the pipe cost more than the rest of handing a call over)."""

REQUEST, END, CONFIGURE, FINISH = range(4)

_SETTINGS_OPTIONS = {"tm_sid", "tm_fan_key"}
_STATE_KEY = "tmproxy.judge"  # HANDED (the judge has the request), PASSED (no rule judges it) or ENDED
HANDED, PASSED, ENDED = "handed", "passed", "ended"


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


_INCOMPLETE = object()


def take_frame(received: bytearray) -> Any:
    """The first whole message in `received`, taken out of it; _INCOMPLETE while it has not all come."""
    if len(received) < _LENGTH.size:
        return _INCOMPLETE
    end = _LENGTH.size + _LENGTH.unpack_from(received)[0]
    if len(received) < end:
        return _INCOMPLETE
    message = pickle.loads(received[_LENGTH.size : end])
    del received[:end]
    return message


class JudgeDied(RuntimeError):
    pass


class JudgeProcess:
    """The forked judge and the two pipes to it. Fork it before mitmproxy starts (one thread, no loop)."""

    def __init__(self) -> None:
        to_judge, self._judge_in = _pipe()
        self._judge_out, from_judge = _pipe()
        stopping = {signal.SIGINT, signal.SIGTERM}
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # until the judge ignores them
        self.pid = os.fork()
        if self.pid == 0:  # the judge: whatever happens, it never returns into the proxy's code
            try:
                os.close(self._judge_in)
                os.close(self._judge_out)
                _serve_judge(to_judge, from_judge)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(to_judge)
        os.close(from_judge)
        self._pending = bytearray()
        self._unsent = bytearray()  # framed messages the pipe has not taken yet
        os.set_blocking(self._judge_in, False)
        self.alive = True
        self._closed = False

    def send(self, message: tuple[Any, ...]) -> None:
        """Queue a message; `flush` hands what is queued over."""
        if not self.alive:
            raise JudgeDied("the judge process has ended")
        self._unsent += frame(message)

    def flush(self) -> bool:
        """Hand over what is queued, without waiting: True when all of it went; the rest stays until
        the pipe takes it (the caller retries when it is writable). Past BACKLOG_LIMIT the proxy waits
        for the judge (at most REPLY_TIMEOUT): the bound on what a starved judge may cost in memory."""
        self._write_some()
        if len(self._unsent) > BACKLOG_LIMIT:
            self._write_all_within(REPLY_TIMEOUT)
        return not self._unsent

    def _write_some(self) -> None:
        if not self._unsent:
            return
        try:
            written = os.write(self._judge_in, self._unsent)
        except BlockingIOError:
            return
        except OSError as exc:
            self.alive = False
            raise JudgeDied(f"the judge process has ended ({exc})") from None
        del self._unsent[:written]

    def _write_all_within(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._unsent:
            _, writable, _ = select.select([], [self._judge_in], [], max(0.0, deadline - time.monotonic()))
            if not writable:
                self.kill()
                raise JudgeDied(f"the judge process took nothing for {seconds:g} s")
            self._write_some()

    def call(self, message: tuple[Any, ...]) -> Any:
        """Send and wait for the judge's answer (to a configuration, to the end); a judge that has not
        answered within REPLY_TIMEOUT is killed (JudgeDied), so a stuck judge cannot hold the proxy."""
        self.send(message)
        self.flush()
        self._write_all_within(REPLY_TIMEOUT)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while (reply := take_frame(self._pending)) is _INCOMPLETE:
            readable, _, _ = select.select([self._judge_out], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                self.kill()
                raise JudgeDied(f"the judge process did not answer within {REPLY_TIMEOUT:g} s")
            self.read_replies()
        return reply

    def read_replies(self) -> None:
        """Read what the judge sent; JudgeDied when it has ended (the loop calls this when the pipe is
        readable, and that is how a judge that died is noticed at once)."""
        data = os.read(self._judge_out, 1 << 16)
        if not data:
            self.alive = False
            raise JudgeDied("the judge process has ended")
        self._pending += data

    @property
    def reply_fd(self) -> int:
        return self._judge_out

    @property
    def request_fd(self) -> int:
        return self._judge_in

    def close(self) -> None:
        """Close the pipes and reap the judge (it has been told to finish, or will see the pipe close)."""
        if self._closed:
            return
        self._closed = True
        self.alive = False
        for fd in (self._judge_in, self._judge_out):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            if not _exits_within(self.pid, REPLY_TIMEOUT):
                self.kill()
            os.waitpid(self.pid, 0)

    def kill(self) -> None:
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class JudgeLink:
    """Hands each call to the judge process, which judges it by the live rules."""

    def __init__(self, process: JudgeProcess) -> None:
        self.process = process
        self.sorter = FanSessionGuard()  # tells the calls no rule judges (static files), and counts them
        self.summary: TrafficSummary | None = None
        self.failure: str | None = None  # why the proxy had to stop
        self._reading = False
        self._flush_due = False
        self._waiting_to_write = False
        self._done = False

    def load(self, loader: Any) -> None:
        add_fan_session_options(loader)

    def configure(self, updated: set[str]) -> None:
        if not updated & _SETTINGS_OPTIONS:
            return
        policy = sid_policy_option()
        if policy not in HANDED_OFF_POLICIES:
            raise exceptions.OptionsError(f"tm_sid {policy} changes calls: load addons/fan_session.py for it")
        if policy is not self.sorter.policy:
            self.sorter.set_policy(policy)
        try:
            self.process.call((CONFIGURE, JudgeSettings(policy=policy, fan_key=fan_key_option())))
        except JudgeDied as exc:
            raise exceptions.OptionsError(str(exc)) from None

    def running(self) -> None:
        asyncio.get_running_loop().add_reader(self.process.reply_fd, self._read_replies)
        self._reading = True

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or self._done:
            return
        path = path_of(flow.request.path)
        if path is not None and self.sorter.passes(flow.request.method, path):
            flow.metadata[_STATE_KEY] = PASSED
            return
        self._send((REQUEST, _request_of(flow)))
        flow.metadata[_STATE_KEY] = HANDED

    def response(self, flow: http.HTTPFlow) -> None:
        self._end(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A call that failed (upstream down, client gone) still ends, or it would look in flight forever."""
        self._end(flow)

    def _end(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(_STATE_KEY)
        if state in (ENDED, PASSED) or self._done:
            return
        flow.metadata[_STATE_KEY] = ENDED
        request = None if state == HANDED else _request_of(flow)
        answer = None if flow.response is None else _response_of(flow)
        self._send((END, flow.id, request, answer))

    def done(self) -> None:
        self._done = True  # calls cut off by the stop (their `error` comes later) are not handed over
        self._stop_reading()
        if self.process.alive:
            try:
                self.summary = self.process.call((FINISH,))
            except JudgeDied as exc:
                self.failure = self.failure or f"tmproxy's judge: {exc}; its findings are lost"
                logger.error(self.failure)
        if self.summary is not None:
            self.summary.requests += self.sorter.summary().requests
        self.stop()

    def stop(self) -> None:
        """Close the pipes and reap the judge: after `done`, or when mitmproxy stopped before it ran
        (then the summary is still asked for), or never started (the judge sees its pipe close)."""
        if not self._done and self.process.alive:
            with contextlib.suppress(JudgeDied):
                self.summary = self.process.call((FINISH,))
        self.process.close()

    def _send(self, message: tuple[Any, ...]) -> None:
        """Queue the message; the queue goes over within FLUSH_DELAY (one write for many calls)."""
        try:
            self.process.send(message)
        except JudgeDied:
            self._judge_died()
            return
        if not self._flush_due:
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)
            self._flush_due = True

    def _flush(self) -> None:
        self._flush_due = False
        try:
            done = self.process.flush()
        except JudgeDied:
            self._judge_died()
            return
        loop = asyncio.get_running_loop()
        if not done and not self._waiting_to_write:
            loop.add_writer(self.process.request_fd, self._flush)  # a judge behind: go on when it reads
            self._waiting_to_write = True
        elif done and self._waiting_to_write:
            loop.remove_writer(self.process.request_fd)
            self._waiting_to_write = False

    def _read_replies(self) -> None:
        try:
            self.process.read_replies()
        except JudgeDied:
            self._judge_died()

    def _stop_reading(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reading:
            loop.remove_reader(self.process.reply_fd)
            self._reading = False
        if self._waiting_to_write:
            loop.remove_writer(self.process.request_fd)
            self._waiting_to_write = False

    def _judge_died(self) -> None:
        self._stop_reading()
        if self.failure is None:
            self.failure = "tmproxy's judge process ended unexpectedly: the proxy stopped"
            logger.error(self.failure)
            ctx.master.shutdown()


def _request_of(flow: http.HTTPFlow) -> RequestSnapshot | Exchange:
    """What the judge needs of the request: the flow's `Exchange` when an addon made one, else its values."""
    exchange = flow.metadata.get(FLOW_EXCHANGE_KEY)
    return exchange if isinstance(exchange, Exchange) else request_snapshot(flow)


def _response_of(flow: http.HTTPFlow) -> ResponseSnapshot | Exchange:
    """The response as the upstream sent it: the URL rewrite keeps that in the flow's `Exchange`."""
    exchange = flow.metadata.get(FLOW_EXCHANGE_KEY)
    if isinstance(exchange, Exchange) and exchange.response is not None:
        return exchange
    assert flow.response is not None
    return response_snapshot(flow.response)


# the judge's side


def _serve_judge(requests_fd: int, replies_fd: int) -> None:
    """The judge process: reads messages until FINISH or the proxy's end closes, then exits."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group: the proxy decides
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # blocked for the fork
    signal.set_wakeup_fd(-1)
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)  # the proxy's stdin and stdout are the proxy's: whoever reads its output to the
    os.dup2(quiet, 1)  # end must not wait for the judge too (findings go to stderr, as in the proxy)
    _close_inherited(keep={0, 1, 2, requests_fd, replies_fd})
    _yield_to_everything_else()
    code = 0
    try:
        _judge_messages(_JudgeChannel(requests_fd, replies_fd))
    except BaseException:  # noqa: BLE001 - the judge must exit, never return into the proxy's code
        logger.exception("tmproxy's judge process failed")
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _yield_to_everything_else() -> None:
    """Judging can wait; forwarding, the partner app and the upstream on the same machine cannot. A
    judge at normal priority woke with a batch and held a core for a millisecond or more, delaying
    whoever shared it (measured: the load generator and upstream beside it, run/null 0.73 against 0.91).
    A judge starved by other work falls behind: the proxy keeps what the pipe does not take (up to
    BACKLOG_LIMIT, then it waits for the judge) and goes on forwarding."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(19)


def _close_inherited(keep: set[int]) -> None:
    """The judge holds only its pipes: an inherited socket or file would outlive a killed proxy."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in open_fds:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _judge_messages(channel: _JudgeChannel) -> None:
    judge = Judge()
    exchanges: dict[str, Exchange] = {}
    for message in channel.messages():
        kind = message[0]
        if kind == CONFIGURE:
            _guarded(judge.configure, message[1])  # checked by the proxy before it asks
            channel.reply((CONFIGURE,))
        elif kind == FINISH:
            channel.reply(_finish(judge))
            return
        else:
            _guarded(_judge_call, judge, exchanges, message)
    _finish(judge)  # the proxy is gone: its last findings are still logged


def _judge_call(judge: Judge, exchanges: dict[str, Exchange], message: tuple[Any, ...]) -> None:
    if message[0] == REQUEST:
        exchange = _exchange(message[1])
        exchanges[exchange.id] = exchange
        judge.request(exchange)
        return
    _, flow_id, request, answer = message
    if flow_id in exchanges:
        ended = exchanges.pop(flow_id)
    elif request is not None:
        ended = _exchange(request)
    else:  # its request could not be handed over: nothing to judge it by
        return
    if answer is not None:
        _complete(ended, answer)
    judge.end(ended)


def _finish(judge: Judge) -> TrafficSummary | None:
    try:
        return judge.finish()
    except Exception as exc:  # noqa: BLE001 - the proxy still gets an answer, and stops cleanly
        logger.error(f"tmproxy could not finish judging: {exc!r}", exc_info=exc)
        return None


def _exchange(request: RequestSnapshot | Exchange) -> Exchange:
    return request if isinstance(request, Exchange) else exchange_of_snapshot(request)


def _complete(exchange: Exchange, answer: ResponseSnapshot | Exchange) -> None:
    if isinstance(answer, Exchange):
        exchange.response, exchange.ended_at = answer.response, answer.ended_at
    else:
        complete(exchange, answer)


def _guarded(step: Callable[..., None], *args: Any) -> None:
    """One call's judging failed: say so and go on with the next, as mitmproxy does with an addon
    (the judge must not die of one call: its proxy would stop)."""
    try:
        step(*args)
    except Exception as exc:  # noqa: BLE001
        logger.error(f"tmproxy could not judge a call: {exc!r}", exc_info=exc)


class _JudgeChannel:
    """The judge's ends of the pipes: messages in, in order; a reply out when the proxy waits for one."""

    def __init__(self, requests_fd: int, replies_fd: int) -> None:
        self._in, self._out = requests_fd, replies_fd
        self._received = bytearray()

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """Each message in order, until the proxy's end of the pipe closes."""
        while True:
            while (message := take_frame(self._received)) is not _INCOMPLETE:
                yield message
            data = os.read(self._in, 1 << 16)
            if not data:
                return
            self._received += data

    def reply(self, message: Any) -> None:
        with contextlib.suppress(OSError):  # a proxy gone has nobody to tell
            _write_all(self._out, frame(message))


def _exits_within(pid: int, seconds: float) -> bool:
    """Whether the process ends within `seconds` (a pidfd turns readable when it does); True where
    there are no pidfds (the judge ends when its pipe closes)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass  # the default size: the proxy waits sooner
    return read, write


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
