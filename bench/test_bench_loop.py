"""The runtime loop of ``edge run`` against a bare runtime loop, and its preprocessing step
against OpenCV + NumPy: EfficientNet-Lite0 on 1080p synthetic frames, one runtime thread.

Issue 5's targets, shown by ``edge bench`` and here side by side, not enforced: the loop's
throughput ≥ 95% of the bare loop's (``model.run`` on one preprocessed tensor, same session
and threads), and the loop's own overhead per frame under 1 ms at p50. Each benchmark checks
what it timed (every frame decided, the same tensor and statistics as the baseline's)::

    .venv/bin/pytest bench/test_bench_loop.py --benchmark-only
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from edge import _core
from edge.benchmark import baselines
from edge.model.backends import BACKEND_NAMES
from edge.runtime import Frame, Runner, open_runner
from edge.runtime.config import load_config

MODELS = Path(os.environ.get("EDGE_MODELS", Path(__file__).resolve().parents[1] / "models"))
MODEL = MODELS / "efficientnet-lite0"
FRAMES = 100  # per round: long enough that starting and joining the threads is noise


def make_runner(backend: str, frames: int = FRAMES) -> Runner:
    config = load_config(
        None,
        {
            "source.uri": "synthetic:1920x1080",
            "model.path": str(MODEL),
            "model.backend": backend,
            "model.threads": 1,
            "max_frames": frames,
            "metrics.enabled": False,
        },
    )
    return open_runner(config)


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def warm_runner(request: pytest.FixtureRequest) -> Runner:
    """A runner whose model has run a few frames (first runs pay for lazy allocation); the
    bare loop uses its model, so both sides run the very same session."""
    runner = make_runner(request.param)
    tensor = runner.model.preprocessor(first_frame())
    for _ in range(5):
        runner.model.run(tensor)
    return runner


def first_frame() -> np.ndarray:
    from edge.runtime import open_reader
    from edge.runtime.capture import SourceConfig

    image = open_reader("synthetic:1920x1080", SourceConfig()).read()
    assert image is not None
    return image


@pytest.mark.parametrize("role", ["loop", "bare runtime"])
def test_loop_against_bare_runtime(
    benchmark: BenchmarkFixture, warm_runner: Runner, role: str
) -> None:
    backend = warm_runner.model.backend
    benchmark.group = f"{FRAMES} frames, efficientnet-lite0 {backend}, 1080p, 1 thread"
    benchmark.extra_info.update(backend=backend, frames=FRAMES, file=warm_runner.model.file.name)
    if role == "loop":

        def setup() -> tuple[tuple[Runner], dict[str, Any]]:
            return (make_runner(backend),), {}

        summary = benchmark.pedantic(Runner.run, setup=setup, rounds=3, iterations=1)
        assert summary["frames"] == FRAMES
        assert sum(summary["decisions"].values()) == FRAMES
        assert not summary["errors"]
        benchmark.extra_info["overhead_p50_ms"] = summary["latency_ms"]["overhead"]["p50"]
    else:
        model = warm_runner.model
        tensor = model.preprocessor(first_frame())

        def bare() -> Any:
            for _ in range(FRAMES):
                prediction = model.run(tensor)
            return prediction

        prediction = benchmark.pedantic(bare, rounds=3, iterations=1)
        assert prediction.logits.shape == (len(model.labels),)


def opencv_prepare(frame: np.ndarray, runner: Runner) -> tuple[np.ndarray, tuple[float, ...]]:
    """The loop's preprocessing step the usual way: the model's input and the statistics of
    its view, with OpenCV and NumPy."""
    model = runner.model
    spec = model.input
    crop = baselines.centre_crop(frame, spec.size)
    view = cv2.resize(crop, spec.size, interpolation=cv2.INTER_AREA)
    tensor = baselines.opencv_numpy_input(
        view,
        spec,
        layout=model.file.layout or "nhwc",
        dtype=model.input_dtype,
        quantization=model.input_quantization,
    )
    assert tensor is not None
    return tensor, baselines.numpy_frame_stats(cv2.cvtColor(view, cv2.COLOR_BGR2GRAY))


@pytest.mark.usefixtures("one_opencv_thread")
@pytest.mark.parametrize("role", ["ours", "baseline"])
def test_prepare_step(benchmark: BenchmarkFixture, warm_runner: Runner, role: str) -> None:
    backend = warm_runner.model.backend
    benchmark.group = f"loop's prepare step (view, tensor, statistics), 1080p → {backend}"
    frame = first_frame()
    item = Frame(0, time.time(), time.monotonic(), time.perf_counter(), frame, 0.0)
    spec = warm_runner.model.input
    quantization = warm_runner.model.input_quantization
    tolerance = baselines.input_tolerance(spec, quantization)
    want_tensor, want_stats = opencv_prepare(frame, warm_runner)
    if role == "ours":
        benchmark.name = "ours: Analyzer.prepare"
        work = benchmark(warm_runner.analyzer.prepare, item)
        tensor = work.tensor
        assert work.stats["brightness"] == pytest.approx(want_stats[0], abs=1.0)
        assert work.stats["sharpness"] == pytest.approx(want_stats[2], rel=0.05)
    else:
        benchmark.name = "baseline: cv2.resize + cvtColor + NumPy"
        tensor, stats = benchmark(opencv_prepare, frame, warm_runner)
        assert stats == want_stats
    # The view is resized in uint8 first (like OpenCV), so the two differ by rounding only.
    diff = np.abs(tensor.astype(np.float64) - want_tensor.astype(np.float64)).max()
    assert diff <= tolerance


def test_frame_stats_reference_is_the_kernels() -> None:
    """The NumPy statistics in baselines are what the C++ kernel computes (else the ratio
    above compares different work)."""
    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (224, 224), np.uint8), (5, 5), 0)
    ours = _core.frame_stats(grey, src="gray")
    want = baselines.numpy_frame_stats(grey)
    assert ours.brightness == pytest.approx(want[0], abs=1e-3)
    assert ours.contrast == pytest.approx(want[1], rel=1e-4)
    assert ours.sharpness == pytest.approx(want[2], rel=1e-3)
    assert ours.dark == pytest.approx(want[3])
    assert ours.bright == pytest.approx(want[4])
