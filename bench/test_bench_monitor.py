"""The drift monitor's per-frame cost, against the inference it rides along with.

``Monitor.update`` on a stream of real per-frame signals (the bundled fashion-line model on
Fashion-MNIST test images), one call per round: the median is a frame that only appends its
row, the mean includes the statistics recomputed every ``check_every`` frames. Measured in the
same run: ``Model.run`` of fashion-line and of EfficientNet-Lite0 on a preprocessed tensor
(ONNX Runtime, 1 thread). Each benchmark checks its answer: the stable stream must leave the
monitor OK, the models must name their known image.

    .venv/bin/pytest bench/test_bench_monitor.py --benchmark-only
"""

from __future__ import annotations

import functools
import gzip
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from edge.drift import Monitor
from edge.judge.calibration import Calibration, load_calibration
from edge.model import Model, load_model
from edge.offline.calibrate import run_model, signals
from edge.offline.data import Dataset
from edge.offline.evaluate import decide

MODELS = Path(__file__).resolve().parents[1] / "models"
FASHION_MNIST_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
FRAMES = 2000

Row = tuple[dict[str, float], int, str]


@functools.cache
def fashion_test_images() -> np.ndarray:
    if not FASHION_MNIST_TEST.is_file():
        pytest.fail(f"{FASHION_MNIST_TEST} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION_MNIST_TEST, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:FRAMES].copy()


@functools.cache
def model(name: str) -> Model:
    path = MODELS / name
    if not (path / "manifest.json").is_file():
        pytest.fail(f"{path}/manifest.json is missing: build it with models/{name}/build.py")
    return load_model(path, backend="onnx", threads=1)


@pytest.fixture(scope="module")
def calibration_and_rows() -> tuple[Calibration, list[Row]]:
    loaded = load_calibration(MODELS / "fashion-line")
    assert loaded is not None
    calibration, reference = loaded
    images = fashion_test_images()
    outputs = run_model(model("fashion-line"), Dataset(MODELS, images, None, ""))
    s = signals(outputs, calibration.temperature, reference)
    d = decide(s, calibration)
    decision = np.where(d.rejected, "REJECT", np.where(d.review, "REVIEW", "ACCEPT"))
    order = np.random.default_rng(0).permutation(len(images))
    rows = [
        ({k: float(v[i]) for k, v in s.items()}, int(s["top"][i]), str(decision[i])) for i in order
    ]
    return calibration, rows


KNOWN: dict[str, tuple[Callable[[], tuple[np.ndarray, str]], str]] = {
    "fashion-line": (lambda: (fashion_test_images()[0], "gray"), "Ankle boot"),
    "efficientnet-lite0": (
        lambda: (__import__("skimage.data").data.coffee(), "rgb"),
        "espresso",
    ),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_inference_per_frame(benchmark: BenchmarkFixture, name: str) -> None:
    m = model(name)
    load, expected = KNOWN[name]
    image, src = load()
    tensor = m.preprocessor_for(src)(image)  # type: ignore[arg-type]
    for _ in range(3):  # lazy allocation and thread-pool start-up
        m.run(tensor)
    benchmark.group = "monitor vs inference (per frame)"
    prediction = benchmark(m.run, tensor)
    assert prediction.label == expected, prediction.top_k(3)


def median_run(name: str, repeat: int) -> float:
    """Median seconds of one ``Model.run`` of ``name`` on its known image."""
    m = model(name)
    load, expected = KNOWN[name]
    image, src = load()
    tensor = m.preprocessor_for(src)(image)  # type: ignore[arg-type]
    assert m.run(tensor).label == expected
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        m.run(tensor)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def test_monitor_update_per_frame(
    benchmark: BenchmarkFixture,
    calibration_and_rows: tuple[Calibration, list[Row]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    calibration, rows = calibration_and_rows
    monitor = Monitor.from_calibration(calibration)
    frames = itertools.cycle(enumerate(rows))

    def one_frame() -> None:
        i, (values, label, decision) = next(frames)
        monitor.update(values, label, decision, i / 10)

    for _ in range(len(rows)):  # a full window, so every check is a judged one
        one_frame()
    cfg = monitor.config
    benchmark.group = "monitor vs inference (per frame)"
    benchmark.extra_info.update(window=cfg.window_frames, check_every=cfg.check_every)
    # One frame per round: the median is the common frame, the mean carries the checks.
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        one_frame, rounds=200 * cfg.check_every, iterations=1, warmup_rounds=0
    )
    assert monitor.state == "ok", monitor.snapshot()["moved"]
    assert monitor.snapshot()["evaluated"]

    # The baseline, measured in the same run: what inference costs per frame.
    assert benchmark.stats is not None
    p50, mean = benchmark.stats.stats.median, benchmark.stats.stats.mean
    lines = [f"monitor.update: p50 {p50 * 1e6:.2f} µs, mean {mean * 1e6:.2f} µs per frame"]
    inference = {"fashion-line": median_run("fashion-line", 500)}
    if (MODELS / "efficientnet-lite0" / "manifest.json").is_file():
        inference["efficientnet-lite0"] = median_run("efficientnet-lite0", 30)
    for name, seconds in inference.items():
        share = mean / seconds
        benchmark.extra_info[f"share_of_{name}"] = share
        lines.append(
            f"  {name} inference, median {seconds * 1e6:.0f} µs: the monitor's mean is "
            f"{100 * share:.2f}% of it"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # Cheap next to the smallest model we ship, even on a noisy shared machine.
    assert mean < 0.25 * inference["fashion-line"]
