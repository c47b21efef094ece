"""A damaged index is not the end of the buffer: real SQLite files corrupted for real (garbage
over the b-tree header at offset 100, garbage in a page of the records table found through the
page size), and a WAL deleted after a real writer was SIGKILLed. The images and their sidecars
are what the records are made again from; nothing that could be a record is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from test_buffer_golden import golden_copy
from test_buffer_support import flagged, frame_image, open_config

from edge.buffer import Buffer, check
from edge.buffer.store import Store
from edge.cli import main

GARBAGE = bytes(range(256)) * 4


def fill(data_dir: Path, n: int) -> dict[str, dict[str, object]]:
    """`n` records; returns their sidecars by image file name."""
    with Buffer(data_dir, device="d", config=open_config()) as buf:
        for i in range(n):
            assert buf.offer(flagged(i, label=("shirt", "bag")[i % 2], confidence=0.3 + i / 100))
            if i % 8 == 7:
                assert buf.flush(10)  # the queue holds fewer
        assert buf.flush(10)
        return {f"{r.sha256}.{r.extension}": dict(r.metadata) for r in buf.pending(1000)}


def index_of(data_dir: Path) -> Path:
    return data_dir / "buffer" / "index.sqlite"


def scribble(path: Path, offset: int, data: bytes = GARBAGE) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def records_page(index: Path) -> int:
    """The byte offset of the records table's root page (an interior page once the table
    spans several), through the page size the file's header gives."""
    page_size = int.from_bytes(index.read_bytes()[16:18], "big")
    with sqlite3.connect(index) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records'").fetchone()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.close()
    assert 1 < root <= pages
    return (root - 1) * page_size


def held(buf: Buffer) -> dict[str, dict[str, object]]:
    return {f"{r.sha256}.{r.extension}": dict(r.metadata) for r in buf.pending(1000)}


def quarantined(data_dir: Path) -> list[str]:
    q = data_dir / "buffer" / "quarantine"
    return sorted(os.listdir(q)) if q.is_dir() else []


def edge_buffer(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["buffer", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_record_has_its_sidecar_on_disk_until_it_is_deleted(tmp_path: Path) -> None:
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        for i in range(3):
            assert buf.offer(flagged(i))
        assert buf.flush(10)
        records = buf.pending(10)
        images = tmp_path / "buffer" / "images"
        for r in records:
            text = (images / f"{r.sha256}.{r.extension}.json").read_text()
            assert json.loads(text) == r.metadata
        buf.acknowledge([records[0].id])
        gone = records[0]
        assert not (images / f"{gone.sha256}.{gone.extension}.json").exists()
        assert not (images / f"{gone.sha256}.{gone.extension}").exists()
    assert check(tmp_path / "buffer").problems == []


def test_garbage_at_offset_100_is_set_aside_and_rebuilt_from_the_sidecars(tmp_path: Path) -> None:
    before = fill(tmp_path, 8)
    scribble(index_of(tmp_path), 100)
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        assert buf.rebuilt is not None
        assert buf.rebuilt.startswith("buffer index was corrupt: set aside as ")
        assert buf.rebuilt.endswith("rebuilt 8 records from image sidecars")
        assert held(buf) == before
        # Writing goes on, into the new index.
        assert buf.offer(flagged(100))
        assert buf.flush(10)
        assert len(buf.pending(100)) == 9
    aside = quarantined(tmp_path)
    assert len(aside) == 1
    assert aside[0].endswith("-index.sqlite")
    assert aside[0][:8].isdigit()  # the time it was set aside
    assert check(tmp_path / "buffer").ok


def test_garbage_in_a_data_page_is_found_at_start_and_rebuilt(tmp_path: Path) -> None:
    before = fill(tmp_path, 40)
    index = index_of(tmp_path)
    scribble(index, records_page(index))
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        assert buf.rebuilt is not None
        assert buf.rebuilt.endswith("rebuilt 40 records from image sidecars")
        assert held(buf) == before
    assert check(tmp_path / "buffer").ok


def test_new_ids_after_a_rebuild_are_above_every_old_one(tmp_path: Path) -> None:
    # The upload journal names records by id: a rebuilt index must not give an old id to
    # another record.
    fill(tmp_path, 5)
    with Store(tmp_path / "buffer", writable=False) as store:
        highest = max(store.ids())
    scribble(index_of(tmp_path), 100)
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        assert min(r.id for r in buf.pending(100)) > highest


@pytest.mark.parametrize("page", ["header", "records"])
def test_edge_buffer_commands_on_a_corrupt_index_say_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str
) -> None:
    before = fill(tmp_path, 30)
    index = index_of(tmp_path)
    scribble(index, 100 if page == "header" else records_page(index))
    data = ["--data-dir", str(tmp_path)]
    if page == "header":  # a damaged records page can still be counted past
        for argv in (["ls"], ["stats"], ["export", "--format", "jsonl"]):
            code, out, err = edge_buffer([*argv, *data], capsys)
            assert code == 2, (argv, out, err)
            assert err.count("\n") == 1, err
            assert "the buffer index is corrupt" in err
            assert "check --repair" in err
            assert "Traceback" not in out + err
    code, out, err = edge_buffer(["check", *data], capsys)
    assert code == 1
    assert "PROBLEM: index" in out
    assert "the buffer index is corrupt" in out
    assert "Traceback" not in out + err
    assert quarantined(tmp_path) == []  # check alone changes nothing

    code, out, err = edge_buffer(["check", "--repair", *data], capsys)
    assert code == 0, out + err
    assert "repaired: index" in out
    assert out.strip().endswith("30 records; ok")
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        assert held(buf) == before
    code, out, _ = edge_buffer(["ls", *data], capsys)
    assert code == 0
    assert len(out.splitlines()) == 31


def test_a_corrupt_format_1_buffer_keeps_its_images_in_quarantine(tmp_path: Path) -> None:
    # No sidecars, and nothing readable left in the index: the images cannot be made records
    # again, and are kept, never deleted.
    data_dir = golden_copy(tmp_path)
    images = sorted(os.listdir(data_dir / "buffer" / "images"))
    scribble(index_of(data_dir), 100)
    with Buffer(data_dir, device="today", config=open_config()) as buf:
        assert buf.rebuilt is not None
        assert "rebuilt 0 records" in buf.rebuilt
        assert buf.pending(100) == []
        assert buf.offer(flagged(1))
        assert buf.flush(10)
    aside = quarantined(data_dir)
    assert sum(name.endswith("-index.sqlite") for name in aside) == 1
    for name in images:
        assert any(q.endswith(f"-{name}") for q in aside), name


def test_a_format_1_buffer_with_a_damaged_page_gives_back_the_rows_it_still_can(
    tmp_path: Path,
) -> None:
    # Only the old index knows these records; what SQLite still reads of it becomes records
    # again (with a sidecar now), the rest is kept in quarantine.
    data_dir = golden_copy(tmp_path)
    images = set(os.listdir(data_dir / "buffer" / "images"))
    index = index_of(data_dir)
    # The records_age index page: the table itself is intact, quick_check is not.
    page_size = int.from_bytes(index.read_bytes()[16:18], "big")
    with sqlite3.connect(index) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'records_age'"
        ).fetchone()
    db.close()
    scribble(index, (root - 1) * page_size + 8, GARBAGE[:64])
    with Buffer(data_dir, device="today", config=open_config()) as buf:
        assert buf.rebuilt is not None
        back = {f"{r.sha256}.{r.extension}" for r in buf.pending(100)}
    assert back
    assert back <= images
    kept = quarantined(data_dir)
    for name in images - back:
        assert any(q.endswith(f"-{name}") for q in kept), name
    assert check(data_dir / "buffer").ok


def test_edge_run_rebuilds_a_corrupt_index_and_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "edge-data"
    before = fill(data_dir, 6)
    scribble(index_of(data_dir), 100)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            "--max-frames",
            "40",
            "--no-metrics",
            "--json",
            "s.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "buffer" in line]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("edge run: buffer index was corrupt: set aside as ")
    assert said[0].endswith(", rebuilt 6 records from image sidecars")
    assert any(q.endswith("-index.sqlite") for q in quarantined(data_dir))
    # The rebuilt records went on to the store like any others.
    outbox = data_dir / "outbox"
    shipped = {p.name for p in outbox.rglob("*") if p.is_file()}
    for name in before:
        assert name in shipped, name


# -- a deleted WAL after a SIGKILL ---------------------------------------------------------


def writer_child(data_dir: str, frames_path: str) -> None:
    """Stores frames until killed; prints each commit's sha256s once it is durable."""
    frames = np.load(frames_path)

    def on_stored(records: list[object]) -> None:
        line = "S " + " ".join(f"{r.sha256}.{r.extension}" for r in records)  # type: ignore[attr-defined]
        os.write(1, (line + "\n").encode())

    # No checkpoint: the commits stay in the WAL, as they do between checkpoints.
    buf = Buffer(data_dir, device="crash", config=open_config(queue_size=4), on_stored=on_stored)
    assert buf._store.conn is not None
    buf._store.conn.execute("PRAGMA wal_autocheckpoint=0")
    i = 0
    while True:
        img = frames[i % len(frames)].copy()
        img[0, 0] = i % 256
        img[0, 1] = i // 256
        if buf.offer(flagged(i, image=img, dhash=i * 0x9E3779B97F4A7C15 & (2**64 - 1))):
            i += 1
        else:
            buf.flush(1)


def test_a_deleted_wal_after_sigkill_reindexes_the_images_instead_of_deleting_them(
    tmp_path: Path,
) -> None:
    frames = tmp_path / "frames.npy"
    np.save(frames, np.stack([frame_image(i, (160, 120)) for i in range(4)]))
    data_dir = tmp_path / "data"
    fill(data_dir, 3)  # in the index file itself
    proc = subprocess.Popen(
        [sys.executable, __file__, str(data_dir), str(frames)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    stored: set[str] = set()
    try:
        while len(stored) < 10:
            line = proc.stdout.readline().decode()
            assert line, "the writer died by itself"
            if line.startswith("S "):
                stored.update(line.split()[1:])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.stdout.close()
        proc.wait()
    root = data_dir / "buffer"
    wal = Path(f"{root / 'index.sqlite'}-wal")
    assert wal.stat().st_size > 0
    wal.unlink()
    Path(f"{root / 'index.sqlite'}-shm").unlink(missing_ok=True)
    with Store(root, writable=False) as store:
        known = {f"{r.sha256}.{r.extension}" for r in store.rows()}
    assert len(stored - known) >= 10  # the index lost them with its WAL
    # Images with their sidecar (one written just before the kill may have none yet: that
    # one was never a record, and goes).
    on_disk = {n.removesuffix(".json") for n in os.listdir(root / "images") if n.endswith(".json")}

    with Buffer(data_dir, device="d", config=open_config()) as buf:
        again = [p for p in buf.reconciled.problems if p.kind == "unindexed"]
        assert again
        assert all(p.repaired for p in again)
        assert {p.kind for p in buf.reconciled.problems} == {"unindexed"}
        present = {f"{r.sha256}.{r.extension}" for r in buf.pending(1000)}
        for r in buf.pending(1000):
            assert hashlib.sha256(buf.image_bytes(r)).hexdigest() == r.sha256
    assert stored <= present
    # Every image that was on disk is a record again (none could not be, here).
    assert on_disk == present
    assert quarantined(data_dir) == []
    assert check(root).ok


if __name__ == "__main__":
    writer_child(sys.argv[1], sys.argv[2])
