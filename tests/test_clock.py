"""The wall clock steps while `edge run` runs (NTP corrects it, a device boots in 1970 and
learns the date later). Durations — the buffer's rate limits and near-duplicate window, the
drift monitor's window — are measured on the monotonic clock; the wall clock only dates the
records. Unit tests inject both clocks; the end-to-end test steps the wall clock of a real
`edge run` with libfaketime (Debian's `faketime`)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _upload_outbox import FileOutbox, fill, photo_jpegs
from _waiting import HANG, wait_until
from test_buffer_support import T0, flagged

from edge.buffer import BufferConfig, RateLimit
from edge.buffer.retention import Admission
from edge.records import Flagged
from edge.runtime import capture as capture_module
from edge.runtime import open_runner
from edge.runtime.config import load_config
from edge.upload import UploadConfig, Uploader
from edge.upload.directory import DirectoryTarget

HOUR, DAY = 3600.0, 86400.0
# Frames (one a second) at which the wall clock steps; off the 10 s dedup grid, so a frame
# wrongly admitted at a step is not one the window admits anyway.
BACK_AT, FORWARD_AT = 305, 605


def stepped(i: int) -> float:
    """The wall clock at frame i: back an hour at BACK_AT, then forward a day at FORWARD_AT."""
    return T0 + i - (HOUR if i >= BACK_AT else 0.0) + (DAY if i >= FORWARD_AT else 0.0)


def steady(i: int) -> float:
    return T0 + i


SMALL = np.zeros((8, 8, 3), np.uint8)


def admitted(
    config: BufferConfig, wall: Callable[[int], float], dhash: Callable[[int], int]
) -> list[int]:
    """The frames of a 900 s stream (one a second on the monotonic clock) the buffer admits."""
    admission = Admission(config)
    return [
        i
        for i in range(900)
        if admission.admit(flagged(i, image=SMALL, t=wall(i), clock=float(i), dhash=dhash(i)))
        is None
    ]


def distinct(i: int) -> int:
    return int(np.random.default_rng(i).integers(0, 2**63))  # far apart: never near-duplicates


def test_rate_limits_keep_admitting_when_the_wall_clock_steps_back_an_hour() -> None:
    # The default limits (30 a minute, 600 an hour per label; 60/1200 per reason).
    config = BufferConfig(dedup_window=0.0)
    reference = admitted(config, steady, distinct)
    taken = admitted(config, stepped, distinct)
    # On the wall clock every take after the step is "an hour before" the last 30, and the
    # minute limit refused all 300 frames until the next step.
    assert len([i for i in taken if BACK_AT <= i < FORWARD_AT]) == 150  # 30 a minute
    assert taken == reference


def test_the_near_duplicate_window_is_measured_on_the_monotonic_clock() -> None:
    config = BufferConfig(dedup_window=10.0, label_rate=RateLimit(), reason_rate=RateLimit())
    same = 0x0123_4567_89AB_CDEF
    reference = admitted(config, steady, lambda i: same)
    assert reference == list(range(0, 900, 10))  # the same picture once per 10 s window
    # On the wall clock the frame after each step was an hour (a day) away from its twin.
    assert admitted(config, stepped, lambda i: same) == reference


class Recorder:
    """A flagged-frame sink that keeps what it is offered."""

    def __init__(self) -> None:
        self.items: list[Flagged] = []

    def offer(self, item: Flagged) -> bool:
        self.items.append(item)
        return True

    def close(self, timeout: float = 5.0) -> None:
        pass


def test_the_drift_window_keeps_its_frames_when_the_wall_clock_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames, back_at, forward_at = 700, 200, 500
    calls = iter(range(10**9))

    def wall() -> float:
        """The capture's wall clock: 15 frames/s, back an hour at frame 200, forward a day
        at frame 500 (capture reads it once per frame)."""
        n = next(calls)
        return T0 + n / 15 - (HOUR if n >= back_at else 0.0) + (DAY if n >= forward_at else 0.0)

    clocks = SimpleNamespace(time=wall, monotonic=time.monotonic, perf_counter=time.perf_counter)
    monkeypatch.setattr(capture_module, "time", clocks)
    config = load_config(
        None,
        {
            "source.uri": "synthetic:320x240",
            "max_frames": frames,
            "metrics.enabled": False,
            "monitor.reference": "calibration",  # judges from the first frame: no warm-up
            "policy.reject_sample_every": 1,
        },
    )
    recorder = Recorder()
    runner = open_runner(config, flagged=recorder)
    summary = runner.run()
    assert summary["frames"] == frames
    window = summary["drift"]["window"]
    # On the wall clock the step forward made every frame before it a day old: the window
    # dropped them and held 200 frames, too few to judge (min_frames 300).
    assert window["frames"] == config.monitor.window_frames == 500
    assert 0 < window["seconds"] < config.monitor.window_seconds
    # Each flagged frame carries both clocks: the wall clock as it was (steps and all) for the
    # record, the monotonic one for the buffer's windows.
    items = recorder.items
    assert items, "the synthetic pattern is expected to be flagged"
    assert all(a.monotonic < b.monotonic for a, b in itertools.pairwise(items))
    walls = [item.captured_at for item in items]
    assert any(b < a - HOUR / 2 for a, b in itertools.pairwise(walls))  # the step back is recorded


def test_a_wall_clock_step_never_leaves_the_upload_window_waiting_forever_or_spinning(
    tmp_path: Path,
) -> None:
    """The daily window is local wall time by design; a step may change when it opens, but
    each wait is capped at an hour (the clock is looked at again) and is never zero outside
    the window. The uploader's own waits run on threading's monotonic timeouts: this drives
    its schedule with a fake wait that moves the wall clock instead."""
    outbox = FileOutbox(tmp_path / "outbox")
    fill(outbox, photo_jpegs(2))
    wall = [dt.datetime(2025, 11, 22, 12, 0)]  # ten hours before the window opens
    waits: list[tuple[float, bool]] = []
    config = UploadConfig(window="22:00-06:00", interval=60.0)
    uploader = Uploader(outbox, DirectoryTarget(tmp_path / "store"), config, now=lambda: wall[0])

    class Wake:
        def wait(self, delay: float) -> bool:
            waits.append((delay, config.daily_window().contains(wall[0])))  # type: ignore[union-attr]
            if len(waits) == 3:
                wall[0] -= dt.timedelta(hours=1)  # NTP steps back mid-wait
            elif len(waits) == 6:
                wall[0] += dt.timedelta(days=1)  # and forward a day
            else:
                wall[0] += dt.timedelta(seconds=delay)
            if not outbox.ids() or len(waits) > 100:
                uploader._stopping.set()
            return False

        def set(self) -> None:
            pass

        def clear(self) -> None:
            pass

    uploader._wake = Wake()  # type: ignore[assignment]
    uploader._run()
    assert not outbox.ids()  # uploaded once the window opened
    outside = [delay for delay, inside in waits if not inside][1:]  # the first wait is 0
    assert outside
    assert all(0 < delay <= HOUR for delay in outside)
    assert len(waits) < 30  # an hour at a time, about a day at most


# -- a real `edge run` under libfaketime --------------------------------------------------------

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def libfaketime() -> Path:
    """libfaketime's preload library, as Debian installs it; skips the test without it."""
    try:
        files = subprocess.run(
            ["dpkg", "-L", "libfaketime"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = []
    found = [Path(f) for f in files if f.endswith("/faketime/libfaketime.so.1")]
    if not found or not found[0].exists():
        pytest.skip(
            "libfaketime is not installed: the Debian package faketime (`make apt` installs it) "
            "moves the wall clock of a real `edge run`"
        )
    return found[0]


#: A minute's limit needs a run longer than a minute to show: the frames of the minute after
#: the first are admitted again only on a clock that did not step back.
FPS, FRAMES = 10, 660
CONFIG = f"""
[source]
uri = "frames"
realtime = true
fps = {FPS}
[policy]
reject_sample_every = 1
[buffer]
dedup_window = 0
label_rate = {{}}
reason_rate = {{per_minute = 5}}
"""


def stored_frames(data_dir: Path) -> list[int]:
    """The frame ids of the records the run stored (all uploaded to its local outbox)."""
    sidecars = (data_dir / "outbox").rglob("*.json")
    docs = [json.loads(p.read_text()) for p in sidecars if "manifests" not in p.parts]
    return sorted(int(doc["frame"]) for doc in docs)


def test_edge_run_keeps_storing_after_ntp_steps_the_clock_back_an_hour(tmp_path: Path) -> None:
    """Two runs of the same frames paced at 10 frames/s under libfaketime, one of them stepped
    back an hour about 10 s in: each reason may store 5 frames a minute, so each run stores 5
    in its first minute and 5 more after it. On the wall clock the stepped run stored nothing
    after the step: every frame came "an hour before" the last 5 taken."""
    library = libfaketime()
    import cv2

    rng = np.random.default_rng(0)
    (tmp_path / "frames").mkdir()
    for i in range(FRAMES):  # noise: every frame a camera:contrast REJECT, no two alike
        cv2.imwrite(
            str(tmp_path / "frames" / f"{i:05d}.png"), rng.integers(0, 256, (48, 64, 3), np.uint8)
        )
    (tmp_path / "edge.toml").write_text(CONFIG)

    def start(name: str) -> tuple[subprocess.Popen[str], Path]:
        clock = tmp_path / f"{name}.faketime"
        clock.write_text("+0\n")
        env = {
            **os.environ,
            "LD_PRELOAD": str(library),
            "FAKETIME_TIMESTAMP_FILE": str(clock),
            "FAKETIME_CACHE_DURATION": "1",  # re-read the file every second
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # NTP steps the wall clock only
        }
        argv = [sys.executable, "-m", "edge.cli", "run", "--config", "edge.toml",
                "--no-metrics", "--data-dir", name, "--results", f"{name}.jsonl",
                "--json", f"{name}.json"]  # fmt: skip
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        return proc, clock

    runs = {name: start(name) for name in ("stepped", "steady")}
    results = tmp_path / "stepped.jsonl"

    def frames_done() -> int:
        return len(results.read_text().splitlines()) if results.exists() else 0

    assert wait_until(lambda: frames_done() >= 100, timeout=120)
    runs["stepped"][1].write_text("-3600\n")
    summaries, stored = {}, {}
    for name, (proc, _) in runs.items():
        _, err = proc.communicate(timeout=HANG * 10)  # a hang fails; nothing is timed
        assert proc.returncode == 0, err  # the run ended normally
        summaries[name] = json.loads((tmp_path / f"{name}.json").read_text())
        stored[name] = stored_frames(tmp_path / name)
    walls = [json.loads(line)["t"] for line in results.read_text().splitlines()]
    steps = [i for i in range(1, len(walls)) if walls[i] < walls[i - 1] - HOUR / 2]
    assert len(steps) == 1, "libfaketime did not step the wall clock back"
    step = steps[0]
    after = {name: [f for f in frames if f >= step] for name, frames in stored.items()}
    assert all(summary["frames"] > step for summary in summaries.values())
    assert after["steady"], "the steady run stored nothing after its first minute"
    assert len(after["stepped"]) == len(after["steady"])
    assert len(stored["stepped"]) == len(stored["steady"])
