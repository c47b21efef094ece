"""Times edge.preprocess against the OpenCV + NumPy way of making the same model input.

One 1080p BGR camera frame to a 224×224 model input, on one core, in two forms:

* area → int8 NHWC: INTER_AREA resize, BGR→RGB, quantized for an int8 model;
  the baseline is cv2.resize + cv2.cvtColor + NumPy, and the memory floor is one copy of the
  frame's bytes (np.copyto), the least any pass over the frame can cost.
* bilinear → float32 NCHW: the baseline is cv2.dnn.blobFromImage.

Each contender's output is checked against its baseline's before anything is timed, so a fast
wrong kernel fails. The benchmarks in this folder (pytest-benchmark) use the same cases.

    python bench/preprocess_demo.py [--json PATH] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import edge

FRAME_SIZE = (1920, 1080)  # (width, height)
MODEL_SIZE = (224, 224)
MEAN, STD = 127.0, 128.0
# A realistic int8 model input: scale 1/128 and zero point -1, as a full-integer converter
# gives an input normalised to (x − 127) / 128. Then q = x − 128: the whole int8 range.
INT8_SCALE, INT8_ZERO_POINT = 1 / 128, -1
# The speed-ups this kernel is meant to reach (see README); shown, not enforced.
TARGETS = {"area → int8 NHWC": 8.0, "bilinear → float32 NCHW": 2.0}
MAX_FLOOR_RATIO = 3.0


def load_frame() -> tuple[np.ndarray, str]:
    """A 1080p BGR frame and where it came from: a real photo if scikit-image is installed.

    A photo scaled up is smooth, like a camera's picture; without scikit-image, a smooth
    synthetic picture of the same kind (gradients and soft blobs) stands in.
    """
    try:
        from skimage import data
    except ImportError:
        return synthetic_frame(), "synthetic smooth frame (scikit-image not installed)"
    photo = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    frame = cv2.resize(photo, FRAME_SIZE, interpolation=cv2.INTER_CUBIC)
    return frame, "scikit-image 'coffee' photo (600×400) scaled up to 1920×1080 (bicubic)"


def synthetic_frame() -> np.ndarray:
    width, height = FRAME_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    blobs = 60 * np.sin(x / 97.0) * np.cos(y / 61.0)
    channels = [x / width * 200 + blobs, y / height * 180 - blobs, 128 + blobs * 1.5]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Contender:
    """One way to compute a case's output; `run` returns that output."""

    name: str
    run: Callable[[], np.ndarray]


@dataclass(frozen=True)
class Case:
    """Ours against a baseline that computes the same model input."""

    name: str
    ours: Contender
    baseline: Contender
    tolerance: float  # the largest |ours − baseline| allowed, in output units
    floor: Contender | None = None  # what a single pass over the frame's bytes costs


def opencv_numpy_int8(frame: np.ndarray) -> np.ndarray:
    resized = cv2.resize(frame, MODEL_SIZE, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).astype(np.float32)
    quantized = np.rint((rgb - MEAN) / STD / INT8_SCALE + INT8_ZERO_POINT)
    return np.clip(quantized, -128, 127, out=quantized).astype(np.int8)[None]


def make_cases(frame: np.ndarray) -> list[Case]:
    """The benchmark cases for `frame`; outputs are preallocated where ours allows it."""
    to_int8 = edge.Preprocessor(
        size=MODEL_SIZE,
        dtype="int8",
        mean=MEAN,
        std=STD,
        scale=INT8_SCALE,
        zero_point=INT8_ZERO_POINT,
    )
    int8_out = np.empty(to_int8.shape, to_int8.dtype)
    to_float = edge.Preprocessor(
        size=MODEL_SIZE, resize="bilinear", layout="nchw", dtype="float32", mean=MEAN, std=STD
    )
    float_out = np.empty(to_float.shape, to_float.dtype)
    frame_copy = np.empty_like(frame)

    def copy_frame() -> np.ndarray:
        np.copyto(frame_copy, frame)
        return frame_copy

    return [
        Case(
            name="area → int8 NHWC",
            ours=Contender("edge", lambda: to_int8(frame, int8_out)),
            baseline=Contender("cv2.resize + cvtColor + NumPy", lambda: opencv_numpy_int8(frame)),
            # The baseline rounds to uint8 after resizing, ours only at the end: 1 step apart.
            tolerance=1,
            floor=Contender("memory floor (np.copyto)", copy_frame),
        ),
        Case(
            name="bilinear → float32 NCHW",
            ours=Contender("edge", lambda: to_float(frame, float_out)),
            baseline=Contender(
                "cv2.dnn.blobFromImage",
                lambda: cv2.dnn.blobFromImage(frame, 1 / STD, MODEL_SIZE, (MEAN,) * 3, swapRB=True),
            ),
            # blobFromImage resizes in uint8 (whole grey levels, 11-bit weights); ours in float.
            tolerance=1 / STD,
            floor=None,
        ),
    ]


def max_difference(ours: np.ndarray, baseline: np.ndarray) -> float:
    if ours.shape != baseline.shape:
        raise AssertionError(f"shape {ours.shape} differs from the baseline's {baseline.shape}")
    return float(np.abs(ours.astype(np.float64) - baseline.astype(np.float64)).max())


def check_output(case: Case, role: str, output: np.ndarray, frame: np.ndarray) -> float:
    """Raises AssertionError unless `output`, made by the contender `role` ("ours", "baseline"
    or "floor") of `case`, is right; returns its largest difference from the other side."""
    if role == "floor":
        if not np.array_equal(output, frame):
            raise AssertionError(f"{case.name}: the memory floor did not copy the frame")
        return 0.0
    other = case.baseline if role == "ours" else case.ours
    error = max_difference(output, other.run())
    if error > case.tolerance:
        raise AssertionError(
            f"{case.name}: {case.ours.name} and {case.baseline.name} differ by {error:.4g} "
            f"(allowed {case.tolerance:.4g})"
        )
    return error


def check(case: Case, frame: np.ndarray) -> float:
    """Checks every contender of `case`; returns the largest |ours − baseline|."""
    if case.floor is not None:
        check_output(case, "floor", case.floor.run(), frame)
    return check_output(case, "ours", case.ours.run(), frame)


def median_ms(run: Callable[[], Any], samples: int, sample_seconds: float = 0.004) -> float:
    """Median time of one call, in ms, over `samples` batches of about `sample_seconds` each.

    Batching keeps the timer's own cost out of sub-millisecond figures.
    """
    run()  # warm-up: plans, caches, page faults of the outputs
    start = time.perf_counter()
    run()
    calls = max(1, round(sample_seconds / max(time.perf_counter() - start, 1e-7)))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times)) * 1e3


def measure(cases: list[Case], frame: np.ndarray, samples: int) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        error = check(case, frame)
        ours_ms = median_ms(case.ours.run, samples)
        baseline_ms = median_ms(case.baseline.run, samples)
        floor_ms = median_ms(case.floor.run, samples) if case.floor else None
        rows.append(
            {
                "case": case.name,
                "baseline": case.baseline.name,
                "ours_ms": ours_ms,
                "baseline_ms": baseline_ms,
                "speedup": baseline_ms / ours_ms,
                "target_speedup": TARGETS.get(case.name),
                "floor_ms": floor_ms,
                "ours_over_floor": ours_ms / floor_ms if floor_ms else None,
                "max_error": error,
                "tolerance": case.tolerance,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'case':<26}{'ours ms':>9}{'baseline ms':>13}{'speed-up':>10}{'target':>8}"
        f"{'floor ms':>10}{'ours/floor':>12}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        target = row["target_speedup"]
        met = "" if target is None else ("≥" if row["speedup"] >= target else "<") + f"{target:g}×"
        floor_ms = "" if row["floor_ms"] is None else f"{row['floor_ms']:.3f}"
        floor_ratio = "" if row["ours_over_floor"] is None else f"{row['ours_over_floor']:.2f}×"
        lines.append(
            f"{row['case']:<26}{row['ours_ms']:>9.3f}{row['baseline_ms']:>13.3f}"
            f"{row['speedup']:>9.2f}×{met:>8}{floor_ms:>10}{floor_ratio:>12}"
        )
    lines += [f"  baseline of {row['case']}: {row['baseline']}" for row in rows]
    return "\n".join(lines)


def environment(frame_source: str, samples: int) -> dict[str, Any]:
    return {
        "isa": edge.active_isa(),
        "frame": frame_source,
        "frame_size": list(FRAME_SIZE),
        "model_size": list(MODEL_SIZE),
        "threads": 1,
        "samples": samples,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--samples", type=int, default=50, help="timed batches per contender")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)  # one core each: ours is single-threaded too
    frame, frame_source = load_frame()
    env = environment(frame_source, args.samples)
    try:
        rows = measure(make_cases(frame), frame, args.samples)
    except AssertionError as error:
        print(f"wrong result, not timed: {error}", file=sys.stderr)
        return 1
    print(f"edge.active_isa(): {env['isa']}   frame: {frame_source}")
    print(
        f"one thread, {FRAME_SIZE[0]}×{FRAME_SIZE[1]} BGR → {MODEL_SIZE[0]}×{MODEL_SIZE[1]}, "
        f"median of {args.samples} batches"
    )
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
