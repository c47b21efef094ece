"""Old buffers stay readable: a buffer of each format version, frozen in
tests/golden/buffer-v<N>/, is read by today's code exactly as it was written.

The golden files of a version were made once by ``python tests/test_buffer_golden.py --write``
with the code of that version (JPEG and PNG records, REVIEW and REJECT, a grey frame, an
acknowledged record so ids have a gap). Never regenerate one for a format change: --write adds
the directory of the new version next to them, and these tests read every one.

Version 1 has no sidecar files beside the images; the first writable open writes them and
makes it version 2.
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
import pytest
from test_buffer_support import flagged, frame_image, open_config

from edge.buffer import FORMAT_VERSION, Buffer, check
from edge.buffer.store import Store
from edge.records import Stored

GOLDENS = Path(__file__).parent / "golden"
VERSIONS = list(range(1, FORMAT_VERSION + 1))


def golden(version: int) -> Path:
    return GOLDENS / f"buffer-v{version}"


def golden_copy(tmp_path: Path, version: int = 1) -> Path:
    """A copy to work on: opening a buffer writes (lock, WAL, reserve), the golden must not."""
    data_dir = tmp_path / "data"
    shutil.copytree(golden(version) / "buffer", data_dir / "buffer")
    return data_dir


def expected(version: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((golden(version) / "expected.json").read_text())
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


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_is_its_format_as_committed(tmp_path: Path, version: int) -> None:
    data_dir = golden_copy(tmp_path, version)
    db = sqlite3.connect(data_dir / "buffer" / "index.sqlite")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == version
    finally:
        db.close()
    assert not (golden(version) / "buffer" / "index.sqlite-wal").exists()
    assert expected(version)["format_version"] == version
    sidecars = list((data_dir / "buffer" / "images").glob("*.json"))
    assert len(sidecars) == (0 if version == 1 else len(expected(version)["records"]))


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_checks_clean_read_only(tmp_path: Path, version: int) -> None:
    data_dir = golden_copy(tmp_path, version)
    report = check(data_dir / "buffer")
    assert report.ok
    assert report.problems == []
    assert report.records == len(expected(version)["records"])
    with Store(data_dir / "buffer", writable=False) as store:
        summary = store.summary()
    assert summary["format_version"] == version
    assert summary["records"] == len(expected(version)["records"])


def test_golden_v1_gets_its_sidecars_on_the_first_writable_open(tmp_path: Path) -> None:
    data_dir = golden_copy(tmp_path, 1)
    with Buffer(data_dir, device="today", config=open_config()) as buf:
        assert buf.reconciled.problems == []
        records = buf.pending(100)
    images = data_dir / "buffer" / "images"
    for r in records:
        assert json.loads((images / f"{r.sha256}.{r.extension}.json").read_text()) == r.metadata
    with Store(data_dir / "buffer", writable=False) as store:
        assert store.summary()["format_version"] == FORMAT_VERSION
    assert check(data_dir / "buffer").problems == []


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_reads_back_as_written(tmp_path: Path, version: int) -> None:
    data_dir = golden_copy(tmp_path, version)
    want = expected(version)
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
            "format_version": FORMAT_VERSION,
            "highest_id_ever": highest,
            "records": [as_written(r) for r in records],
        }
        (dest / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_buffer_golden.py --write  (only for a new format)")
    if golden(FORMAT_VERSION).exists():
        sys.exit(f"{golden(FORMAT_VERSION)} exists: golden files are never regenerated")
    write_golden(golden(FORMAT_VERSION))
    print(f"golden buffer written to {golden(FORMAT_VERSION)}")
