"""Where a replay index keeps its recordings: the exchanges it was given, or a temporary file.

An index read from a cassette (`ReplayIndex.from_cassette`) keeps each recording out of the Python
heap: marshalled into an unlinked temporary file as the cassette is parsed, read back with `os.pread`
when it is played (from the page cache, which is not the process's resident memory). In memory stay
two numbers per recording. The cassette was redacted when it was recorded, so the file holds no
secret the cassette does not; it has no name and vanishes with its last index or the process.

A recording is two marshalled tuples: its head (the request's key parts, id, method, URL: what lookups,
near misses and the usage read) and the rest of the exchange.
"""

from __future__ import annotations

import marshal
import os
import tempfile
import threading
import weakref
from array import array
from collections.abc import Iterable
from typing import Protocol

from proxy.exchange import Exchange, Headers, Request, Response

KeyParts = tuple[str, str, str, tuple[tuple[str, str], ...], str]
"""A `RequestKey`'s fields, in order."""

Head = tuple[KeyParts, str, str, str]
"""A recording's key parts, id, method and URL."""


class RecordStore(Protocol):
    """Recordings by their position, 0 to len - 1; reads are thread-safe."""

    def __len__(self) -> int: ...

    def head(self, index: int) -> Head: ...

    def entry(self, index: int) -> tuple[KeyParts, Exchange]:
        """The key parts and the exchange, to serve (a fresh copy of the recording, from a file)."""
        ...


class ExchangeStore:
    """The exchanges an index was given, served as they are."""

    def __init__(self) -> None:
        self._entries: list[tuple[KeyParts, Exchange]] = []

    def append(self, key: KeyParts, exchange: Exchange) -> None:
        self._entries.append((key, exchange))

    def __len__(self) -> int:
        return len(self._entries)

    def head(self, index: int) -> Head:
        key, exchange = self._entries[index]
        return key, exchange.id, exchange.request.method, exchange.request.url

    def entry(self, index: int) -> tuple[KeyParts, Exchange]:
        return self._entries[index]


class StoreDamagedError(OSError):
    """A recording could not be read back whole from the store's file."""


_RECENT_BODIES = 64


class RecordFile:
    """Recordings marshalled to an unlinked temporary file; in memory, where each one starts and how long
    its head is. Append every recording, `seal()`, then read. The file is closed by `close()` or when the
    store is garbage collected (an evicted cached index whose copies are still playing keeps it open)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="tmproxy-replay-")  # noqa: SIM115 - closed by finalize
        self._closer = weakref.finalize(self, self._file.close)
        self._fd = self._file.fileno()
        self._starts = array("q", [0])  # recording i is the bytes _starts[i] to _starts[i + 1]
        self._head_sizes = array("I")
        # The last bodies served, each kept once: plays of equal bodies share one object (and its hash,
        # which the Top Picks template cache looks up).
        self._recent: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def append(self, key: KeyParts, exchange: Exchange) -> None:
        request, response = exchange.request, exchange.response
        assert response is not None, "only exchanges with a response are replayed"
        head = marshal.dumps((key, exchange.id, request.method, request.url))
        rest = marshal.dumps((
            tuple(request.headers), request.body, response.status, response.reason,
            tuple(response.headers), response.body, exchange.started_at, exchange.ended_at,
            exchange.client, None if exchange.fan is None else tuple(exchange.fan.items()),
        ))  # fmt: skip
        self._file.write(head)
        self._file.write(rest)
        self._head_sizes.append(len(head))
        self._starts.append(self._starts[-1] + len(head) + len(rest))

    def seal(self) -> None:
        """Done appending: what was written becomes readable."""
        self._file.flush()

    def close(self) -> None:
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    def __len__(self) -> int:
        return len(self._head_sizes)

    def _read(self, index: int, size: int) -> bytes:
        data = os.pread(self._fd, size, self._starts[index])
        if len(data) != size:
            raise StoreDamagedError(f"recording {index}: read {len(data)} of its {size} bytes")
        return data

    def head(self, index: int) -> Head:
        head: Head = marshal.loads(self._read(index, self._head_sizes[index]))
        return head

    def entry(self, index: int) -> tuple[KeyParts, Exchange]:
        data = self._read(index, self._starts[index + 1] - self._starts[index])
        key, exchange_id, method, url = marshal.loads(data)  # the head: marshal reads one value
        (request_headers, request_body, status, reason, response_headers, response_body,
         started_at, ended_at, client, fan) = marshal.loads(memoryview(data)[self._head_sizes[index]:])  # fmt: skip
        exchange = Exchange(
            Request(method, url, Headers(request_headers), request_body),
            Response(status, Headers(response_headers), self._recent_body(response_body), reason),
            started_at=started_at,
            ended_at=ended_at,
            client=client,
            id=exchange_id,
            fan=None if fan is None else dict(fan),
        )
        return key, exchange

    def _recent_body(self, body: bytes) -> bytes:
        with self._lock:
            kept = self._recent.get(body)
            if kept is not None:
                return kept
            if len(self._recent) >= _RECENT_BODIES:
                del self._recent[next(iter(self._recent))]
            self._recent[body] = body
            return body


def write_records(records: Iterable[tuple[KeyParts, Exchange]]) -> RecordFile:
    """A sealed `RecordFile` of `records`; its file is closed again if writing fails."""
    store = RecordFile()
    try:
        for key, exchange in records:
            store.append(key, exchange)
        store.seal()
    except BaseException:
        store.close()
        raise
    return store
