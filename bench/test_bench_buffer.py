"""The durable buffer: what handing a flagged frame over costs the loop, and how many frames
the writer thread puts on disk per second (encoded, fsynced, renamed, committed).

Frames are 640×480 BGR cut from real photos and stamped with their number, so every image is
distinct; the buffer runs with its default config (JPEG quality 90, near-duplicate detection
on) except the rate limits, which would otherwise refuse almost every frame of a benchmark.
Each dHash is random: the scan over recent frames costs the same, and nothing is refused as
a near-duplicate. Targets (issue 6): offer p99 < 0.2 ms (accepted, and refused while the writer
is stalled), writer >= 100 frames/s::

    .venv/bin/pytest bench/test_bench_buffer.py --benchmark-only
"""

from __future__ import annotations

import functools
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from edge.buffer import Buffer, BufferConfig, RateLimit
from edge.records import Flagged

SIZE = (640, 480)
OFFER_P99_LIMIT = 0.2e-3  # seconds
WRITER_MIN_FPS = 100.0


@functools.cache
def base_frames() -> tuple[np.ndarray, ...]:
    skimage_data = pytest.importorskip("skimage.data")
    return tuple(
        cv2.resize(
            cv2.cvtColor(getattr(skimage_data, name)(), cv2.COLOR_RGB2BGR),
            SIZE,
            interpolation=cv2.INTER_AREA,
        )
        for name in ("astronaut", "coffee", "chelsea", "rocket")
    )


def frame(i: int, rng: random.Random, t: float) -> Flagged:
    img = base_frames()[i % 4].copy()
    cv2.putText(img, str(i), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 3)
    return Flagged(
        image=img,
        frame=i,
        captured_at=t,
        monotonic=t,
        decision="REVIEW",
        reason="confidence",
        label=("shirt", "bag", "sandal")[i % 3],
        confidence=0.5,
        top_k=[("shirt", 0.5), ("bag", 0.3), ("sandal", 0.1)],
        scores={"mahalanobis": 14.2, "knn": 0.71, "default": 5.5},
        stats={"brightness": 0.41, "contrast": 0.22, "sharpness": 280.0, "dark": 0.01},
        dhash=rng.getrandbits(64),
        model="fashion-line",
        model_version="1.0.0",
        model_sha256="0" * 64,
    )


def config() -> BufferConfig:
    return BufferConfig(label_rate=RateLimit(), reason_rate=RateLimit())


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="edge-bench-buffer-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def percentile(data: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(data), q))


def test_offer_latency(benchmark: BenchmarkFixture, data_dir: Path) -> None:
    """offer() on the loop's thread while the writer works on the frames before it.

    Frames come at 100 per second (a busy flagged stream: a whole camera's worth of frames
    flagged at 30 fps is already extreme); the pacing and the frame's making are outside the
    timed call.
    """
    rng = random.Random(0)
    period = 0.01
    buf = Buffer(data_dir, device="bench", config=config())
    state: dict[str, Any] = {"i": 0, "next": time.perf_counter()}
    taken: list[bool] = []

    def setup() -> tuple[tuple[Flagged], dict[str, Any]]:
        i = state["i"]
        state["i"] = i + 1
        item = frame(i, rng, 1_700_000_000.0 + i * period)
        delay = state["next"] - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        state["next"] = max(state["next"], time.perf_counter()) + period
        return (item,), {}

    def offer(item: Flagged) -> None:
        taken.append(buf.offer(item))

    try:
        benchmark.pedantic(offer, setup=setup, rounds=1500, warmup_rounds=20)
        assert buf.flush(30)
    finally:
        buf.close()
    counters = buf.counters()
    data = benchmark.stats.stats.data
    p50, p99 = percentile(data, 50), percentile(data, 99)
    benchmark.extra_info.update(
        {"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3, "accepted": counters["accepted"]}
    )
    print(f"\noffer: p50 {p50 * 1e3:.4f} ms, p99 {p99 * 1e3:.4f} ms, max {max(data) * 1e3:.3f} ms")
    assert all(taken), counters  # the accepting path was measured, not refusals
    assert counters["stored"] == counters["accepted"]
    assert p99 < OFFER_P99_LIMIT, f"offer p99 {p99 * 1e3:.3f} ms"


def test_offer_latency_when_the_writer_is_stalled(
    benchmark: BenchmarkFixture, data_dir: Path
) -> None:
    """offer() refusing a frame because the queue is full: the writer is stalled (its index
    lock held, like a disk that stopped answering), so every frame is refused. The loop must
    not wait for room, so this costs no more than an accepted offer."""
    rng = random.Random(2)
    queue_size = 8
    small_queue = BufferConfig(
        label_rate=RateLimit(), reason_rate=RateLimit(), queue_size=queue_size
    )
    buf = Buffer(data_dir, device="bench", config=small_queue)
    items = [frame(i, rng, 1_700_000_000.0 + i * 0.01) for i in range(queue_size + 50)]
    refused: list[bool] = []
    try:
        with buf._store.lock:
            assert all(buf.offer(item) for item in items[:queue_size])
            rest = iter(items[queue_size:] * 40)

            def offer() -> None:
                refused.append(not buf.offer(next(rest)))

            benchmark.pedantic(offer, rounds=1500, warmup_rounds=20)
        assert buf.flush(30)
    finally:
        buf.close()
    data = benchmark.stats.stats.data
    p50, p99 = percentile(data, 50), percentile(data, 99)
    benchmark.extra_info.update({"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3})
    print(f"\nrefused offer: p50 {p50 * 1e3:.4f} ms, p99 {p99 * 1e3:.4f} ms")
    assert all(refused), buf.counters()  # the refusing path was measured
    assert buf.counters()["queue_full"] == len(refused)
    assert p99 < OFFER_P99_LIMIT, f"refused offer p99 {p99 * 1e3:.3f} ms"


def test_writer_throughput(benchmark: BenchmarkFixture, data_dir: Path) -> None:
    """Frames per second from offer to durable commit, the queue kept full."""
    n = 400
    rng = random.Random(1)
    runs: list[float] = []

    def setup() -> tuple[tuple[Buffer, list[Flagged]], dict[str, Any]]:
        target = data_dir / f"run{len(runs)}"
        items = [frame(i, rng, 1_700_000_000.0 + i) for i in range(n)]
        return (Buffer(target, device="bench", config=config()), items), {}

    def write(buf: Buffer, items: list[Flagged]) -> None:
        start = time.perf_counter()
        for item in items:
            while not buf.offer(item):
                time.sleep(0.0005)  # queue full: the writer is the bottleneck, as intended
        assert buf.flush(60)
        runs.append(n / (time.perf_counter() - start))
        stored = buf.counters()["stored"]
        buf.close()
        assert stored == n

    benchmark.pedantic(write, setup=setup, rounds=3)
    best, median = max(runs), float(np.median(runs))
    benchmark.extra_info.update({"frames_per_s_median": median, "frames_per_s_best": best})
    print(f"\nwriter: {median:.0f} frames/s (median of {len(runs)} runs of {n}), best {best:.0f}")
    assert median >= WRITER_MIN_FPS
