"""The bundled sample video `samples/line.mp4` and its ground truth `samples/line.json`: that
they describe each other, and that the committed script still makes the same plan. What the
model decides on the video is `edge run`'s business (tests/test_run.py)."""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import pytest
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "samples" / "line.mp4"
TRUTH = ROOT / "samples" / "line.json"
KINDS = {"item", "transit", "foreign", "dim", "blur", "covered", "frozen"}
#: What each kind of segment expects of the runtime.
EXPECT = {
    "item": "ACCEPT",
    "transit": "ANY",
    "foreign": "FLAG",
    "dim": "FLAG",
    "blur": "FLAG",
    "covered": "FLAG",
    "frozen": "FLAG",
}


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(TRUTH.read_text())
    return doc


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("make_sample_video")


def test_the_video_decodes_to_the_frames_of_its_ground_truth(truth: dict[str, Any]) -> None:
    cap = cv2.VideoCapture(str(VIDEO), cv2.CAP_FFMPEG)
    try:
        assert cap.isOpened()
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(truth["fps"])
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (truth["height"], truth["width"], 3)
            count += 1
    finally:
        cap.release()
    # Counted by decoding, not from the container's header, which may be an estimate.
    assert count == truth["frames"]
    assert 60 <= truth["duration_s"] <= 90
    assert truth["duration_s"] == pytest.approx(count / truth["fps"], abs=1e-3)


def test_the_committed_video_is_the_one_the_ground_truth_was_made_with(
    truth: dict[str, Any],
) -> None:
    assert VIDEO.stat().st_size < 5_000_000
    assert VIDEO.stat().st_size == truth["encoding"]["bytes"]
    assert hashlib.sha256(VIDEO.read_bytes()).hexdigest() == truth["encoding"]["sha256"]


def test_segments_tile_the_video_without_gaps_or_overlaps(truth: dict[str, Any]) -> None:
    segments = truth["segments"]
    assert segments[0]["start"] == 0
    assert segments[-1]["end"] == truth["frames"]
    for before, after in pairwise(segments):
        assert before["end"] == after["start"]
    for s in segments:
        assert s["start"] < s["end"]


def test_segments_say_what_is_expected_of_each_kind(
    truth: dict[str, Any], script: ModuleType
) -> None:
    for s in truth["segments"]:
        assert s["kind"] in KINDS
        assert s["expect"] == EXPECT[s["kind"]], s
        if s["kind"] == "item":
            assert s["label"] in script.CLASSES, s
            assert s["source"].startswith("fashion-mnist:"), s
        elif s["kind"] in ("transit", "foreign", "covered", "frozen"):
            assert s["label"] is None, s
    assert {s["kind"] for s in truth["segments"]} == KINDS


def test_each_item_at_the_station_is_a_segment_of_its_own(truth: dict[str, Any]) -> None:
    items = [s for s in truth["segments"] if s["kind"] == "item"]
    sources = [s["source"] for s in items]
    assert len(sources) == len(set(sources))
    # Two station stops are never one run of frames: the belt moves (or the feed freezes)
    # between them.
    for before, after in pairwise(truth["segments"]):
        assert not (before["kind"] == "item" and after["kind"] == "item"), (before, after)


def test_the_frozen_segment_follows_the_frame_it_repeats(truth: dict[str, Any]) -> None:
    (frozen,) = [s for s in truth["segments"] if s["kind"] == "frozen"]
    assert frozen["source"] == f"frame:{frozen['start'] - 1}"
    assert frozen["end"] - frozen["start"] >= 2 * truth["fps"]


def test_the_script_makes_the_committed_plan(truth: dict[str, Any], script: ModuleType) -> None:
    if not script.FASHION_MNIST.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
    committed = {k: v for k, v in truth.items() if k != "encoding"}
    assert script.plan() == committed
