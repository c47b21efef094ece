"""The ways a user would otherwise do each step, in OpenCV and NumPy, and a fair timer.

Each baseline computes the same thing as the C++ kernel it stands against, so a benchmark can
check the answers agree before it compares their times (a fast wrong kernel must not win).
These are the NumPy references of ``edge bench`` and of ``bench/`` alike: one copy, here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.judge.ood import OodReference
from edge.model.manifest import InputSpec

Array = npt.NDArray[Any]


def centre_crop(frame: Array, size: tuple[int, int]) -> Array:
    """The centre of ``frame`` cut to the aspect ratio of ``size`` (width, height), rounded
    as the C++ preprocessor rounds it (``lround``, offset floored)."""
    h, w = frame.shape[:2]
    out_w, out_h = size
    if w * out_h > h * out_w:
        crop_w = min(max(math.floor(h * out_w / out_h + 0.5), 1), w)
        x = (w - crop_w) // 2
        return frame[:, x : x + crop_w]
    crop_h = min(max(math.floor(w * out_h / out_w + 0.5), 1), h)
    y = (h - crop_h) // 2
    return frame[y : y + crop_h]


def opencv_numpy_input(
    frame: Array,
    spec: InputSpec,
    *,
    layout: str,
    dtype: np.dtype[Any],
    quantization: tuple[float, int] | None,
) -> Array | None:
    """A BGR (or grey) camera frame to a model's input tensor the usual way: centre crop,
    ``cv2.resize`` (INTER_AREA or INTER_LINEAR), ``cv2.cvtColor``, then NumPy normalisation
    and quantization and the layout. None for a fit it does not do (letterbox)."""
    if spec.fit == "crop":
        frame = centre_crop(frame, spec.size)
    elif spec.fit != "stretch":
        return None
    method = cv2.INTER_AREA if spec.resize == "area" else cv2.INTER_LINEAR
    resized = cv2.resize(frame, spec.size, interpolation=method)
    grey_in = resized.ndim == 2
    if spec.color == "gray":
        pixels = resized if grey_in else cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)
        pixels = pixels[..., None]
    elif grey_in:
        pixels = cv2.cvtColor(
            resized, cv2.COLOR_GRAY2BGR if spec.color == "bgr" else cv2.COLOR_GRAY2RGB
        )
    else:
        pixels = resized if spec.color == "bgr" else cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (pixels.astype(np.float32) - mean) / std
    if dtype != np.float32:
        if quantization is not None:
            scale, zero_point = quantization
            x = np.rint(x / np.float32(scale) + np.float32(zero_point))
        info = np.iinfo(dtype)
        x = np.clip(x, info.min, info.max, out=x)
    out = x.astype(dtype)
    out = out.transpose(2, 0, 1) if layout == "nchw" else out
    return np.ascontiguousarray(out[None])


def input_tolerance(spec: InputSpec, quantization: tuple[float, int] | None) -> float:
    """The largest difference allowed between ours and :func:`opencv_numpy_input`: one grey
    level (INTER_AREA parity is ±1, and OpenCV rounds to uint8 after resizing while we round
    once at the end), in output units, plus one step of rounding."""
    pixel = 1.0 / min(spec.std)
    if quantization is None:
        return pixel * 1.01  # and float rounding of the normalisation
    return math.ceil(pixel / quantization[0] - 1e-6) + 1


def numpy_frame_stats(grey: Array) -> tuple[float, float, float, float, float]:
    """brightness, contrast, sharpness (variance of the 4-neighbour Laplacian), dark and bright
    shares of a grey uint8 image: what ``_core.frame_stats`` measures."""
    f = grey.astype(np.float32)
    lap = f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4 * f[1:-1, 1:-1]
    return (
        float(f.mean()),
        float(f.std()),
        float(lap.var()),
        float((grey <= 16).mean()),
        float((grey >= 239).mean()),
    )


def numpy_logit_scores(logits: Array, temperature: float) -> tuple[float, float, float]:
    """msp, energy and entropy of the temperature-scaled softmax: what ``_core.logit_scores``
    computes."""
    z = logits.astype(np.float64) / temperature
    m = z.max()
    e = np.exp(z - m)
    s = e.sum()
    p = e / s
    return (
        float(p.max()),
        float(-temperature * (m + np.log(s))),
        float(-(p * np.log(p + 1e-30)).sum()),
    )


def numpy_embedding_scores(reference: OodReference, embedding: Array) -> tuple[float, float]:
    """Mahalanobis (squared, to the nearest class mean) and k-NN distances of one embedding:
    what ``OodScorer.score`` computes, in NumPy."""
    e = embedding - reference.center
    if reference.projection is not None:
        e = reference.projection @ e
    z = reference.whitener @ e
    mahalanobis = ((z - reference.class_means) ** 2).sum(axis=1).min()
    q = e / max(float(np.linalg.norm(e)), 1e-12)
    similarities = reference.bank @ q
    k = reference.k
    kth = np.partition(similarities, len(similarities) - k)[len(similarities) - k]
    return float(mahalanobis), float(np.sqrt(max(0.0, 2.0 - 2.0 * float(kth))))


@dataclass(frozen=True)
class Timing:
    """Per-call times of one contender, in milliseconds."""

    p50: float
    p95: float
    mean: float
    min: float
    calls: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Timing:
        ms = np.asarray(seconds, np.float64) * 1e3
        return cls(
            p50=float(np.median(ms)),
            p95=float(np.percentile(ms, 95)),
            mean=float(ms.mean()),
            min=float(ms.min()),
            calls=len(ms),
        )

    def to_json(self) -> dict[str, float | int]:
        return {"p50": self.p50, "p95": self.p95, "mean": self.mean, "min": self.min}


def time_pair(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    rounds: int,
    *,
    on_round: Callable[[], object] | None = None,
) -> tuple[Timing, Timing]:
    """Times both, one call each per round, alternating which goes first: on a shared
    machine both then see the same load, and neither always runs with a warmer cache."""
    for _ in range(3):  # plans, caches and first-touch page faults are not timed
        ours()
        baseline()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds):
        pair = (ours, baseline) if i % 2 == 0 else (baseline, ours)
        for fn in pair:
            t0 = time.perf_counter()
            fn()
            times[fn is baseline].append(time.perf_counter() - t0)
        if on_round is not None:
            on_round()
    return Timing.of(times[0]), Timing.of(times[1])


__all__ = [
    "Timing",
    "centre_crop",
    "input_tolerance",
    "numpy_embedding_scores",
    "numpy_frame_stats",
    "numpy_logit_scores",
    "opencv_numpy_input",
    "time_pair",
]
