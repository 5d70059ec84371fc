"""The append-only, crash-safe cassette writer.

Each completed interaction is redacted, serialized on its own and appended with one positioned write,
closing comment included (see `layout`): O(1) per interaction, never a rewrite of the file. A `kill -9`
at any moment therefore leaves every earlier interaction intact; only the item being written can be
torn, and the next open for append truncates it away with a warning.
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from proxy import __version__
from proxy.cassette.errors import CassetteError
from proxy.cassette.format import exchange_to_interaction
from proxy.cassette.layout import EMPTY_INTERACTIONS, Layout, render_header, render_item, split_layout
from proxy.cassette.reader import inspect_tmproxy_file, parse_cassette
from proxy.cassette.redact import Redactor
from proxy.exchange import Exchange
from proxy.findings import Finding

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one writer per file is then up to the user
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def default_metadata(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a new cassette says about itself: the tmproxy version and when it was created (UTC)."""
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"tmproxy": __version__, "created": created, **(extra or {})}


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _lock(fd: int, path: Path) -> None:
    """Two writers appending to one file would interleave items: the second is refused."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CassetteError("already open for writing by another process", path) from None


class CassetteWriter:
    """Appends interactions to a cassette file; thread-safe.

    A missing (or empty) file is created with `metadata`; an existing tmproxy cassette is opened to append
    (record modes `new_episodes`/`all`), its torn tail repaired; a cassette in another layout (e.g. one
    vcrpy wrote) is converted once, redacted, then appended to. `overwrite=True` starts afresh.
    `fsync_interval`: seconds between fsyncs on append (None: only on close, 0: every append).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        metadata: Mapping[str, Any] | None = None,
        redactor: Redactor | None = None,
        overwrite: bool = False,
        fsync_interval: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.redactor = redactor or Redactor()
        self.fsync_interval = fsync_interval
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._last_fsync = time.monotonic()
        self._fd: int | None = None
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if overwrite or not exists:
            self._fd, layout = self._create(default_metadata(metadata), [])
        else:
            self._fd, layout = self._open_existing(metadata)
        self.count = len(layout.items)
        self._end = layout.complete_end
        self._empty_at = layout.empty_at

    def _create(self, metadata: Mapping[str, Any], items: list[bytes]) -> tuple[int, Layout]:
        """Write a whole new file beside the target, then rename it over: readers never see half a header."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise CassetteError(f"cannot create it: {exc.strerror or exc}", self.path) from None
        try:
            _lock(fd, self.path)
            data = render_header(metadata)
            if items:
                data = data[: -len(EMPTY_INTERACTIONS)] + b"\n" + b"".join(items)
            _write_all(fd, data, 0)
            os.fsync(fd)
            os.chmod(temp, 0o644)  # mkstemp's 0o600 would hide a cassette meant for a test suite
            os.replace(temp, self.path)
        except BaseException:
            os.close(fd)
            Path(temp).unlink(missing_ok=True)
            raise
        layout = split_layout(data)
        assert layout is not None, "render_header must produce tmproxy's layout"
        return fd, layout

    def _open_existing(self, metadata: Mapping[str, Any] | None) -> tuple[int, Layout]:
        fd = os.open(self.path, os.O_RDWR)
        _lock(fd, self.path)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        own = inspect_tmproxy_file(data, str(self.path))
        if own is None or own.unmarked:
            os.close(fd)
            return self._convert(data, metadata)
        if metadata:
            log.debug("appending to %s: its existing metadata is kept", self.path)
        self._repair(fd, own.layout, data, own.torn)
        return fd, own.layout

    def _repair(self, fd: int, layout: Layout, data: bytes, torn: str | None) -> None:
        """Truncate a torn last item (a crash mid-append); restore `interactions: []` if none is left."""
        if not layout.tail(data):
            return
        if layout.empty_at is not None:
            _write_all(fd, EMPTY_INTERACTIONS, layout.empty_at)
            layout.complete_end = layout.empty_at + len(EMPTY_INTERACTIONS)
        os.ftruncate(fd, layout.complete_end)
        os.fsync(fd)
        if torn:
            self.warnings.append(torn.replace("ignored", "removed"))
            log.warning("%s", self.warnings[-1])

    def _convert(self, data: bytes, metadata: Mapping[str, Any] | None) -> tuple[int, Layout]:
        """A cassette in another layout is rewritten once in tmproxy's (and redacted), keeping everything."""
        cassette = parse_cassette(data, str(self.path))
        items = []
        for exchange in cassette.exchanges:
            findings = [f for f in cassette.findings if f.exchange_id == exchange.id]
            items.append(self._render(exchange, findings))
        merged = {**default_metadata(metadata), **cassette.metadata}
        log.info("converted %s to tmproxy's append-only layout (%d interactions)", self.path, len(items))
        return self._create(merged, items)

    def _render(self, exchange: Exchange, findings: Iterable[Finding]) -> bytes:
        """Redact, serialize, and let the canary look at the result before it can reach the disk."""
        redacted, clean_findings = self.redactor.redact(exchange, findings)
        text = render_item(exchange_to_interaction(redacted, clean_findings))
        response_body = redacted.response.body if redacted.response else b""
        self.redactor.check(text, exchange.id, raw=(redacted.request.body, response_body))
        return text.encode("utf-8")

    def append(self, exchange: Exchange, findings: Iterable[Finding] = ()) -> bool:
        """Redact and append one exchange with its findings. False (nothing written) without a response.

        Raises SecretLeakError (nothing written) if the canary finds a secret seen earlier.
        """
        if exchange.response is None:
            log.debug(
                "not recording %s %s: it has no response", exchange.request.method, exchange.request.path
            )
            return False
        data = self._render(exchange, findings)
        with self._lock:
            fd = self._require_open()
            if self._empty_at is not None:
                offset, data = self._empty_at, b"\n" + data  # overwrites " []" of "interactions: []"
            else:
                offset = self._end
            try:
                _write_all(fd, data, offset)
            except OSError:
                self._cut_partial_write(fd, offset)
                raise
            self._end = offset + len(data)
            self._empty_at = None
            self.count += 1
            self._maybe_fsync(fd)
        return True

    def _cut_partial_write(self, fd: int, offset: int) -> None:
        """A failed append (disk full, I/O error) may have written part of its item: cut it off, so that
        the file stays a whole cassette, for vcrpy too, and the next append starts where this one did."""
        try:
            if self._empty_at is not None:
                _write_all(fd, EMPTY_INTERACTIONS, self._empty_at)
                offset = self._empty_at + len(EMPTY_INTERACTIONS)
            os.ftruncate(fd, offset)
        except OSError as exc:  # the torn item stays; readers skip it and the next writer truncates it
            log.warning("%s: could not cut off a partly written interaction: %s", self.path, exc)

    def _require_open(self) -> int:
        if self._fd is None:
            raise CassetteError("the writer is closed", self.path)
        return self._fd

    def _maybe_fsync(self, fd: int) -> None:
        if self.fsync_interval is None:
            return
        now = time.monotonic()
        if now - self._last_fsync >= self.fsync_interval:
            os.fsync(fd)
            self._last_fsync = now

    def flush(self) -> None:
        """fsync: what was appended survives a power loss, not only a crash."""
        with self._lock:
            os.fsync(self._require_open())
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> CassetteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
