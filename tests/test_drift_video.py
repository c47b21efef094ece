"""The drift monitor through ``edge run`` on line videos: a long one rendered here with the sample
video's own functions (scripts/make_sample_video.py: the same belt, items, camera and encoder
quality), whose lights are halved after a long stable stretch, and the bundled sample video.

Figures on the rendered line (seed SEED + 8: 4 101 frames, 120 normal objects, then 18 under
half the light from frame 3 540; the default monitor config, so the reference is the line's
own first 1 500 frames):
- stable: every frame "ok" over the 2 040 frames from the end of the warm-up to the change;
  the closest any monitor came to its WARN thresholds was 0.38 of them (bright);
- change: WARN 184 and ALERT 259 frames (17 s at 15 frames/s) after the first dimmed frame,
  first on the REJECT rate (the gate refuses most dimmed frames), then sharpness, bright and
  contrast. Against the calibration instead, the same line is in ALERT from frame 324 on.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _scripts import load_script

from edge.defaults import BUNDLED_MODEL
from edge.drift import Monitor, MonitorConfig
from edge.judge.calibration import load_calibration
from edge.model import load_model
from edge.runtime import open_runner
from edge.runtime.config import load_config

NORMAL, DIMMED = 120, 18  # objects: 3 540 frames of a normal line, then 561 dimmed
DIM = 0.5  # half the light: a bank of lamps out, not the sample video's near-darkness
#: Frames from the first dimmed frame to ALERT: measured 259.
ALERT_WITHIN = 400

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")


@dataclass(frozen=True)
class Line:
    change: int  # the first dimmed frame
    frames: int
    summary: dict[str, Any]
    lines: list[dict[str, Any]]


def _run(overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = Path(overrides["results"])
    config = load_config(None, {"metrics.enabled": False, **overrides})
    summary = open_runner(config).run()
    return summary, [json.loads(line) for line in results.read_text().splitlines()]


@pytest.fixture(scope="session")
def line(tmp_path_factory: pytest.TempPathFactory) -> Line:
    """The rendered line through ``edge run`` with the default monitor, once per session
    (~35 s on 2 busy cores: rendering is most of it). x264's "veryfast" preset instead of
    the committed "slow" at the same CRF: on the sample video's own plan the model's
    decisions per kind of frame are the same to a frame or two (checked with the script's
    ``check()``)."""
    script = load_script("make_sample_video")
    tmp = tmp_path_factory.mktemp("drift-video")
    video = tmp / "line.mp4"
    plan = script.render(
        video,
        [("normal", NORMAL), ("dim", DIMMED)],
        seed=script.SEED + 8,
        dim=DIM,
        preset="veryfast",
    )
    change = next(c.start for c in plan.cycles if c.condition == "dim")
    summary, lines = _run({"source.uri": str(video), "results": str(tmp / "results.jsonl")})
    return Line(change, plan.frames, summary, lines)


def test_every_frame_of_the_line_has_a_drift_state(line: Line) -> None:
    assert len(line.lines) == line.frames == line.summary["frames"]
    assert {r["drift"] for r in line.lines} <= {"ok", "warn", "alert"}
    reference = line.summary["drift"]["reference"]
    warmup = MonitorConfig().warmup_frames
    assert reference == {"kind": "warmup", "frames": warmup, "of": warmup, "status": "ready"}


def test_no_false_alarm_over_the_stable_line(line: Line) -> None:
    warmup = MonitorConfig().warmup_frames
    assert line.change - warmup >= 2000, "the stable stretch after the warm-up is too short"
    stable = [r["drift"] for r in line.lines[: line.change]]
    assert set(stable) == {"ok"}, next(i for i, s in enumerate(stable) if s != "ok")
    assert all(e["frame"] >= line.change for e in line.summary["drift"]["events"])
    # The margin: the same frames through a monitor of the same config, read at every check.
    cfg = MonitorConfig()
    loaded = load_calibration(BUNDLED_MODEL)
    assert loaded is not None
    labels = load_model(BUNDLED_MODEL).labels
    monitor = Monitor.from_calibration(loaded[0], cfg, labels=labels)
    closest = 0.0
    names: dict[str, float] = {}
    for i, r in enumerate(line.lines[: line.change]):
        label = labels.index(r["label"])
        assert monitor.update({**r["stats"], **r["scores"]}, label, r["decision"], r["t"]) == "ok"
        if (i + 1) % cfg.check_every or not monitor.snapshot()["evaluated"]:
            continue
        for name, m in monitor.snapshot()["monitors"].items():
            if "psi" in m:
                effect = m["psi"] / cfg.psi_warn
            else:
                effect = (m["rate"] - m["expected"]) / cfg.rate_warn
            significance = -math.log10(max(m["p"], 1e-300)) / -math.log10(cfg.p_warn)
            names[name] = max(names.get(name, 0.0), min(effect, significance))
            closest = max(closest, names[name])
    assert closest < 0.7, names  # measured 0.38 (bright)


def test_dimmed_lights_alert_within_a_bounded_number_of_frames(line: Line) -> None:
    states = [r["drift"] for r in line.lines]
    delay = next(i - line.change for i in range(line.change, len(states)) if states[i] == "alert")
    assert delay <= ALERT_WITHIN, delay
    # Once in ALERT it stays there while the lights are down: no flapping.
    assert set(states[line.change + delay :]) == {"alert"}
    drift = line.summary["drift"]
    assert drift["state"] == "alert"
    overall = [e for e in drift["events"] if e["monitor"] == "overall"]
    assert overall[-1]["state"] == "alert"
    assert overall[-1]["frame"] == line.change + delay + 1  # frames seen, the alerting one too
    # The events name what moved: the REJECT rate and the frame statistics of the light.
    moved = {e["monitor"] for e in drift["events"] if e["state"] != "ok"}
    assert {"reject_rate", "contrast", "bright"} <= moved, moved
    assert {"contrast", "bright", "sharpness"} <= set(drift["moved"]), drift["moved"]
    contrast = drift["monitors"]["contrast"]
    assert contrast["median"] < contrast["reference_median"]


# -- the bundled sample video ----------------------------------------------------------------


def test_the_sample_video_shows_the_drift_states_in_its_summary(
    tmp_path: Path,
) -> None:
    # 1 316 frames: shorter than the default warm-up, so the whole video is the station's
    # first look at itself. The summary says so; every frame is "ok".
    summary, lines = _run({"results": str(tmp_path / "default.jsonl")})
    drift = summary["drift"]
    assert drift["enabled"]
    assert (drift["state"], drift["evaluated"], drift["events"]) == ("ok", False, [])
    assert drift["reference"] == {
        "kind": "warmup",
        "frames": 1300,  # whole checks of 25 frames
        "of": MonitorConfig().warmup_frames,
        "status": "warming up",
    }
    assert {m["state"] for m in drift["monitors"].values()} == {"ok"}
    assert {r["drift"] for r in lines} == {"ok"}

    # Against the calibration (Fashion-MNIST images) the line is never normal: the belt,
    # the items in transit, foreign objects. ALERT, with the monitors that moved.
    summary, lines = _run(
        {"results": str(tmp_path / "calibration.jsonl"), "monitor.reference": "calibration"}
    )
    drift = summary["drift"]
    assert drift["state"] == "alert"
    assert drift["reference"]["kind"] == "calibration"
    (alert,) = [e for e in drift["events"] if e["monitor"] == "overall"]
    assert (alert["previous"], alert["state"]) == ("ok", "alert")
    assert {"knn", "mahalanobis"} <= set(alert["moved"])
    assert [r["drift"] for r in lines][alert["frame"] - 1 :] == ["alert"] * (
        len(lines) - alert["frame"] + 1
    )
    json.dumps(summary, allow_nan=False)
