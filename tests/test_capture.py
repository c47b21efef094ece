"""Capture: files without drops, live sources keep the latest frames, image directories,
the synthetic pattern, clear errors, and a real RTSP stream that dies and comes back."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from _waiting import wait_until

from edge.defaults import BUNDLED_SOURCE
from edge.errors import SourceError
from edge.runtime.capture import Capture, SourceConfig, open_reader, shown

FRAMES = json.loads(BUNDLED_SOURCE.with_suffix(".json").read_text())["frames"]


def test_a_file_is_read_whole_without_drops() -> None:
    capture = Capture(SourceConfig(uri=str(BUNDLED_SOURCE), queue=1)).start()
    ids = []
    for frame in capture:
        ids.append(frame.id)
        if len(ids) % 200 == 0:
            time.sleep(0.05)  # a slow consumer must not lose frames of a file
    assert ids == list(range(FRAMES))
    assert capture.dropped == 0


def test_a_live_source_keeps_the_latest_frames_and_counts_the_rest() -> None:
    # A file paced in real time behaves like a camera: a consumer slower than its frame
    # rate gets the newest frames, and the ones it missed are counted, not queued.
    capture = Capture(SourceConfig(uri=str(BUNDLED_SOURCE), realtime=True, queue=2)).start()
    taken = []
    for frame in capture:
        taken.append(frame)
        time.sleep(0.2)  # 5 fps against a 15 fps video
        if len(taken) == 10:
            capture.stop()
    ids = [f.id for f in taken]
    assert ids == sorted(ids)
    assert capture.dropped > 10
    lag = max(b.id - a.id for a, b in itertools.pairwise(taken))
    assert lag >= 2  # frames were skipped rather than queued up


def test_image_directory_in_name_order_skipping_unreadable_files(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((32, 48, 3), 50 * i, np.uint8))
    (tmp_path / "3.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    capture = Capture(SourceConfig(uri=str(tmp_path))).start()
    means = [float(frame.image.mean()) for frame in capture]
    assert means == [0.0, 50.0, 100.0]


def test_synthetic_source_is_endless_and_read_only() -> None:
    reader = open_reader("synthetic:64x48", SourceConfig())
    frames = [reader.read() for _ in range(6)]
    assert all(f is not None and f.shape == (48, 64, 3) for f in frames)
    assert not frames[0].flags.writeable  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("missing.mp4", "source 'missing.mp4': no such file or directory"),
        ("synthetic:4x4", "source 'synthetic:4x4': the size is out of range"),
        ("synthetic:640", "source 'synthetic:640': synthetic: needs WxH"),
        ("*.nothing", "source '*.nothing': no images: the pattern matches no file"),
    ],
)
def test_a_source_that_cannot_be_opened_is_one_error(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match="^" + re.escape(message)):
        open_reader(uri, SourceConfig())


def test_a_video_file_is_read_from_its_first_frame() -> None:
    # The first frame is decoded at open (to refuse a file with none); it is still frame 0.
    reader = open_reader(str(BUNDLED_SOURCE), SourceConfig())
    first = reader.read()
    reader.close()
    cap = cv2.VideoCapture(str(BUNDLED_SOURCE))
    ok, expected = cap.read()
    cap.release()
    assert ok
    assert first is not None
    assert np.array_equal(first, expected)


def test_a_source_with_credentials_is_shown_without_them() -> None:
    assert shown("rtsp://admin:hunter22@10.0.0.7/stream") == "rtsp://10.0.0.7/stream"
    assert shown("/data/line@3.mp4") == "/data/line@3.mp4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def publish(url: str) -> subprocess.Popen[bytes]:
    """ffmpeg streams the sample video to ``url`` (looping, at its frame rate); retried until
    the listening end is up."""
    for _ in range(200):
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(BUNDLED_SOURCE), "-c", "copy", "-f", "rtsp", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            proc.wait(timeout=1.0)  # refused: the listener is not up yet
        except subprocess.TimeoutExpired:
            return proc
        time.sleep(0.2)
    raise AssertionError(f"ffmpeg could not publish to {url}")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (Debian ffmpeg)")
def test_rtsp_stream_killed_and_restarted_is_reconnected(tmp_path: Path) -> None:
    # ffmpeg is a real RTSP peer: edge listens (rtsp_flags=listen, as a receiving server
    # does) and ffmpeg pushes the sample video to it. Killing ffmpeg mid-stream breaks the
    # session; edge must reconnect and carry on when the stream comes back.
    rtsp, metrics = free_port(), free_port()
    url = f"rtsp://127.0.0.1:{rtsp}/line"
    (tmp_path / "edge.toml").write_text(
        f'[source]\nuri = "{url}"\ntimeout = 5.0\nbackoff = 0.2\n'
        '[source.options]\nrtsp_flags = "listen"\nlisten_timeout = "30"\n'
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", "edge.toml",
         "--metrics-port", str(metrics), "--max-frames", "120",
         "--results", "r.jsonl", "--json", "s.json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    results = tmp_path / "r.jsonl"

    def frames() -> int:
        return len(results.read_bytes().splitlines()) if results.exists() else 0

    def wait_for(n: int) -> None:
        def enough() -> bool:
            assert run.poll() is None, run.communicate()[1].decode()
            return frames() >= n

        assert wait_until(enough, timeout=60, poll=0.1), f"only {frames()} frames"

    publisher = publish(url)
    try:
        wait_for(40)
        publisher.send_signal(signal.SIGKILL)  # the stream dies mid-session
        publisher.wait()
        assert wait_until(lambda: metric(scrape(metrics), "edge_reconnects_total") >= 1, poll=0.2)
        before = frames()
        publisher = publish(url)  # the stream comes back
        wait_for(before + 20)
        assert metric(scrape(metrics), "edge_source_connected") == 1.0
        _, err = run.communicate(timeout=60)
    finally:
        publisher.kill()
        publisher.wait()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err.decode()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 120
    assert summary["reconnects"] >= 1
