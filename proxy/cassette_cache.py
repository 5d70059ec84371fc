"""Parsed cassettes kept across tests in one process, reloaded when the file changes.

A test session replays the same few cassettes test after test; parsing one is the costly part of
switching to it. A cached cassette is shared, so its users must not change it: the replay index only
reads the exchanges (its play state lives in the index, which each test builds afresh).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from proxy.cassette import Cassette, CassetteError, load_cassette

DEFAULT_CAPACITY = 16

FileSignature = tuple[int, int, int]  # mtime_ns, size, inode


class CassetteCache:
    """The `capacity` most recently used cassettes, each with the file signature it was parsed from."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[FileSignature, Cassette]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # parses, for tests and benchmarks: a hit does not count

    def load(self, path: str | Path) -> Cassette:
        """The cassette at `path`, parsed again only if the file changed since; CassetteError as
        `load_cassette` raises it."""
        key = os.path.abspath(path)
        try:
            stat = os.stat(key)
        except OSError as exc:
            raise CassetteError(f"cannot read: {exc.strerror or exc}", str(path)) from None
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == signature:
                self._entries.move_to_end(key)
                return entry[1]
        cassette = load_cassette(path)  # outside the lock: another cassette need not wait for this one
        self.loads += 1
        with self._lock:
            self._entries[key] = (signature, cassette)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return cassette

    def __len__(self) -> int:
        return len(self._entries)


_PROCESS_CACHE = CassetteCache()


def load_cached(path: str | Path) -> Cassette:
    """`load_cassette`, through this process's cache."""
    return _PROCESS_CACHE.load(path)


def has_interactions(path: str | Path) -> bool:
    """Whether a cassette file holds anything to replay (a missing or empty file does not)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    return bool(load_cached(path).exchanges)
