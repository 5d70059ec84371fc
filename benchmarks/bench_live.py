"""Live throughput: tmproxy run / record / replay against bare mitmdump, under a real load generator.

Used by `benchmarks/run.py`; everything binds to 127.0.0.1, every process is started, waited on through
its readiness (tmproxy's `listening on` line, a connect loop for the others) and always stopped.

- upstream: nginx from the system (a config in a temporary folder, one worker, no access log) serving
  small Ticketmaster-like JSON answers, or, without nginx, `python bench_live.py upstream` (asyncio, raw HTTP/1.1);
- load: wrk (1 thread, a few keep-alive connections, a Lua script cycling through the partner calls), or,
  without wrk, `python bench_live.py load` (aiohttp);
- proxies: `mitmdump` in reverse mode, `tmproxy run|record|replay`, and `python bench_live.py null-proxy`
  (tmproxy's embedded mitmproxy master with none of tmproxy's addons: what the addons cost on their own).

On a machine with two or more cores the proxies get core 0 and the load generator and upstream the
others (`os.sched_setaffinity`), so they do not take turns on one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TM = "https://app.ticketmaster.com"
LIVE_KEY = "live-apikey-0123456789abcdef"
SID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
TICKET = "resale-listingVer-0000000000000003:2000527EE48A9334"
READY_TIMEOUT = 60.0


# The traffic -----------------------------------------------------------------------------------------

FANS = 8
"""The partner app's fans: each call carries its fan's bearer token, and each fan's Top Picks its own
session, as a partner's backend serving many fans does (one address, many members)."""


def fan_token(fan: int) -> str:
    return f"bench-member-token-{fan:02d}-0123456789abcdef"


def fan_sid(fan: int) -> str:
    return f"{SID[:-2]}{fan:02d}"


SID_PLACEHOLDER = "@SID@"

STATIC_FILES: dict[str, tuple[str, bytes]] = {
    # name: (Content-Type, body); served as files by nginx, answered as recorded by replay
    "static/app.js": ("application/javascript", b"(function(){var tm={};" + b"tm.x=1;" * 560 + b"})();\n"),
    "static/app.css": ("text/css", b"body{margin:0}" + b".c{color:#123}" * 120 + b"\n"),
    "images/x.png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 12),
    "favicon.ico": ("image/x-icon", bytes(range(256)) * 4),
    "fonts/inter.woff2": ("font/woff2", b"wOF2" + bytes(range(255, -1, -1)) * 8),
}
OTHER_JSON = b'{"user":{"id":"u-1","locale":"en-US"},"features":["resale","maps"]}'


def answers(now: float) -> dict[str, bytes]:
    """What the upstream answers, by kind of call: Top Picks (a fan session valid for an hour from
    `now`, two offers; its session id is `SID_PLACEHOLDER`, the fan's), the cart (charging exactly what
    Top Picks showed), anything else under the Partner API (an event), and the app's own JSON."""
    start = int(now * 1000)
    offers = [
        {"offerId": "O3", "ticketId": TICKET, "totalPrice": 53.0, "currency": "USD"},
        {"offerId": "O4", "ticketId": "resale-listingVer-0000000000000004:2000527EE48A9334",
         "totalPrice": 61.5, "currency": "USD"},
    ]  # fmt: skip
    top_picks = {
        "page": {"number": 0, "size": 2, "totalElements": 2, "totalPages": 1},
        "picks": [
            {"type": "seats", "section": "104", "row": "F", "offers": ["O3"], "seats": ["7", "8"]},
            {"type": "seats", "section": "221", "row": "B", "offers": ["O4"], "seats": ["1", "2"]},
        ],
        "_embedded": {"offer": offers},
        "fanSession": {
            "resaleSid": {
                "sessionId": SID_PLACEHOLDER,
                "sessionStartTime": str(start),
                "sessionExpireTime": str(start + 3_600_000),
            }
        },
    }
    charges = [{"type": "face_value", "price": 48.0}, {"type": "service", "price": 5.0}]
    item = {"id": TICKET, "offer_id": "O3", "quantity": 2, "inventory_type": "Resale", "charges": charges}
    cart = {"cart_id": "c0ffee00c0ffee00c0ffee00c0ffee00", "cart": {"hold_time": 299, "items": [item]}}
    event = {"id": "2000527EE48A9334", "name": "Show", "dates": {"start": {"localDate": "2026-06-01"}}}
    dump = lambda value: json.dumps(value, separators=(",", ":")).encode()  # noqa: E731
    return {"top_picks": dump(top_picks), "cart": dump(cart), "event": dump(event), "app": OTHER_JSON}


def answer_of(call: Call, bodies: dict[str, bytes]) -> tuple[str, bytes]:
    """The Content-Type and body the upstream gives this call."""
    if call.answer in STATIC_FILES:
        return STATIC_FILES[call.answer]
    body = bodies[call.answer]
    if call.answer == "top_picks":
        body = body.replace(SID_PLACEHOLDER.encode(), fan_sid(call.fan).encode())
    return "application/json", body


@dataclass(frozen=True)
class Call:
    """One request of the partner app, and which answer it gets."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    answer: str
    fan: int = 0


def partner_calls(count: int) -> list[Call]:
    """A partner app's calls for `FANS` fans at a time, each with its fan's bearer token: every fan's
    Top Picks, then every fan's event, then every fan's resale reserve carrying the session its Top
    Picks gave (a compliant integration: no finding expected). A fan's reserve comes `2 * FANS` calls
    after its Top Picks, so that with a few connections its answer has arrived, as an app waits for it."""
    calls = []
    accept = ("Accept", "application/json")
    block = 3 * FANS
    for i in range(count):
        step, fan = divmod(i % block, FANS)
        event = f"{0x2000527EE48A0000 + (i // block) * FANS + fan:016X}"
        auth = ("Authorization", f"Bearer {fan_token(fan)}")
        if step == 0:
            path = f"/top-picks/v1/events/{event}?apikey={LIVE_KEY}&quantity=2"
            calls.append(Call("GET", path, (accept, auth), b"", "top_picks", fan))
        elif step == 1:
            path = f"/partners/v1/events/{event}?apikey={LIVE_KEY}"
            calls.append(Call("GET", path, (accept, auth), b"", "event", fan))
        else:
            body = json.dumps({"reserve": {"tickets": [{"id": TICKET, "quantity": 2}]}}).encode()
            headers = (accept, auth, ("Content-Type", "application/json"), ("X-TM-SESSION-SID", fan_sid(fan)))
            path = f"/partners/v1/events/{event}/cart?apikey={LIVE_KEY}"
            calls.append(Call("POST", path, headers, body, "cart", fan))
    return calls


def app_calls() -> list[Call]:
    """What else a partner's web app loads through the proxy: static files and its own JSON API."""
    browser = (("Accept", "*/*"), ("Accept-Encoding", "identity"))
    static = [Call("GET", f"/{name}", browser, b"", name) for name in STATIC_FILES]
    json_headers = (("Accept", "application/json"), ("Cookie", "app_session=abc123"))
    own = [
        Call("GET", "/app/v1/me", json_headers, b"", "app"),
        Call("GET", "/app/v1/config?locale=en-US", json_headers, b"", "app"),
        Call("POST", "/app/v1/analytics", (*json_headers, ("Content-Type", "application/json")),
             b'{"event":"view","page":"/events"}', "app"),
    ]  # fmt: skip
    return static + own


MIX_PER_API_CALL = 10
PERIOD = 3 * FANS * (MIX_PER_API_CALL + 1)
"""Both traffics start a block of every fan's Top Picks, events and reserves at multiples of this."""


def mixed_calls(count: int, per_api_call: int = MIX_PER_API_CALL) -> list[Call]:
    """`count` calls: the partner's Ticketmaster calls, each followed by `per_api_call` of the app's others."""
    others = app_calls()
    api = partner_calls(count // (per_api_call + 1) + 1)
    calls: list[Call] = []
    for i in range(count):
        group, position = divmod(i, per_api_call + 1)
        calls.append(api[group] if position == 0 else others[(i - group - 1) % len(others)])
    return calls


def cassette_exchanges(calls: Sequence[Call], now: float) -> list[Any]:
    """The calls as recorded from Ticketmaster, with the answers the live upstream gives."""
    from proxy.exchange import Exchange, Headers, Request, Response

    bodies = answers(now)
    exchanges = []
    for i, call in enumerate(calls):
        content_type, body = answer_of(call, bodies)
        response_headers = Headers(
            [("Server", "nginx"), ("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        started = now - len(calls) + i
        exchanges.append(
            Exchange(
                Request(call.method, TM + call.path, Headers(call.headers), call.body),
                Response(200, response_headers, body, "OK"),
                started_at=started,
                ended_at=started + 0.05,
                client="127.0.0.1:50000",
            )
        )
    return exchanges


def write_cassette(path: Path, calls: Sequence[Call], now: float) -> float:
    """A tmproxy cassette of these calls; returns the seconds it took."""
    from proxy.cassette import CassetteWriter

    path.unlink(missing_ok=True)
    start = time.perf_counter()
    with CassetteWriter(path, metadata={"upstream": TM}) as writer:
        for exchange in cassette_exchanges(calls, now):
            writer.append(exchange)
    return time.perf_counter() - start


# Processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"did not listen on 127.0.0.1:{port} within {READY_TIMEOUT:.0f} s")


@dataclass
class Cores:
    """Which CPUs the proxies and the load (generator and upstream) run on."""

    proxy: set[int] | None = None
    load: set[int] | None = None

    @classmethod
    def split(cls) -> Cores:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return cls()
        if len(cpus) < 2:
            return cls()
        return cls(proxy={cpus[0]}, load=set(cpus[1:]))

    def describe(self) -> str:
        if self.proxy is None:
            return "not pinned"
        return (
            f"proxy on CPU {sorted(self.proxy)}, load generator and upstream on CPU {sorted(self.load or ())}"
        )


def _pinned(cpus: set[int] | None) -> Any:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@dataclass
class Proc:
    """A started process, its output files, and what /proc says about it."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    url: str = ""
    exit_code: int | None = None

    def cpu_seconds(self) -> float | None:
        return _cpu_seconds(self.popen.pid)

    def helper_pids(self) -> list[int]:
        """The processes this one started (tmproxy's judge: addons/judge_process.py)."""
        try:
            text = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def helpers_cpu_seconds(self) -> float | None:
        """The CPU time of the processes this one started; None when it started none."""
        times = [t for pid in self.helper_pids() if (t := _cpu_seconds(pid)) is not None]
        return sum(times) if times else None

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the most resident memory the process ever had."""
        return peak_rss_mb_of(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.exit_code = self.popen.returncode
        return self.exit_code

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") if self.stdout.exists() else ""

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""


def peak_rss_mb_of(pid: int) -> float | None:
    """VmHWM: the most resident memory a process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Processes(contextlib.ExitStack):
    """Starts processes into a work folder and stops every one of them on exit, whatever happens."""

    def __init__(self, workdir: Path, cores: Cores) -> None:
        super().__init__()
        self.workdir = workdir
        self.cores = cores
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TMPROXY_")}
        self.env = {**inherited, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}

    def _popen(
        self, name: str, argv: list[str], cpus: set[int] | None, env: dict[str, str] | None = None
    ) -> Proc:
        out, err = self.workdir / f"{name}.out", self.workdir / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                argv,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                preexec_fn=_pinned(cpus),  # noqa: PLW1509 - no threads in this process
            )
        proc = Proc(name, popen, out, err)
        self.callback(proc.stop)
        return proc

    def start_on_port(self, name: str, argv: list[str], port: int, cpus: set[int] | None) -> Proc:
        proc = self._popen(name, argv, cpus)
        try:
            wait_for_port(port, proc.popen, time.monotonic() + READY_TIMEOUT)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}\n{proc.errors()[-2000:]}") from None
        proc.url = f"http://127.0.0.1:{port}"
        return proc

    def start_announcing(
        self, name: str, argv: list[str], cpus: set[int] | None, env: dict[str, str] | None = None
    ) -> Proc:
        """Start a process that prints `listening on URL` (tmproxy) and wait for that line."""
        proc = self._popen(name, argv, cpus, env)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for line in proc.output().splitlines():
                if line.startswith("listening on "):
                    proc.url = line.split("listening on ", 1)[1].strip()
                    return proc
            if not proc.alive():
                raise RuntimeError(f"{name} exited ({proc.popen.returncode}): {proc.errors()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not print `listening on` within {READY_TIMEOUT:.0f} s")

    # the upstream

    def start_upstream(self, now: float, prefer_nginx: bool = True) -> tuple[Proc, str]:
        nginx = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
        )
        port = free_port()
        if nginx and prefer_nginx:
            conf = write_nginx_conf(self.workdir / "nginx", port, answers(now))
            argv = [nginx, "-p", str(conf.parent), "-c", str(conf), "-e", str(conf.parent / "error.log")]
            return self.start_on_port("nginx", argv, port, self.cores.load), "nginx"
        (self.workdir / "answers.json").write_text(
            json.dumps({k: v.decode() for k, v in answers(now).items()})
        )
        argv = [
            sys.executable,
            str(Path(__file__)),
            "upstream",
            str(port),
            str(self.workdir / "answers.json"),
        ]
        return self.start_on_port("upstream", argv, port, self.cores.load), "python asyncio server"

    # the proxies

    def start_mitmdump(self, upstream: str, confdir: Path) -> Proc:
        port = free_port()
        script = Path(sys.executable).with_name("mitmdump")
        head = [str(script)] if script.exists() else [sys.executable, "-c", _MITMDUMP_MAIN]
        argv = [*head, "-q", "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1",
                "--listen-port", str(port), "--set", f"confdir={confdir}"]  # fmt: skip
        return self.start_on_port("mitmdump", argv, port, self.cores.proxy)

    def start_tmproxy(self, name: str, args: list[str], confdir: Path, root: Path = ROOT) -> Proc:
        """`tmproxy ARGS` from the checkout at `root` (another one: the code before a change)."""
        argv = [
            sys.executable,
            "-m",
            "proxy.cli",
            *args,
            "--listen",
            "127.0.0.1:0",
            "--confdir",
            str(confdir),
        ]
        proc = self.start_announcing(name, argv, self.cores.proxy, {"PYTHONPATH": str(root)})
        if self.cores.load is not None:
            for pid in proc.helper_pids():  # the judge runs beside the load: the proxy keeps its core
                os.sched_setaffinity(pid, self.cores.load)
        return proc

    def start_null_proxy(self, upstream: str, confdir: Path) -> Proc:
        argv = [sys.executable, str(Path(__file__)), "null-proxy", upstream, str(confdir)]
        return self.start_announcing("null-proxy", argv, self.cores.proxy)


_MITMDUMP_MAIN = "import sys; from mitmproxy.tools.main import mitmdump; sys.exit(mitmdump())"


def write_nginx_conf(folder: Path, port: int, bodies: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    www = folder / "www"
    for name, (_, body) in STATIC_FILES.items():
        (www / name).parent.mkdir(parents=True, exist_ok=True)
        (www / name).write_bytes(body)

    def literal(body: bytes) -> str:
        return "'" + body.decode().replace("\\", "\\\\").replace("'", "\\'") + "'"

    top_picks = literal(bodies["top_picks"]).replace(SID_PLACEHOLDER, "$fan_sid")
    sids = "\n".join(f'    "Bearer {fan_token(fan)}" "{fan_sid(fan)}";' for fan in range(FANS))
    types = "\n".join(f"    {ctype} {name.rsplit('.', 1)[1]};" for name, (ctype, _) in STATIC_FILES.items())
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {temp["body"]};
  proxy_temp_path {temp["proxy"]};
  fastcgi_temp_path {temp["fastcgi"]};
  uwsgi_temp_path {temp["uwsgi"]};
  scgi_temp_path {temp["scgi"]};
  default_type application/json;
  types {{
{types}
  }}
  map $http_authorization $fan_sid {{
    default "{SID}";
{sids}
  }}
  server {{
    listen 127.0.0.1:{port};
    location ^~ /top-picks/ {{ default_type application/json; return 200 {top_picks}; }}
    location ~ /cart$ {{ default_type application/json; return 200 {literal(bodies["cart"])}; }}
    location ^~ /app/ {{ default_type application/json; return 200 {literal(bodies["app"])}; }}
    location ~ ^/(static|images|fonts)/ {{ root {www}; }}
    location = /favicon.ico {{ root {www}; }}
    location / {{ default_type application/json; return 200 {literal(bodies["event"])}; }}
  }}
}}
""")
    return conf


# Load ------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int = 0
    errors: int = 0
    cpu_ms_per_request: float | None = None  # the proxy's CPU time (user + system) per request
    helper_cpu_ms_per_request: float | None = None  # the same of the processes it started (the judge)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def combined(cls, results: Sequence[LoadResult]) -> LoadResult:
        """Several runs as one: their requests over their seconds, the CPU cost weighted by requests."""
        requests = sum(r.requests for r in results)

        def weighted(costs: list[tuple[float | None, int]]) -> float | None:
            known = [(c, n) for c, n in costs if c is not None]
            return sum(c * n for c, n in known) / sum(n for _, n in known) if known and requests else None

        return cls(
            results[0].tool,
            requests,
            sum(r.seconds for r in results),
            sum(r.non_2xx for r in results),
            sum(r.errors for r in results),
            weighted([(r.cpu_ms_per_request, r.requests) for r in results]),
            weighted([(r.helper_cpu_ms_per_request, r.requests) for r in results]),
            {"slices": len(results)},
        )


class Load:
    """wrk when installed (1 thread), else the aiohttp client below in its own process."""

    def __init__(self, workdir: Path, cores: Cores, connections: int = 4, force_python: bool = False) -> None:
        self.workdir = workdir
        self.cores = cores
        self.connections = connections
        self.wrk = None if force_python else shutil.which("wrk")
        self.tool = f"wrk -t1 -c{connections}" if self.wrk else f"aiohttp ({connections} connections)"
        self._scripts: dict[int, Path] = {}

    def _calls_file(self, calls: Sequence[Call]) -> Path:
        key = id(calls)
        if key not in self._scripts:
            path = self.workdir / f"calls-{len(self._scripts)}.tsv"
            lines = []
            for call in calls:
                headers = "|".join(f"{k}:{v}" for k, v in call.headers)
                lines.append("\t".join([call.method, call.path, headers, call.body.decode()]))
            path.write_text("\n".join(lines) + "\n")
            self._scripts[key] = path
        return self._scripts[key]

    def run(
        self, url: str, calls: Sequence[Call], seconds: float, proc: Proc | None = None, start: int = 0
    ) -> LoadResult:
        """Load `url` for `seconds` with the calls in turn, from the `start`-th; `proc`'s CPU is measured."""
        calls_file = self._calls_file(calls)
        before = (proc.cpu_seconds(), proc.helpers_cpu_seconds()) if proc else (None, None)
        if self.wrk:
            result = self._run_wrk(url, calls_file, seconds, start)
        else:
            result = self._run_python(url, calls_file, seconds, start)
        after = (proc.cpu_seconds(), proc.helpers_cpu_seconds()) if proc else (None, None)

        def per_request(first: float | None, last: float | None) -> float | None:
            return (
                None
                if first is None or last is None or not result.requests
                else (last - first) * 1000 / result.requests
            )

        result.cpu_ms_per_request = per_request(before[0], after[0])
        result.helper_cpu_ms_per_request = per_request(before[1], after[1])
        return result

    def _run_wrk(self, url: str, calls_file: Path, seconds: float, start: int) -> LoadResult:
        script = self.workdir / "cycle.lua"
        script.write_text(WRK_SCRIPT)
        argv = [self.wrk or "wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", str(script), url, str(calls_file), str(start)]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=_pinned(self.cores.load)
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
        return parse_wrk(done.stdout)

    def _run_python(self, url: str, calls_file: Path, seconds: float, start: int) -> LoadResult:
        argv = [sys.executable, str(Path(__file__)), "load", url, str(calls_file), str(seconds),
                str(self.connections), str(start)]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=_pinned(self.cores.load)
        )
        if done.returncode != 0:
            raise RuntimeError(f"the aiohttp load generator failed: {done.stderr[-2000:]}")
        data = json.loads(done.stdout)
        return LoadResult("aiohttp", data["requests"], data["seconds"], data["non_2xx"], data["errors"])


# Cycles through the calls file (method, path, headers, body; tab-separated), one request after another,
# from the call numbered by the second argument.
WRK_SCRIPT = r"""
local reqs = {}
local i = 0

function init(args)
  i = tonumber(args[2] or "0")
  for line in io.lines(args[1]) do
    local method, path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    for pair in header_text:gmatch("[^|]+") do
      local name, value = pair:match("^([^:]+):(.*)$")
      headers[name] = value
    end
    if body == "" then body = nil end
    reqs[#reqs + 1] = wrk.format(method, path, headers, body)
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
"""


def parse_wrk(output: str) -> LoadResult:
    requests, seconds, non_2xx, errors = 0, 0.0, 0, 0
    for line in output.splitlines():
        words = line.split()
        if " requests in " in line:
            requests = int(words[0])
            duration = words[3].rstrip(",")
            for suffix, scale in (("ms", 0.001), ("us", 1e-6), ("s", 1.0), ("m", 60.0)):
                if duration.endswith(suffix):
                    seconds = float(duration[: -len(suffix)]) * scale
                    break
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            non_2xx = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            errors = sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    if not requests:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    return LoadResult("wrk", requests, seconds, non_2xx, errors)


# Subcommands run as their own processes ---------------------------------------------------------------


def serve_upstream(port: int, answers_file: Path) -> None:
    """A minimal keep-alive HTTP/1.1 server answering like the nginx config (no nginx on this machine)."""
    bodies = {k: v.encode() for k, v in json.loads(answers_file.read_text()).items()}
    sids = {f"Bearer {fan_token(fan)}".encode(): fan_sid(fan).encode() for fan in range(FANS)}

    def reply(content_type: str, body: bytes) -> bytes:
        head = (f"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        return head.encode() + body

    statics = {f"/{name}".encode(): reply(*answer) for name, answer in STATIC_FILES.items()}

    def answer(path: bytes, authorization: bytes) -> bytes:
        if path in statics:
            return statics[path]
        if path.startswith(b"/top-picks/"):
            sid = sids.get(authorization, SID.encode())
            return reply("application/json", bodies["top_picks"].replace(SID_PLACEHOLDER.encode(), sid))
        kind = "cart" if path.endswith(b"/cart") else "app" if path.startswith(b"/app/") else "event"
        return reply("application/json", bodies[kind])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1]
                length, authorization = 0, b""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"authorization":
                        authorization = value.strip()
                if length:
                    await reader.readexactly(length)
                writer.write(answer(target.split(b"?", 1)[0], authorization))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def generate_load(url: str, calls_file: Path, seconds: float, connections: int, start: int) -> dict[str, Any]:
    """The fallback load generator: `connections` keep-alive clients cycling through the calls."""
    import aiohttp

    calls = []
    for line in calls_file.read_text().splitlines():
        method, path, header_text, body = line.split("\t", 3)
        headers = dict(pair.split(":", 1) for pair in header_text.split("|") if pair)
        calls.append((method, url + path, headers, body.encode() or None))
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    position = [start]

    async def client(session: aiohttp.ClientSession, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            method, target, headers, body = calls[position[0] % len(calls)]
            position[0] += 1
            try:
                async with session.request(method, target, headers=headers, data=body) as response:
                    await response.read()
                    counts["requests"] += 1
                    counts["non_2xx"] += not 200 <= response.status < 400
            except aiohttp.ClientError:
                counts["errors"] += 1

    async def main() -> float:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=["User-Agent"]) as session:
            start = time.monotonic()
            stop_at = start + seconds
            await asyncio.gather(*(client(session, stop_at) for _ in range(connections)))
            return time.monotonic() - start

    elapsed = asyncio.run(main())
    return {**counts, "seconds": elapsed}


def serve_null_proxy(upstream: str, confdir: str) -> None:
    """tmproxy's embedded mitmproxy (`proxy.mitm_master`) with no tmproxy addon, on a free port."""
    sys.path.insert(0, str(ROOT))
    from proxy.lean_mitmproxy import skip_default_addons

    skip_default_addons()  # as tmproxy's own commands do
    from proxy.mitm_master import ProxySettings, install_console_logging, serve

    install_console_logging(False)
    settings = ProxySettings(listen_host="127.0.0.1", listen_port=0, upstream=upstream, confdir=confdir)
    asyncio.run(serve(settings, [], lambda url: print(f"listening on {url}", flush=True)))


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "upstream":
        serve_upstream(int(args[0]), Path(args[1]))
    elif command == "load":
        print(json.dumps(generate_load(args[0], Path(args[1]), float(args[2]), int(args[3]), int(args[4]))))
    elif command == "null-proxy":
        with contextlib.suppress(KeyboardInterrupt):
            serve_null_proxy(args[0], args[1])
    else:
        raise SystemExit(f"unknown command {command!r}: upstream, load or null-proxy")
    return 0


@contextlib.contextmanager
def workspace(keep: Path | None = None) -> Iterator[Path]:
    """A temporary folder for configs, cassettes and logs (or `keep`, left in place)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tmproxy-bench-") as folder:
        yield Path(folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
