"""A full disk and a read-only disk, for real: a small tmpfs filled up by another writer, and
the buffer's directory remounted read-only under a running buffer. The loop's side must never
see an exception; the buffer counts, evicts or refuses, and carries on when the disk recovers.

Mounting needs root (CAP_SYS_ADMIN). Without it, the full disk is a quota injected into the
store's writes (nothing else produces ENOSPC on demand), and the read-only disk is a
directory without write permission.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_buffer_support import flagged, open_config

from edge.buffer import Buffer, BufferUnavailable, check
from edge.buffer.store import Store


def mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    return done.returncode == 0


def umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """An 8 MB filesystem: a real tmpfs, or (when mounting is not allowed) an injected quota."""
    where = tmp_path / "small"
    where.mkdir()
    if mount("-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(where)):
        try:
            yield where, "tmpfs"
        finally:
            umount(where)
        return
    quota = 8_000_000
    real_write = Store.write_image

    def write_image(self: Store, data: bytes, sha256: str, extension: str) -> Path:
        used = sum(p.stat().st_size for p in where.rglob("*") if p.is_file())
        if used + len(data) > quota:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data, sha256, extension)

    monkeypatch.setattr(Store, "write_image", write_image)
    yield where, "injected"


def ballast(path: Path, limit: int | None = None) -> int:
    """Another process's file that takes every free byte (or `limit`) of the filesystem."""
    written = 0
    chunk = b"\0" * 65536
    with path.open("wb") as f, contextlib.suppress(OSError):
        while limit is None or written < limit:
            f.write(chunk)
            f.flush()
            written += len(chunk)
    return written


def offer_all(buf: Buffer, start: int, n: int) -> list[bool]:
    results = []
    for i in range(start, start + n):
        results.append(buf.offer(flagged(i, size=(640, 480))))
        if buf.counters()["queued"] >= 4:
            assert buf.flush(10)
    assert buf.flush(10)
    return results


def test_a_full_disk_is_counted_evicted_from_and_survived(small_disk: tuple[Path, str]) -> None:
    where, kind = small_disk
    with Buffer(where, device="d", config=open_config(queue_size=8)) as buf:
        assert all(offer_all(buf, 0, 30))
        first = buf.counters()
        assert first["stored"] == 30
        assert first["disk_errors"] == 0

        # Another writer fills the disk to the last byte.
        if kind == "tmpfs":
            ballast(where / "other.log")
        else:
            ballast(where / "other.log", 8_000_000 - first["bytes"])
        assert all(offer_all(buf, 100, 40))  # the loop never sees the disk
        full = buf.counters()
        assert full["disk_errors"] > 0
        assert full["evicted"] > 0  # room made from the least valuable records...
        assert full["stored"] > first["stored"]  # ...for the new ones
        newest = max(r.metadata["frame"] for r in buf.pending(1000))
        assert newest == 139

        # The other writer frees its space: the buffer goes on by itself.
        (where / "other.log").unlink()
        offer_all(buf, 200, 10)
        after = buf.counters()
        assert after["stored"] == full["stored"] + 10
        assert after["disk_errors"] == full["disk_errors"]
        for r in buf.pending(1000):
            buf.image_bytes(r)
    assert check(where / "buffer").ok


def test_min_free_bytes_keeps_room_on_the_filesystem(small_disk: tuple[Path, str]) -> None:
    where, kind = small_disk
    if kind != "tmpfs":
        pytest.skip("free space is only real on a real filesystem")
    config = open_config(min_free_bytes=1_000_000)
    with Buffer(where, device="d", config=config) as buf:
        offer_all(buf, 0, 120)
        c = buf.counters()
        assert c["evicted"] > 0
        assert c["disk_errors"] == 0
        st = os.statvfs(where)
        # One batch may overshoot the floor by what it wrote before it looked.
        assert st.f_bavail * st.f_frsize > 1_000_000 - 8 * 100_000


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Any]:
    """Makes a directory read-only: a read-only bind mount over it (root), or chmod."""
    done: list[Path] = []
    as_root = os.geteuid() == 0

    def make(path: Path) -> None:
        if as_root:
            if not (
                mount("--bind", str(path), str(path)) and mount("-o", "remount,bind,ro", str(path))
            ):
                pytest.skip("root, but mounting is not permitted here")
        else:
            path.chmod(0o555)
        done.append(path)

    def undo() -> None:
        while done:
            path = done.pop()
            if as_root:
                umount(path)
            else:
                path.chmod(0o755)

    make.undo = undo  # type: ignore[attr-defined]
    yield make
    undo()


def test_a_disk_gone_read_only_is_counted_and_survived(tmp_path: Path, read_only: Any) -> None:
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        assert all(offer_all(buf, 0, 5))
        read_only(buf.root / "tmp")
        read_only(buf.root / "images")
        results = offer_all(buf, 10, 10)
        c = buf.counters()
        assert all(results)  # queued; the failure is the writer's, counted there
        assert c["disk_errors"] == 10
        assert c["dropped"] == 10
        assert c["stored"] == 5
        assert len(buf.pending(100)) == 5
        read_only.undo()
        offer_all(buf, 20, 3)
        assert buf.counters()["stored"] == 8
    assert check(tmp_path / "buffer").ok


def test_a_read_only_data_dir_at_start_is_one_clear_error(tmp_path: Path, read_only: Any) -> None:
    read_only(tmp_path)
    with pytest.raises(BufferUnavailable, match=r"buffer.*writable filesystem"):
        Buffer(tmp_path, device="d")
