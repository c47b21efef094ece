"""One Preprocessor shared by several threads gives each frame its single-threaded answer.

The kernel releases the GIL, keeps per-thread scratch rows and a plan cache (a few frame sizes,
behind a lock) shared by all callers: frames of many sizes from many threads at once exercise
all three. Whether the threads really overlap in time is not asserted (no timing in tests).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import edge

THREADS = 4
CALLS_PER_THREAD = 60

# More distinct frame sizes than the plan cache keeps (4), so threads evict each other's plans.
FRAME_SIZES = [(640, 480), (64, 48), (1280, 720), (97, 203), (2, 2), (300, 300), (258, 62)]

CONFIGS = {
    "area-int8-nhwc": {
        "size": (96, 96),
        "dtype": "int8",
        "mean": 127,
        "std": 128,
        "scale": 1 / 128,
        "zero_point": -1,
    },
    "bilinear-float32-nchw-letterbox": {
        "size": (80, 48),
        "resize": "bilinear",
        "layout": "nchw",
        "dtype": "float32",
        "mean": (123.7, 116.3, 103.5),
        "std": (58.4, 57.1, 57.4),
        "fit": "letterbox",
    },
    "area-gray-crop-roi": {"size": (33, 17), "dst": "gray", "fit": "crop", "roi": (1, 2, 60, 40)},
    "nv12-area-roi": {"size": (40, 30), "src": "nv12", "roi": (2, 2, 62, 44)},
}


def frames_for(keywords: dict[str, Any], seed: int) -> list[np.ndarray]:
    """Random frames of every size in FRAME_SIZES, in the format the preprocessor reads."""
    rng = np.random.default_rng(seed)
    frames = []
    for width, height in FRAME_SIZES:
        roi = keywords.get("roi")
        if roi is not None and (roi[0] + roi[2] > width or roi[1] + roi[3] > height):
            continue  # too small for the ROI
        if keywords.get("src") == "nv12":  # 4:2:0 needs even sides
            shape: tuple[int, ...] = (height // 2 * 3, width // 2 * 2)
        else:
            shape = (height, width, 3)
        frames.append(rng.integers(0, 256, shape, dtype=np.uint8))
    return frames


def run_in_threads(worker: Any, jobs: list[Any]) -> list[Any]:
    """worker(job) for every job, on THREADS threads released together."""
    start = threading.Barrier(THREADS)
    per_thread = [jobs[i::THREADS] for i in range(THREADS)]

    def run(my_jobs: list[Any]) -> list[Any]:
        start.wait()
        return [worker(job) for job in my_jobs]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, per_thread))
    # Back in job order.
    ordered: list[Any] = [None] * len(jobs)
    for i, thread_results in enumerate(results):
        ordered[i::THREADS] = thread_results
    return ordered


def jobs_for(frames: list[np.ndarray], seed: int) -> list[int]:
    """THREADS × CALLS_PER_THREAD frame indices in random order, so sizes interleave."""
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, len(frames), THREADS * CALLS_PER_THREAD))


@pytest.mark.parametrize("config", CONFIGS)
def test_shared_preprocessor_matches_single_thread(config: str) -> None:
    keywords = CONFIGS[config]
    frames = frames_for(keywords, seed=len(config))
    assert len(frames) >= 4, "the configuration's ROI leaves too few frame sizes"
    pre = edge.Preprocessor(**keywords)
    expected = [pre(frame) for frame in frames]
    jobs = jobs_for(frames, seed=1)
    results = run_in_threads(lambda i: pre(frames[i]), jobs)
    for i, result in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(result, expected[i])


@pytest.mark.parametrize("config", CONFIGS)
def test_shared_preprocessor_with_out_matches_single_thread(config: str) -> None:
    keywords = CONFIGS[config]
    frames = frames_for(keywords, seed=len(config) + 1)
    pre = edge.Preprocessor(**keywords)
    expected = [pre(frame) for frame in frames]
    jobs = jobs_for(frames, seed=2)
    outs = [np.empty(pre.shape, pre.dtype) for _ in jobs]  # one each: results must not mix

    def process(job: int) -> bool:
        i = jobs[job]
        return pre(frames[i], outs[job]) is outs[job]

    assert all(run_in_threads(process, list(range(len(jobs)))))
    for job, i in enumerate(jobs):
        np.testing.assert_array_equal(outs[job], expected[i])


def test_many_preprocessors_in_many_threads_match_single_thread() -> None:
    # Different specs in the same threads: each thread's scratch rows serve every spec in turn.
    preprocessors = [edge.Preprocessor(**keywords) for keywords in CONFIGS.values()]
    frames = [frames_for(keywords, seed=5) for keywords in CONFIGS.values()]
    expected = [[pre(f) for f in fs] for pre, fs in zip(preprocessors, frames, strict=True)]
    rng = np.random.default_rng(3)
    jobs = [
        (int(p), int(rng.integers(0, len(frames[p]))))
        for p in rng.integers(0, len(preprocessors), THREADS * CALLS_PER_THREAD)
    ]
    results = run_in_threads(lambda job: preprocessors[job[0]](frames[job[0]][job[1]]), jobs)
    for (p, i), result in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(result, expected[p][i])
