"""The gate's per-frame cost at EfficientNet-Lite0's scale, against the same math in NumPy.

Per frame: statistics of the model's 224×224 view, the logit scores of 1 000 classes, and the
embedding scores of a 1 280-d embedding (projected to 256, 1 000 class means, a bank of 2 048).
Each benchmark checks its answer against the NumPy one, so a fast wrong kernel fails. The last
one also times EfficientNet-Lite0's int8 inference (LiteRT, 1 thread) in the same run and
reports the gate's cost as a share of it (the target: under 5%).

    pytest bench/test_bench_scores.py --benchmark-only -s
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge import _core
from edge.judge.ood import OodReference

CLASSES, DIM_IN, BANK = 1000, 1280, 2048
EFFICIENTNET = Path(__file__).resolve().parents[1] / "models" / "efficientnet-lite0"
#: The gate's budget, as a share of the model's inference time.
BUDGET = 0.05


@pytest.fixture(scope="module")
def reference() -> OodReference:
    rng = np.random.default_rng(0)
    labels = np.arange(4 * CLASSES) % CLASSES
    centres = rng.normal(0, 1, (CLASSES, DIM_IN))
    x = np.maximum(centres[labels] + rng.normal(0, 1, (len(labels), DIM_IN)), 0)
    return OodReference.fit(x, labels, classes=CLASSES, bank_size=BANK)


@pytest.fixture(scope="module")
def view() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return cv2.resize(skimage_data.camera(), (224, 224), interpolation=cv2.INTER_AREA)


def numpy_frame_stats(g: np.ndarray) -> tuple[float, ...]:
    f = g.astype(np.float32)
    lap = f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4 * f[1:-1, 1:-1]
    return (f.mean(), f.std(), lap.var(), (g <= 16).mean(), (g >= 239).mean())


def numpy_logit_scores(logits: np.ndarray, t: float) -> tuple[float, float, float]:
    z = logits / t
    m = z.max()
    e = np.exp(z - m)
    s = e.sum()
    p = e / s
    return float(p.max()), float(-t * (m + np.log(s))), float(-(p * np.log(p + 1e-30)).sum())


def numpy_embedding_scores(ref: OodReference, x: np.ndarray) -> tuple[float, float]:
    assert ref.projection is not None
    e = ref.projection @ (x - ref.center)
    z = ref.whitener @ e
    d = ((z - ref.class_means) ** 2).sum(axis=1)
    q = e / np.linalg.norm(e)
    return float(d.min()), float(np.sqrt(max(0.0, 2 - 2 * (ref.bank @ q).max())))


def gate_numpy(view: np.ndarray, logits: np.ndarray, emb: np.ndarray, ref: OodReference) -> Any:
    return (
        numpy_frame_stats(view),
        numpy_logit_scores(logits, 1.3),
        numpy_embedding_scores(ref, emb),
    )


def gate_ours(view: np.ndarray, logits: np.ndarray, emb: np.ndarray, scorer: Any) -> Any:
    return _core.frame_stats(view, src="gray"), _core.logit_scores(logits, 1.3), scorer.score(emb)


@pytest.fixture(scope="module")
def frame_outputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return (
        rng.normal(0, 3, CLASSES).astype(np.float32),
        np.maximum(rng.normal(0, 1, DIM_IN), 0).astype(np.float32),
    )


@pytest.mark.benchmark(group="gate per frame (stats + logit + embedding scores)")
def test_gate_numpy(
    benchmark: Any, view: np.ndarray, frame_outputs: Any, reference: OodReference
) -> None:
    logits, emb = frame_outputs
    stats, logit, embedding = benchmark(gate_numpy, view, logits, emb, reference)
    assert stats[0] > 0
    assert 0 < logit[0] <= 1
    assert embedding[0] > 0


@pytest.mark.benchmark(group="gate per frame (stats + logit + embedding scores)")
def test_gate_ours(
    benchmark: Any, view: np.ndarray, frame_outputs: Any, reference: OodReference
) -> None:
    logits, emb = frame_outputs
    scorer = reference.scorer()
    stats, (logit, _), (maha, _, knn) = benchmark(gate_ours, view, logits, emb, scorer)
    want_stats, want_logit, want_emb = gate_numpy(view, logits, emb, reference)
    assert stats.brightness == pytest.approx(want_stats[0], abs=0.01)
    assert stats.sharpness == pytest.approx(want_stats[2], rel=1e-3)
    assert logit.msp == pytest.approx(want_logit[0], rel=1e-4)
    assert logit.energy == pytest.approx(want_logit[1], rel=1e-4)
    assert maha == pytest.approx(want_emb[0], rel=1e-3)
    assert knn == pytest.approx(want_emb[1], rel=1e-3, abs=1e-4)


def median_seconds(call: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@pytest.mark.benchmark(group="gate per frame, as a share of EfficientNet-Lite0 inference")
def test_gate_share_of_inference(
    benchmark: Any, view: np.ndarray, frame_outputs: Any, reference: OodReference
) -> None:
    pytest.importorskip("ai_edge_litert", reason="the inference time needs LiteRT")
    from edge.model import load_model

    logits, emb = frame_outputs
    scorer = reference.scorer()
    benchmark(gate_ours, view, logits, emb, scorer)
    gate = benchmark.stats.stats.median
    numpy_gate = median_seconds(lambda: gate_numpy(view, logits, emb, reference), 300)
    model = load_model(EFFICIENTNET, backend="tflite", threads=1)
    tensor = model.preprocessor_for("gray")(view)
    for _ in range(3):  # first runs pay for lazy allocation
        model.run(tensor)
    inference = median_seconds(lambda: model.run(tensor), 200)
    share = gate / inference
    benchmark.extra_info.update(
        inference_ms=inference * 1e3, numpy_gate_ms=numpy_gate * 1e3, share=share
    )
    print(
        f"\ngate {gate * 1e3:.3f} ms (NumPy {numpy_gate * 1e3:.3f} ms), EfficientNet-Lite0 "
        f"LiteRT 1 thread {inference * 1e3:.2f} ms: gate = {share:.1%} of inference"
    )
    assert gate < numpy_gate
    assert share < BUDGET
