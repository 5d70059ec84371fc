"""Replay indexes kept across tests in one process, built again when the cassette's file changes.

A test session replays the same few cassettes test after test; reading one is the costly part of
switching to it. The cache keeps each cassette's compact index (`ReplayIndex.from_cassette`) and hands
out `fresh()` copies: the recordings are shared, the play state (what was served, missed, unused)
belongs to each copy. Each index keeps its recordings in a temporary file of its own
(`proxy.replay_store.RecordFile`); an evicted or outdated index's file is closed when the last copy
still playing on it is gone, not before.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from proxy.cassette import CassetteError, RedactionRules
from proxy.replay import REPEAT_LAST, OnExhausted, ReplayIndex

DEFAULT_CAPACITY = 16

FileSignature = tuple[int, int, int]  # mtime_ns, size, inode


class CassetteCache:
    """The `capacity` most recently used cassettes' indexes, each with the file signature and the
    redaction rules (they shape the index's keys) it was built with."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[FileSignature, RedactionRules, ReplayIndex]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # reads of a file, for tests and benchmarks: a hit does not count

    def index(self, path: str | Path, rules: RedactionRules | None = None) -> ReplayIndex:
        """The shared index of the cassette at `path`, read again only if the file changed since (or
        other rules are asked for). Play on a `fresh()` copy, never on it. CassetteError as
        `load_cassette` raises it."""
        rules = rules or RedactionRules()
        key = os.path.abspath(path)
        try:
            stat = os.stat(key)
        except OSError as exc:
            raise CassetteError(f"cannot read: {exc.strerror or exc}", str(path)) from None
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == signature and entry[1] == rules:
                self._entries.move_to_end(key)
                return entry[2]
        index = ReplayIndex.from_cassette(path, rules=rules)  # outside the lock: others need not wait
        self.loads += 1
        with self._lock:
            self._entries[key] = (signature, rules, index)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return index

    def __len__(self) -> int:
        return len(self._entries)


_PROCESS_CACHE = CassetteCache()


def cached_index(path: str | Path, rules: RedactionRules | None = None) -> ReplayIndex:
    """This process's shared index of a cassette (see `CassetteCache.index`): to read, not to play."""
    return _PROCESS_CACHE.index(path, rules)


def replay_index(
    path: str | Path, rules: RedactionRules | None = None, on_exhausted: OnExhausted = REPEAT_LAST
) -> ReplayIndex:
    """A fresh index of a cassette to play on, built from this process's cached one."""
    return cached_index(path, rules).fresh(on_exhausted)


def has_interactions(path: str | Path, rules: RedactionRules | None = None) -> bool:
    """Whether a cassette file holds anything to replay (a missing or empty file does not)."""
    try:
        if os.stat(path).st_size == 0:
            return False
    except FileNotFoundError:
        return False
    return len(cached_index(path, rules)) > 0
