"""``edge run`` end to end: the bundled default, the sample video's segments, the messages a
user gets for bad input, signals, the results stream and the Prometheus endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _waiting import HANG, wait_until

from edge.defaults import BUNDLED_SOURCE
from edge.records import Flagged
from edge.runtime import open_runner
from edge.runtime.config import load_config
from edge.runtime.loop import RejectSampler

SEGMENTS = json.loads(BUNDLED_SOURCE.with_suffix(".json").read_text())


def edge(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Recorder:
    """A flagged-frame sink that keeps what it is offered."""

    def __init__(self) -> None:
        self.items: list[Flagged] = []
        self.closed = False

    def offer(self, item: Flagged) -> bool:
        self.items.append(item)
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def sample_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], list[dict[str, Any]], Recorder]:
    """The whole sample video through the bundled model, with every frame's result."""
    results = tmp_path_factory.mktemp("run") / "results.jsonl"
    config = load_config(None, {"results": str(results), "metrics.enabled": False})
    recorder = Recorder()
    summary = open_runner(config, flagged=recorder).run()
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    return summary, lines, recorder


def test_bundled_default_runs_and_prints_its_summary(tmp_path: Path) -> None:
    done = edge("run", "--max-frames", "40", "--json", "summary.json", "--no-metrics", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "40 frames in" in done.stdout
    assert "stage (ms)" in done.stdout
    # The video is shorter than the warm-up: the monitor has not judged anything yet.
    assert "drift warming up (learning the reference: " in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 40
    assert sum(summary["decisions"].values()) == 40
    assert set(summary["latency_ms"]) >= {"preprocess", "inference", "overhead", "total"}
    for key in ("fps", "dropped", "reconnects", "reasons", "flagged"):
        assert key in summary
    assert summary["model"]["calibrated"] is True
    assert summary["drift"]["status"] == "warming up"
    assert summary["drift"]["state"] == "ok"  # the monitor's own state, unjudged


def test_the_summary_says_what_became_of_the_flagged_frames(tmp_path: Path) -> None:
    done = edge("run", "--max-frames", "200", "--json", "s.json", "--no-metrics", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    f, decisions = summary["flagged"], summary["decisions"]
    assert f["frames"] == decisions["REVIEW"] + decisions["REJECT"] > 0
    assert f["frames"] == f["offered"] + f["skipped"]
    sampled = f["sampled_out"]
    assert sampled["reject_sampling"] == f["skipped"] > 0  # the sample video's dark stretches
    assert f["stored"] == summary["buffer"]["stored"] > 0
    parts = f["stored"] + f["near_duplicates"] + sampled["rate_limits"] + f["not_stored"]
    assert parts + sampled["reject_sampling"] == f["frames"]
    target = (tmp_path / "edge-data" / "outbox").resolve().as_uri()
    assert summary["upload"]["target"] == target
    assert summary["upload"]["uploaded_records"] == f["stored"]
    assert (
        f"flagged {f['frames']} (REVIEW or REJECT): {f['stored']} stored, "
        f"{f['near_duplicates']} near-duplicates, "
    ) in done.stdout
    assert f"{sampled['reject_sampling']} by reject sampling" in done.stdout
    assert f"uploaded {f['stored']} records to {target}" in done.stdout


def test_the_summary_names_the_upload_target_without_its_credentials(tmp_path: Path) -> None:
    port = closed_port()  # the store is down: the run ends with its frames still buffered
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--max-frames", "60", "--json", "s.json",
         "--no-metrics", "--upload", f"http://127.0.0.1:{port}/frames"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EDGE_UPLOAD_TOKEN": "s3cr3t-t0ken"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["upload"]["target"] == f"http://127.0.0.1:{port}/frames"
    assert f"uploaded 0 records to http://127.0.0.1:{port}/frames" in done.stdout
    for text in (done.stdout, done.stderr, (tmp_path / "s.json").read_text()):
        assert "s3cr3t" not in text


def decisions_by_kind(lines: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    kinds: dict[str, Counter[str]] = {}
    for segment in SEGMENTS["segments"]:
        counts = kinds.setdefault(segment["kind"], Counter())
        for line in lines[segment["start"] : segment["end"]]:
            counts[line["decision"]] += 1
    return kinds


def test_decisions_match_the_segments_of_the_sample_video(sample_run: Any) -> None:
    _, lines, _ = sample_run
    kinds = decisions_by_kind(lines)
    items = kinds["item"]
    assert items["ACCEPT"] / items.total() >= 0.75
    for kind in ("foreign", "dim", "blur", "covered"):
        flagged = kinds[kind]["REVIEW"] + kinds[kind]["REJECT"]
        assert flagged / kinds[kind].total() >= 0.9, (kind, kinds[kind])


def test_a_frozen_feed_is_rejected_once_it_outlasts_a_still_item(sample_run: Any) -> None:
    # An item resting at the station is a still picture too: a freeze can only be told from
    # it after gate.frozen_frames (30) frames.
    _, lines, _ = sample_run
    (frozen,) = [s for s in SEGMENTS["segments"] if s["kind"] == "frozen"]
    after = lines[frozen["start"] + 31 : frozen["end"]]
    caught = [line for line in after if line["reason"] == "camera:frozen"]
    assert len(caught) / len(after) >= 0.8
    elsewhere = [
        line["frame"]
        for line in lines
        if line["reason"] == "camera:frozen"
        and not frozen["start"] <= line["frame"] < frozen["end"]
    ]
    assert not elsewhere


def test_accepted_items_are_labelled_correctly(sample_run: Any) -> None:
    _, lines, _ = sample_run
    right = wrong = 0
    for segment in SEGMENTS["segments"]:
        if segment["kind"] != "item":
            continue
        for line in lines[segment["start"] : segment["end"]]:
            if line["decision"] == "ACCEPT":
                right += line["label"] == segment["label"]
                wrong += line["label"] != segment["label"]
    assert right / (right + wrong) >= 0.9


def test_flagged_frames_reach_the_buffer_with_their_provenance(sample_run: Any) -> None:
    summary, lines, recorder = sample_run
    assert recorder.closed
    flagged = [line for line in lines if line["decision"] != "ACCEPT"]
    assert len(recorder.items) == summary["flagged"]["offered"]
    assert len(recorder.items) + summary["flagged"]["skipped"] == len(flagged)
    first = recorder.items[0]
    assert first.image.shape == (SEGMENTS["height"], SEGMENTS["width"], 3)
    assert first.model == "fashion-line"
    assert len(first.model_sha256) == 64
    assert first.decision in ("REVIEW", "REJECT")
    by_frame = {line["frame"]: line for line in lines}
    for item in recorder.items:
        line = by_frame[item.frame]
        assert (item.decision, item.reason, item.label) == (
            line["decision"],
            line["reason"],
            line["label"],
        )


def test_rejects_of_one_reason_are_sampled() -> None:
    sampler = RejectSampler(every=3)

    class R:
        def __init__(self, decision: str, reason: str) -> None:
            self.decision, self.reason = decision, reason

    kept = [sampler.keep(R("REJECT", "camera:dark")) for _ in range(7)]  # type: ignore[arg-type]
    assert kept == [True, False, False, True, False, False, True]
    assert sampler.keep(R("REJECT", "ood:knn"))  # type: ignore[arg-type] # a new reason
    assert sampler.keep(R("REVIEW", "confidence"))  # type: ignore[arg-type]


def test_impossible_label_guard_sends_to_review(tmp_path: Path) -> None:
    toml = tmp_path / "edge.toml"
    toml.write_text(
        '[policy]\nimpossible_labels = ["Trouser", "Bag", "Sneaker", "Ankle boot", "Sandal"]\n'
        "[metrics]\nenabled = false\n"
    )
    results = tmp_path / "r.jsonl"
    config = load_config(toml, {"results": str(results), "max_frames": 300})
    open_runner(config).run()
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    guarded = [line for line in lines if line["reason"] == "guard:impossible-label"]
    assert guarded
    assert all(line["decision"] == "REVIEW" for line in guarded)
    assert not [
        line
        for line in lines
        if line["decision"] == "ACCEPT" and line["label"] in ("Trouser", "Bag", "Sandal")
    ]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def truncated_video(path: Path) -> None:
    """The sample video cut just after its first frame's data starts: the header is whole,
    so FFmpeg opens it, but there is no frame to decode."""
    data = BUNDLED_SOURCE.read_bytes()
    path.write_bytes(data[: data.index(b"mdat") + 100])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "no-such-model"],
            "edge run: error: model directory no-such-model does not exist",
        ),
        (["--source", "no-such.mp4"], "edge run: error: source 'no-such.mp4': no such file"),
        (
            ["--source", "/dev/video9"],
            "edge run: error: source '/dev/video9': no such device; ",
        ),
        (
            ["--source", "9"],
            "edge run: error: source '9': no camera at index 9 (no /dev/video9); ",
        ),
        (
            ["--source", "rtsp://127.0.0.1:{port}/line"],
            "edge run: error: source 'rtsp://127.0.0.1:{port}/line': connection refused by "
            "127.0.0.1:{port}",
        ),
        (
            ["--source", "http://user:secret@127.0.0.1:{port}/video.mjpg"],
            "edge run: error: source 'http://127.0.0.1:{port}/video.mjpg': connection refused "
            "by 127.0.0.1:{port}",
        ),
        (
            ["--source", "notes.txt"],
            "edge run: error: source 'notes.txt': not a video (FFmpeg cannot read the file)",
        ),
        (
            ["--source", "not-a-video.mp4"],
            "edge run: error: source 'not-a-video.mp4': not a video (FFmpeg cannot read the file)",
        ),
        (
            ["--source", "truncated.mp4"],
            "edge run: error: source 'truncated.mp4': not a video (no frame could be decoded",
        ),
        (
            ["--source", "synthetic:640"],
            "edge run: error: source 'synthetic:640': synthetic: needs WxH, e.g. synthetic:640x480",
        ),
        (
            ["--source", "empty-dir"],
            "edge run: error: source 'empty-dir': no images: the directory is empty",
        ),
        (
            ["--source", "*.jpg"],
            "edge run: error: source '*.jpg': no images: the pattern matches no file",
        ),
        (
            ["--config", "bad.toml"],
            "edge run: error: bad.toml: source.queue: expected int, got str",
        ),
        (["--config", "typo.toml"], "edge run: error: typo.toml: gate.treshold: unknown key"),
        (
            ["--config", "labels.toml"],
            "edge run: error: policy: labels ['Hat'] are not the model's",
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    if any(a in ("/dev/video9", "9") for a in args) and Path("/dev/video9").exists():
        pytest.skip("this machine has a /dev/video9")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "notes.txt").write_text("not a video, a note\n")
    (tmp_path / "not-a-video.mp4").write_bytes(b"this is not a video")
    truncated_video(tmp_path / "truncated.mp4")
    (tmp_path / "bad.toml").write_text('[source]\nqueue = "two"\n')
    (tmp_path / "typo.toml").write_text("[gate]\ntreshold = 3.0\n")
    (tmp_path / "labels.toml").write_text('[policy]\nimpossible_labels = ["Hat"]\n')
    port = str(closed_port())
    args = [a.replace("{port}", port) for a in args]
    done = edge("run", "--no-metrics", *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(message.replace("{port}", port)), done.stderr
    assert "secret" not in done.stderr
    assert not (tmp_path / "edge-data").exists()  # a run that cannot start writes nothing


def test_sigterm_stops_the_run_with_the_summary(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--source", "synthetic:640x480",
         "--no-metrics", "--results", "r.jsonl", "--json", "s.json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    results = tmp_path / "r.jsonl"
    assert wait_until(lambda: results.exists() and results.stat().st_size > 0, timeout=60)
    time.sleep(0.5)  # frames in flight when the signal comes
    proc.send_signal(signal.SIGTERM)
    # The timeout only turns a run that ignores SIGTERM into a failure instead of a hang.
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "s.json").read_text())
    written = results.read_text().splitlines()
    assert summary["frames"] == len(written) > 0  # every frame counted was flushed
    assert f"{summary['frames']} frames in" in out


def scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_prometheus_endpoint_and_healthz() -> None:
    config = load_config(None, {"source.uri": "synthetic:320x240", "metrics.port": 0})
    runner = open_runner(config)
    port = runner.serve_metrics()
    assert port is not None
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert wait_until(lambda: runner.counts.frames >= 50)
        status, text = scrape(port, "/metrics")
        health, body = scrape(port, "/healthz")
    finally:
        runner.stop()
        thread.join(HANG)
    assert not thread.is_alive()  # stop() ends the loop
    assert status == 200
    for name in (
        "edge_frames_total",
        "edge_frames_dropped_total",
        "edge_reconnects_total",
        'edge_stage_seconds_bucket{le="0.001",stage="inference"}',
        'edge_queue_depth{queue="capture"}',
        "edge_decisions_total{",
    ):
        assert name in text, name
    assert (health, body.strip()) == (200, "ok")
