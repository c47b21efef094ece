"""Old buffers stay readable: a buffer of format version 1, frozen in tests/golden/buffer-v1/,
is read by today's code exactly as it was written.

The golden files were made once by ``python tests/test_buffer_golden.py --write`` (JPEG and
PNG records, REVIEW and REJECT, a grey frame, an acknowledged record so ids have a gap). Never
regenerate them for a format change: add ``buffer-v2`` next to them, and keep this test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from test_buffer_support import flagged, frame_image, open_config

from edge.buffer import Buffer, check
from edge.buffer.store import Store
from edge.records import Stored

GOLDEN = Path(__file__).parent / "golden" / "buffer-v1"


def golden_copy(tmp_path: Path) -> Path:
    """A copy to work on: opening a buffer writes (lock, WAL, reserve), the golden must not."""
    data_dir = tmp_path / "data"
    shutil.copytree(GOLDEN / "buffer", data_dir / "buffer")
    return data_dir


def expected() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GOLDEN / "expected.json").read_text())
    return doc


def as_written(r: Stored) -> dict[str, Any]:
    """A record as expected.json keeps it: what --write saw, and what reading back must give."""
    return {
        "id": r.id,
        "sha256": r.sha256,
        "extension": r.extension,
        "captured_at": r.captured_at,
        "device": r.device,
        "model": r.model,
        "label": r.label,
        "decision": r.decision,
        "metadata": dict(r.metadata),
    }


def test_golden_v1_is_format_1_as_committed(tmp_path: Path) -> None:
    data_dir = golden_copy(tmp_path)
    db = sqlite3.connect(data_dir / "buffer" / "index.sqlite")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        db.close()
    assert not (GOLDEN / "buffer" / "index.sqlite-wal").exists()


def test_golden_v1_checks_clean_read_only(tmp_path: Path) -> None:
    data_dir = golden_copy(tmp_path)
    report = check(data_dir / "buffer")
    assert report.ok
    assert report.problems == []
    assert report.records == len(expected()["records"])
    with Store(data_dir / "buffer", writable=False) as store:
        summary = store.summary()
    assert summary["format_version"] == 1
    assert summary["records"] == len(expected()["records"])


def test_golden_v1_reads_back_as_written(tmp_path: Path) -> None:
    data_dir = golden_copy(tmp_path)
    want = expected()
    with Buffer(data_dir, device="today", config=open_config()) as buf:
        assert buf.reconciled.problems == []
        got = buf.pending(100)
        assert [as_written(r) for r in got] == want["records"]
        for r in got:
            data = buf.image_bytes(r)
            assert hashlib.sha256(data).hexdigest() == r.sha256
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert image.shape[:2] == (r.metadata["image"]["height"], r.metadata["image"]["width"])
        # New records go on after every id the old buffer ever gave out.
        assert buf.offer(flagged(100))
        assert buf.flush(10)
        assert buf.pending(100)[-1].id > want["highest_id_ever"]
        buf.acknowledge([r.id for r in got])
    assert check(data_dir / "buffer").ok


def write_golden(dest: Path) -> None:
    """Make the golden buffer (run once per format version; see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        size = (64, 48)
        with Buffer(data_dir, device="golden-01", config=open_config()) as buf:
            items = [
                flagged(0, size=size, confidence=0.41, label="shirt"),
                flagged(1, size=size, decision="REJECT", reason="ood:knn", label="bag"),
                flagged(
                    2,
                    image=cv2.cvtColor(frame_image(2, size), cv2.COLOR_BGR2GRAY),
                    reason="confidence",
                    label="sandal",
                    confidence=0.55,
                ),
                flagged(3, size=size, decision="REJECT", reason="camera:dark", drift="warn"),
            ]
            for item in items:
                assert buf.offer(item)
            assert buf.flush(10)
            first = buf.pending(1)[0]
            buf.acknowledge([first.id])
        with Buffer(data_dir, device="golden-01", config=open_config(format="png")) as buf:
            for i in (4, 5):
                assert buf.offer(flagged(i, size=size, label="boot", confidence=0.3))
            assert buf.flush(10)
            records = buf.pending(100)
        highest = max(r.id for r in records)
        # The copy is taken with the buffer closed: the WAL is checkpointed and gone.
        shutil.rmtree(dest, ignore_errors=True)
        (dest / "buffer").mkdir(parents=True)
        shutil.copy2(data_dir / "buffer" / "index.sqlite", dest / "buffer" / "index.sqlite")
        shutil.copytree(data_dir / "buffer" / "images", dest / "buffer" / "images")
        doc = {
            "format_version": 1,
            "highest_id_ever": highest,
            "records": [as_written(r) for r in records],
        }
        (dest / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_buffer_golden.py --write  (only for a new format)")
    write_golden(GOLDEN)
    print(f"golden buffer written to {GOLDEN}")
