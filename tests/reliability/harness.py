"""What the reliability tests share: a scripted upstream, a raw HTTP client, tmpfs mounts, socket checks.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.cassette import Cassette, load_cassette

Fields = Sequence[tuple[str, str]]


@dataclass
class Reply:
    """What the scripted upstream answers: exactly these bytes, Content-Length added unless chunked."""

    status: int = 200
    body: bytes = b""
    headers: Fields = (("Content-Type", "application/json"),)
    chunked: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class ScriptedUpstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering each request by its `case` query parameter."""

    url: str = ""
    replies: dict[str, Reply] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def reply_for(self, path: str) -> Reply:
        case = parse_qs(urlsplit(path).query).get("case", [""])[0]
        return self.replies.get(case, Reply(404, b'{"error": "no such case"}'))


def _handler_class(upstream: ScriptedUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size + 2)[:size])
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, then a blank line
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self) -> None:
            body = self._body()
            upstream.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
            reply = upstream.reply_for(self.path)
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            payload = b"" if self.command == "HEAD" else reply.body
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(payload), 1000):
                    piece = payload[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                if reply.status not in (204, 304):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    return Handler


@contextlib.contextmanager
def scripted_upstream() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(upstream))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def send(
    base_url: str,
    method: str,
    path: str,
    headers: Fields = (),
    body: bytes | None = None,
    chunked: bool = False,
    timeout: float = 60,
) -> Answer:
    """One request with exactly these header fields (repeats kept) and body; the raw answer, not decoded."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if chunked and body is not None:
            for start in range(0, len(body), 7):
                piece = body[start : start + 7]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        elif body:
            conn.send(body)
        response = conn.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def interactions_of(cassette: Cassette, case: str) -> list[str]:
    """The ids of the recorded interactions of one case (by its `case` query parameter)."""
    return [ex.id for ex in cassette.exchanges if f"case={case}" in ex.request.url]


def load(path: Path) -> Cassette:
    return load_cassette(path)


# --- mounts -------------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {result.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at `where`: a disk that fills up (ENOSPC), or a read-only one (EROFS) even for root."""
    where.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount_read_only(where: Path) -> None:
    _mount("-o", "remount,ro", str(where))


# --- sockets --------------------------------------------------------------------------------------


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """Every TCP socket the process listens on and UDP socket it serves on, as (address, port), from /proc
    (no psutil). In reverse mode to an https upstream mitmproxy also serves HTTP/3 over UDP."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    tables = [
        (f"/proc/net/{proto}{v}", family, state)
        for proto, state in (("tcp", "0A"), ("udp", "07"))
        for v, family in (("", socket.AF_INET), ("6", socket.AF_INET6))
    ]  # 0A: LISTEN, 07: unconnected
    for table, family, serving in tables:
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != serving or inode not in inodes:
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints the address as 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


# --- an upstream that misbehaves on request -------------------------------------------------------


@dataclass
class FaultyUpstream:
    """A raw-socket HTTP/1.1 server on 127.0.0.1; the path's first segment says how it treats the request.

    /ok...: a JSON 200 naming the path (keep-alive). /reset: part of the body, then a TCP reset.
    /garbage: bytes that are not HTTP. /stall: never answers. /slow: answers once `release` is set.
    /big: a 5 MB body.
    `arrived` is set whenever a /stall or /slow request has been read.
    """

    BIG = 5 * 1024 * 1024

    url: str = ""
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    closing: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def ok_body(path: str) -> bytes:
        return b'{"ok": "%s"}' % path.encode()

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[str, bytes] | None:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
        path = head.split(b" ")[1].decode()
        return path, rest[length:]

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy may hang up first: that is its right
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        while not self.closing.is_set():
            read = self._read_request(conn, buffer)
            if read is None:
                return
            path, buffer = read
            kind = path.split("?")[0].strip("/").split("/")[0]
            if kind == "reset":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if kind == "garbage":
                conn.sendall(b"\x00\xffthis is not HTTP\r\n\r\n")
                return
            if kind in ("stall", "slow"):
                self.arrived.set()
                (self.closing if kind == "stall" else self.release).wait()
                if kind == "stall" or self.closing.is_set():
                    return
            body = self.ok_body(path) if kind != "big" else b"b" * self.BIG
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )


@contextlib.contextmanager
def faulty_upstream() -> Iterator[FaultyUpstream]:
    upstream = FaultyUpstream()
    server = socket.create_server(("127.0.0.1", 0))
    upstream.url = f"http://127.0.0.1:{server.getsockname()[1]}"

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=upstream.handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        upstream.closing.set()
        upstream.release.set()
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(10)


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 nobody listens on (connections are refused)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
