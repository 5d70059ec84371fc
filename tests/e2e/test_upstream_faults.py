"""A broken upstream gives the client a clear 502 and never takes the proxy down."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from proxy.processes import tmproxy


@contextmanager
def fake_upstream(on_connection: Callable[[socket.socket], None]) -> Iterator[str]:
    """A raw TCP server on 127.0.0.1 that treats each connection with `on_connection`."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            on_connection(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)


def stall(conn: socket.socket) -> None:
    """Accept and never answer."""


def reset_mid_body(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"\x00\xffthis is not HTTP\r\n\r\n")
    conn.close()


def get(url: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=30)


def test_stalled_upstream_times_out_with_502_and_the_proxy_keeps_serving():
    with fake_upstream(stall) as upstream:
        with tmproxy(
            "run", "--upstream", upstream, "--listen", "127.0.0.1:0", "--upstream-timeout", "0.5"
        ) as proxy:
            assert get(proxy.url + "/top-picks/v1/events/E").status_code == 502
            assert get(proxy.url + "/top-picks/v1/events/E").status_code == 502
            assert proxy.stop() == 0
    assert "upstream did not answer within" in proxy.stderr_text


def test_upstream_reset_mid_body_gives_502():
    with fake_upstream(reset_mid_body) as upstream:
        with tmproxy("run", "--upstream", upstream, "--listen", "127.0.0.1:0") as proxy:
            assert get(proxy.url + "/a").status_code == 502
            assert get(proxy.url + "/b").status_code == 502
            assert proxy.proc.poll() is None


def test_garbage_from_upstream_gives_502():
    with fake_upstream(garbage) as upstream:
        with tmproxy("run", "--upstream", upstream, "--listen", "127.0.0.1:0") as proxy:
            assert get(proxy.url + "/a").status_code == 502
            assert proxy.proc.poll() is None
