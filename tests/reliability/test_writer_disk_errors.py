"""The writer on a failing disk, without mounting anything: writes that stop half way with ENOSPC or EIO.

(test_faults.py does the same through a real process on a real full tmpfs, where mounting is allowed.)
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import vcr

from proxy.cassette import CassetteWriter, load_cassette
from proxy.cassette import writer as writer_module
from proxy.exchange import Exchange, Headers, Request, Response


def interaction(n: int) -> Exchange:
    request = Request("GET", f"https://app.ticketmaster.com/top-picks/v1/events/E?apikey=k&n={n}")
    return Exchange(request, Response(200, Headers([("Content-Type", "text/plain")]), b"x" * 3000))


class FailingDisk:
    """os.pwrite on a disk that, while `full` is set, cannot grow a file: a write past the end stores part
    of its bytes, then fails; overwriting bytes the file already has still works."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.full = False
        self.real = os.pwrite

    def __call__(self, fd: int, data: bytes, offset: int) -> int:
        if not self.full or offset + len(data) <= os.fstat(fd).st_size:
            return self.real(fd, data, offset)
        if len(data) > 100:
            return self.real(fd, bytes(data[: len(data) // 2]), offset)
        raise OSError(self.error, os.strerror(self.error))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO, errno.EDQUOT])
@pytest.mark.parametrize("before", [0, 2], ids=["first-append", "later-append"])
def test_a_failed_append_leaves_a_whole_cassette_and_the_next_one_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, before: int
):
    disk = FailingDisk(error)
    monkeypatch.setattr(writer_module.os, "pwrite", disk)
    path = tmp_path / "c.yaml"
    with CassetteWriter(path) as writer:
        for n in range(before):
            assert writer.append(interaction(n))
        disk.full = True
        with pytest.raises(OSError) as failed:
            writer.append(interaction(99))
        assert failed.value.errno == error
        assert len(load_cassette(path).exchanges) == before and not load_cassette(path).warnings
        with vcr.use_cassette(str(path), record_mode="none") as played:
            assert len(played.data) == before
        disk.full = False
        assert writer.append(interaction(100))
    loaded = load_cassette(path)
    assert [ex.request.url.rsplit("n=", 1)[1] for ex in loaded.exchanges] == [*map(str, range(before)), "100"]
    assert not loaded.warnings


def test_close_releases_the_file_even_when_the_final_fsync_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "c.yaml"
    writer = CassetteWriter(path)
    writer.append(interaction(1))
    closed: list[int] = []
    real_close = os.close

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    def tracking_close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(writer_module.os, "fsync", failing_fsync)
    monkeypatch.setattr(writer_module.os, "close", tracking_close)
    with pytest.raises(OSError):
        writer.close()
    assert len(closed) == 1
    writer.close()  # closing again is a no-op, not a second error
    monkeypatch.undo()
    with CassetteWriter(path) as again:  # the lock went with the descriptor: the file can be reopened
        assert again.count == 1
