"""The ways a user would otherwise do each step, in OpenCV and NumPy, and a fair timer.

Each baseline computes the same thing as the C++ kernel it stands against, so a benchmark can
check the answers agree before it compares their times (a fast wrong kernel must not win).
These are the NumPy references of ``edge bench`` and of ``bench/`` alike: one copy, here;
:func:`kernel_baselines` runs each against ours on a loop's own frame and model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from edge._native import _core
from edge.benchmark.schema import Kernel, Timing
from edge.judge.calibration import load_calibration
from edge.judge.ood import OodReference
from edge.model.manifest import InputSpec
from edge.model.preprocess import Dst, Preprocessor, Src
from edge.runtime.capture import Frame

if TYPE_CHECKING:
    from edge.runtime.loop import Runner

Array = npt.NDArray[Any]
#: ``progress(label, total)`` starts a progress report and returns its ``update(n)``.
Progress = Callable[[str, int], Callable[[int], object]]


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


def timing(seconds: Sequence[float]) -> Timing:
    """Per-call times (seconds) summed up, in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return Timing(
        p50=float(np.median(ms)),
        p95=float(np.percentile(ms, 95)),
        mean=float(ms.mean()),
        min=float(ms.min()),
    )


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
    return timing(times[0]), timing(times[1])


def _against(timed: tuple[Timing, Timing], **described: Any) -> Kernel:
    ours, base = timed
    return Kernel(
        ours_ms=ours,
        baseline_ms=base,
        # > 1: ours is that many times faster than the baseline (medians).
        speedup=base.p50 / ours.p50 if ours.p50 > 0 else None,
        **described,
    )


def kernel_baselines(
    runner: Runner,
    frame: npt.NDArray[np.uint8],
    rounds: int,
    progress: Progress,
) -> dict[str, Any]:
    """Ours against OpenCV + NumPy for each per-frame step of ``runner``'s loop, on one core,
    in this process: the ``edge bench`` JSON's kernel entries (:class:`Kernel`, or a
    :class:`Timing` for ``loop_prepare_ms``), by key. Each checks the answers agree first."""
    model, spec = runner.model, runner.model.input
    src: Src = "gray" if frame.ndim == 2 else "bgr"
    pre = model.preprocessor_for(src)
    out = np.empty(pre.shape, pre.dtype)
    # The runtime's quantization of its input is what the baseline must reproduce.
    quantization = model.input_quantization
    steps = 4 if runner.calibration is not None else 3
    update = progress("bench: baselines", rounds * steps)

    def on_round() -> None:
        update(1)

    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # ours is single-threaded: the comparison is per core
    try:
        doc: dict[str, Any] = {}

        # Preprocessing: camera frame → model input.
        def baseline_input() -> Array | None:
            return opencv_numpy_input(
                frame,
                spec,
                layout=model.file.layout or "nhwc",
                dtype=pre.dtype,
                quantization=quantization,
            )

        expected = baseline_input()
        if expected is None:
            doc["preprocess"] = Kernel(skipped=f"the baseline does not do fit={spec.fit!r}")
        else:
            ours_input = pre(frame, out)
            diff = float(np.abs(ours_input.astype(np.float64) - expected.astype(np.float64)).max())
            tolerance = input_tolerance(spec, quantization)
            doc["preprocess"] = _against(
                time_pair(lambda: pre(frame, out), baseline_input, rounds, on_round=on_round),
                ours="edge.Preprocessor (one C++ pass)",
                baseline="centre crop + cv2.resize + cv2.cvtColor + NumPy normalise/quantize",
                max_abs_diff=diff,
                tolerance=tolerance,
                agrees=diff <= tolerance,
            )

        # The loop's own preprocessing step, alone: view + tensor + statistics.
        analyzer = runner.analyzer
        item = Frame(0, time.time(), time.monotonic(), time.perf_counter(), frame, 0.0)
        analyzer.prepare(item)
        prepare_times = []
        for _ in range(max(rounds // 2, 1)):
            t0 = time.perf_counter()
            analyzer.prepare(item)
            prepare_times.append(time.perf_counter() - t0)
        doc["loop_prepare_ms"] = timing(prepare_times)

        # Frame statistics of the model's view.
        view_color: Dst = "gray" if spec.color == "gray" else "rgb"
        view_pre = Preprocessor(
            size=spec.size, src=src, dst=view_color, resize=spec.resize, fit=spec.fit
        )
        view = view_pre(frame)[0]
        if view.ndim == 3 and view.shape[-1] == 1:
            view = view[..., 0]

        def numpy_stats() -> tuple[float, ...]:
            grey = view if view.ndim == 2 else cv2.cvtColor(view, cv2.COLOR_RGB2GRAY)
            return numpy_frame_stats(grey)

        ours_stats = _core.frame_stats(view, src=view_color)
        want = numpy_stats()
        doc["frame_stats"] = _against(
            time_pair(
                lambda: _core.frame_stats(view, src=view_color),
                numpy_stats,
                rounds,
                on_round=on_round,
            ),
            ours="_core.frame_stats",
            baseline="cv2.cvtColor + NumPy (mean, std, Laplacian variance, shares)",
            agrees=bool(
                abs(ours_stats.brightness - want[0]) <= 1.0
                and math.isclose(ours_stats.sharpness, want[2], rel_tol=0.05, abs_tol=1.0)
            ),
        )

        # Scores of the model's outputs, on its real outputs for this frame.
        prediction = model.run(pre(frame, out))
        logits, embedding = prediction.logits, prediction.embedding
        temperature = runner.calibration.temperature if runner.calibration is not None else 1.0
        ours_logit = _core.logit_scores(logits, temperature)[0]
        want_logit = numpy_logit_scores(logits, temperature)
        doc["logit_scores"] = _against(
            time_pair(
                lambda: _core.logit_scores(logits, temperature),
                lambda: numpy_logit_scores(logits, temperature),
                rounds,
                on_round=on_round,
            ),
            ours="_core.logit_scores",
            baseline="NumPy softmax, energy, entropy",
            agrees=bool(
                math.isclose(ours_logit.msp, want_logit[0], rel_tol=1e-4, abs_tol=1e-6)
                and math.isclose(ours_logit.energy, want_logit[1], rel_tol=1e-4, abs_tol=1e-4)
            ),
        )

        loaded = load_calibration(model.manifest) if runner.calibration else None
        if loaded is None:
            doc["ood_scores"] = Kernel(skipped="the model is not calibrated (run `edge calibrate`)")
        else:
            reference = loaded[1]
            scorer = reference.scorer()
            maha, _, knn = scorer.score(embedding)
            want_maha, want_knn = numpy_embedding_scores(reference, embedding)
            doc["ood_scores"] = _against(
                time_pair(
                    lambda: scorer.score(embedding),
                    lambda: numpy_embedding_scores(reference, embedding),
                    rounds,
                    on_round=on_round,
                ),
                ours="OodScorer.score (C++)",
                baseline="NumPy projection, whitening, nearest mean, k-NN over the bank",
                embedding_dim=int(embedding.shape[0]),
                bank=int(reference.bank.shape[0]),
                classes=int(reference.class_means.shape[0]),
                agrees=bool(
                    math.isclose(maha, want_maha, rel_tol=1e-3, abs_tol=1e-3)
                    and math.isclose(knn, want_knn, rel_tol=1e-3, abs_tol=1e-4)
                ),
            )
        return doc
    finally:
        cv2.setNumThreads(cv2_threads)


__all__ = [
    "Progress",
    "Timing",
    "centre_crop",
    "input_tolerance",
    "kernel_baselines",
    "numpy_embedding_scores",
    "numpy_frame_stats",
    "numpy_logit_scores",
    "opencv_numpy_input",
    "time_pair",
    "timing",
]
