"""Real crashes: a writer process is SIGKILLed at random points, over and over, on one buffer.

"Acknowledged" is observable: the child prints the ids of each commit from the buffer's
``on_stored`` callback, which runs only once the commit is durable; it prints the ids it is
about to acknowledge (as the uploader would) before calling ``acknowledge`` and again after.
After each kill, what the child printed must hold: every id reported stored and not being
acknowledged is there and readable, every acknowledged id is gone, and the only thing `check`
finds before the next open is crash leftovers (temp files, images without rows, rows without
sidecars), which the reconciler removes or indexes again.

This file is also the child: ``python tests/test_buffer_crash.py DATA FRAMES START SEED ...``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_buffer_support import flagged, frame_image, open_config

from edge.buffer import Buffer, check
from edge.buffer.store import Store

#: What a crash may leave: unfinished writes, an image without its sidecar, an image with its
#: sidecar whose commit never happened (indexed again), a row whose delete did not commit
#: after its sidecar was unlinked (the sidecar written again).
CRASH_LEFTOVERS = {"temp", "leftover", "unindexed", "sidecar"}


def child(data_dir: str, frames_path: str, start: int, seed: int, max_records: int) -> None:
    frames = np.load(frames_path)
    rng = random.Random(seed)

    def emit(line: str) -> None:
        # One write per line, well under PIPE_BUF: a kill never leaves half a line.
        os.write(1, (line + "\n").encode())

    def on_stored(records: list[object]) -> None:
        emit("S " + " ".join(str(r.id) for r in records))  # type: ignore[attr-defined]

    config = open_config(max_records=max_records, queue_size=8)
    buf = Buffer(data_dir, device="crash", config=config, on_stored=on_stored)
    emit("R")
    i = start
    while True:
        img = frames[i % len(frames)].copy()
        cv2.putText(img, str(i), (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        if buf.offer(flagged(i, image=img, t=1_700_000_000.0 + i, dhash=i)):
            i += 1
        else:
            time.sleep(0.002)
        if rng.random() < 0.1:
            ids = [r.id for r in buf.pending(rng.randint(1, 4))]
            if ids:
                emit("A " + " ".join(map(str, ids)))
                buf.acknowledge(ids)
                emit("a " + " ".join(map(str, ids)))


@dataclass
class Round:
    stored: set[int] = field(default_factory=set)
    acknowledging: set[int] = field(default_factory=set)
    acknowledged: set[int] = field(default_factory=set)


def kill_a_writer(
    data_dir: Path,
    frames: Path,
    start: int,
    rng: random.Random,
    max_records: int,
    log: Path,
) -> Round:
    """Run a child until a random point, SIGKILL it, and return what it had printed."""
    cmd = [sys.executable, __file__, str(data_dir), str(frames), str(start)]
    cmd += [str(rng.randrange(1 << 30)), str(max_records)]
    with log.open("ab") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        if rng.random() < 0.2:
            # Anywhere from start-up (imports, the reconciler) to the first commits.
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            wanted = rng.randint(1, 25)
            deadline = time.monotonic() + 30
            while sum(s.startswith("S") for s in lines) < wanted:
                line = proc.stdout.readline().decode()
                assert line, f"the child died by itself; see {log}"
                lines.append(line.strip())
                assert time.monotonic() < deadline, "the child stalled"
            time.sleep(rng.uniform(0.0, 0.02))
    finally:
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().decode()
        proc.stdout.close()
        proc.wait()
    lines += rest.splitlines()
    got = Round()
    for line in lines:
        kind, _, ids = line.partition(" ")
        numbers = {int(x) for x in ids.split()}
        {"S": got.stored, "A": got.acknowledging, "a": got.acknowledged}.get(kind, set()).update(
            numbers
        )
    return got


def verify(
    root: Path, alive: set[int], got: Round, *, evicting: bool, max_records: int
) -> set[int]:
    """Check what the kill left against what the child was told; returns the ids now there."""
    expected = (alive | got.stored) - got.acknowledging
    # Before any open: only the leftovers of interrupted writes and deletes, never damage.
    before = check(root)
    assert {p.kind for p in before.problems} <= CRASH_LEFTOVERS, before.problems

    with Buffer(root.parent, device="crash", config=open_config()) as buf:
        # Leftovers go silently; an image with its sidecar is a record again; nothing else
        # was wrong.
        again = buf.reconciled.problems
        assert {p.kind for p in again} <= {"unindexed"}, again
        assert all(p.repaired for p in again)
        present = {r.id for r in buf.pending(1_000_000)}
        for r in buf.pending(1_000_000):
            buf.image_bytes(r)  # complete and matching its sha256
    assert not present & got.acknowledged
    if evicting:
        # One class, equal value: eviction is oldest first, so what survives of the expected
        # records is the newest of them, without holes.
        kept = sorted(expected & present)
        assert kept == sorted(expected)[len(expected) - len(kept) :]
        # The reconciler indexes records again without evicting (the next writer does): a
        # child killed before its first commit leaves the count of the last round.
        assert len(present) <= max(max_records, len(alive)) + len(again)
    else:
        missing = expected - present
        assert not missing, f"acknowledged records lost: {sorted(missing)}"
    after = check(root)
    assert after.ok
    assert after.problems == []
    return present


def crash_rounds(tmp_path: Path, seed: int, rounds: int, max_records: int) -> None:
    rng = random.Random(seed)
    frames = tmp_path / "frames.npy"
    np.save(frames, np.stack([frame_image(i, (320, 240)) for i in range(8)]))
    data_dir = tmp_path / "data"
    root = data_dir / "buffer"
    alive: set[int] = set()
    total_stored = 0
    for n in range(rounds):
        got = kill_a_writer(
            data_dir, frames, n * 1_000_000, rng, max_records, tmp_path / "child.log"
        )
        total_stored += len(got.stored)
        if not root.exists():
            continue  # killed before it made the buffer
        alive = verify(root, alive, got, evicting=max_records < 1_000_000, max_records=max_records)
    assert total_stored > 0
    with Store(root, writable=False) as store:
        assert store.records == len(alive)


def test_sigkill_at_random_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    crash_rounds(tmp_path, seed=6, rounds=4, max_records=1_000_000)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_stress_with_eviction(tmp_path: Path, seed: int) -> None:
    crash_rounds(tmp_path, seed=seed, rounds=40, max_records=40)


@pytest.mark.slow
def test_sigkill_stress(tmp_path: Path) -> None:
    crash_rounds(tmp_path, seed=3, rounds=40, max_records=1_000_000)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
