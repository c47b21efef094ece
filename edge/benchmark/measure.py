"""``edge bench``'s measurement: the real loop on the target device, timed per stage, and in
the same run the bare runtime and the kernel baselines a user would otherwise pick.

Order of one run, chosen so that each figure is measured where it is clean:

1. the loop (:class:`~edge.runtime.Runner`, the one ``edge run`` uses) is built — startup;
2. half of the bare runtime loop (``model.run`` on one preprocessed tensor, same session,
   same threads), then the loop over ``warmup + frames`` frames, then the other half: the
   bare figure brackets the loop's, so a burst of load on a shared machine hits both;
3. peak RSS, read before anything else allocates;
4. the kernel baselines (:func:`~edge.benchmark.baselines.kernel_baselines`);
5. a second model load, for the load time without the runtime's import.
"""

from __future__ import annotations

import datetime
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.benchmark import baselines
from edge.benchmark.baselines import Progress
from edge.benchmark.device import (
    ThreadClocks,
    current_rss_kb,
    device_info,
    own_schedstat,
    peak_rss_kb,
    thread_clocks,
)
from edge.benchmark.schema import (
    Baselines,
    Cpu,
    Loop,
    Memory,
    ModelInfo,
    Quantiles,
    Report,
    RuntimeBaseline,
    Source,
    Startup,
    Target,
    Targets,
    ThreadTime,
)
from edge.errors import SourceError, UsageError
from edge.model import Model, load_model
from edge.runtime.analyze import Result
from edge.runtime.capture import open_reader
from edge.runtime.config import load_config
from edge.runtime.loop import Runner, open_runner
from edge.runtime.telemetry import STAGES

#: Issue 5's targets for the loop (efficientnet-lite0, 1080p, one runtime thread).
SHARE_TARGET = 0.95
OVERHEAD_TARGET_MS = 1.0
#: Fewest measured frames the RSS samples must span for a slope. Over fewer, one step of the
#: allocator (a new arena, a page of a cache) is the whole "trend", and scaling it to 1 000
#: frames turns a one-off into a leak.
RSS_SLOPE_MIN_FRAMES = 100
DEFAULT_SOURCE = "synthetic:1920x1080"
_SYNTHETIC = re.compile(r"(\d+)x(\d+)")


@dataclass(frozen=True)
class BenchOptions:
    """What ``edge bench`` runs; see :func:`run_benchmark`."""

    model: Path
    source: str = DEFAULT_SOURCE  # a source URI, as ``edge run --source`` takes it
    frames: int = 300
    warmup: int = 30
    threads: int | None = 1
    backend: str = "auto"
    #: Calls of each kernel baseline and of ours (alternating); 0 skips the kernel baselines.
    rounds: int = 200
    #: Sample RSS every this many measured frames (0: about 200 samples over the run).
    rss_every: int = 0

    def check(self) -> None:
        if self.frames < 1:
            raise UsageError(f"--frames must be at least 1, got {self.frames}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        if self.rounds < 0:
            raise UsageError(f"--rounds must be 0 or more, got {self.rounds}")


def synthetic_uri(size: str) -> str:
    """``WxH`` → the synthetic source's URI; a :class:`UsageError` for anything else."""
    match = _SYNTHETIC.fullmatch(size.strip().lower())
    if not match:
        raise UsageError(f"--synthetic takes WIDTHxHEIGHT, e.g. 1920x1080; got {size!r}")
    return f"synthetic:{int(match[1])}x{int(match[2])}"


def _no_progress(label: str, total: int) -> Callable[[int], object]:
    return lambda n: None


def tqdm_progress(label: str, total: int) -> Callable[[int], object]:
    """A progress bar on stderr (quiet when stderr is not a terminal), like ``edge``'s other
    long commands; returns its ``update``. The bar closes itself when it reaches ``total``."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="frame", leave=False, disable=None, file=sys.stderr)

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update


class _Recorder:
    """Observes the runner's telemetry (:meth:`~edge.runtime.telemetry.Telemetry.observe`):
    keeps every frame's stage timings and completion time, and marks where warm-up ends
    (clock, CPU time, RSS), so that the figures describe only the measured frames. The
    runner's own telemetry still counts all of them."""

    def __init__(
        self,
        warmup: int,
        total: int,
        rss_every: int,
        update: Callable[[int], object],
        depths: Callable[[], Mapping[str, float]],
    ) -> None:
        self._depths = depths
        self.depth_sums: dict[str, float] = {}
        self.clocks: tuple[ThreadClocks | None, ThreadClocks | None] = (None, None)
        self.warmup = warmup
        # Filled, not np.zeros: calloc'd pages would be faulted in as frames arrive and show
        # up in the RSS samples as growth of the loop's.
        self.timings = np.full((len(STAGES), total), 0.0)
        self.done = np.full(total, 0.0)  # perf_counter() when each frame was handed off
        self.n = 0
        self.rss_every = rss_every
        self.rss: list[tuple[int, int]] = []  # (measured frame index, RSS KiB)
        self._update = update
        self.start = (time.perf_counter(), time.process_time())
        if warmup == 0:
            self.clocks = (thread_clocks(), None)

    def __call__(self, result: Result) -> None:
        i = self.n
        if i < self.done.shape[0]:
            timings = result.timings
            for s, stage in enumerate(STAGES):
                self.timings[s, i] = timings.get(stage, 0.0)
            self.done[i] = time.perf_counter()
            if i + 1 == self.warmup:  # the measured window starts when warm-up ends
                self.start = (self.done[i], time.process_time())
                self.clocks = (thread_clocks(), None)
            measured = i + 1 - self.warmup
            if i + 1 == self.done.shape[0]:  # the last frame: the stage threads still exist
                self.clocks = (self.clocks[0], thread_clocks())
            if measured > 0:
                for name, depth in self._depths().items():
                    self.depth_sums[name] = self.depth_sums.get(name, 0.0) + depth
            if measured >= 0 and measured % self.rss_every == 0:
                rss = current_rss_kb()
                if rss is not None:
                    self.rss.append((measured, rss))
        self.n += 1
        self._update(1)


def _stage_percentiles(values: npt.NDArray[np.float64]) -> dict[str, Quantiles]:
    q = np.percentile(values, [50, 95, 99], axis=1) * 1e3
    mean = values.mean(axis=1) * 1e3
    return {
        stage: Quantiles(
            p50=float(q[0, i]), p95=float(q[1, i]), p99=float(q[2, i]), mean=float(mean[i])
        )
        for i, stage in enumerate(STAGES)
    }


def rss_slope_kb_per_1000(samples: list[tuple[int, int]]) -> float | None:
    """Least-squares slope of RSS over frames, in KiB per 1 000 frames; None when there are
    fewer than 3 samples or they span fewer than :data:`RSS_SLOPE_MIN_FRAMES` frames."""
    if len(samples) < 3:
        return None
    x = np.array([s[0] for s in samples], np.float64)
    y = np.array([s[1] for s in samples], np.float64)
    if np.ptp(x) < RSS_SLOPE_MIN_FRAMES:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * 1000)


def _thread_breakdown(
    clocks: tuple[ThreadClocks | None, ThreadClocks | None],
    frames: int,
    seconds: float,
) -> dict[str, ThreadTime] | None:
    """Per thread over the measured window, per frame: ms on a CPU, ms runnable but waiting
    for one (other threads and processes had it), and the rest of the frame's wall time, in
    which the thread was blocked (on a queue, the GIL or a lock)."""
    first, last = clocks
    if first is None or last is None or frames < 1:
        return None
    wall_ms = seconds / frames * 1e3
    out = {}
    for name, (cpu1, wait1) in sorted(last.items()):
        cpu0, wait0 = first.get(name, (0, 0))
        if cpu1 == cpu0 and wait1 == wait0:
            continue  # idle all along (a progress bar's monitor, an unused pool)
        cpu = (cpu1 - cpu0) / frames / 1e6
        wait = (wait1 - wait0) / frames / 1e6
        out[name] = ThreadTime(
            cpu_ms=cpu, runqueue_ms=wait, blocked_ms=max(wall_ms - cpu - wait, 0.0)
        )
    return out


def _trim_heap() -> int | None:
    """Hands the C heap's free pages back to the system (glibc only); returns the KiB it
    released. Building the runner frees large temporaries (the synthetic source builds its
    frames from full-size float arrays) that glibc keeps mapped: they are not memory the loop
    uses, and left in place they would be counted in its RSS."""
    import ctypes
    import ctypes.util

    before = current_rss_kb()
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None or before is None:
        return None
    trim(0)
    after = current_rss_kb()
    return before - after if after is not None else None


@dataclass
class _Bare:
    times: list[float]
    wall: float
    cpu: float
    runqueue_ns: int


def _bare_loop(
    model: Model, tensor: npt.NDArray[Any], n: int, update: Callable[[int], object]
) -> _Bare:
    """``model.run`` on one tensor, ``n`` times: per-call seconds, wall and CPU seconds, and
    the time spent waiting for a CPU (the machine's other load, for comparison with the
    loop's runtime thread)."""
    times = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    wait0 = own_schedstat()[1]
    for _ in range(n):
        t0 = time.perf_counter()
        model.run(tensor)
        times.append(time.perf_counter() - t0)
        update(1)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return _Bare(times, wall, cpu, own_schedstat()[1] - wait0)


def _first_frame(runner: Runner) -> npt.NDArray[np.uint8]:
    """A frame of the benchmark's source, for the kernel baselines and the bare loop's tensor
    (the source opened a second time, so the runner's capture is untouched)."""
    reader = open_reader(runner.config.source.uri, runner.config.source)
    try:
        image = reader.read()
    finally:
        reader.close()
    if image is None:
        raise SourceError(f"source {runner.config.source.uri!r} gave no frame")
    return np.ascontiguousarray(image)


def run_benchmark(options: BenchOptions, *, progress: Progress | None = None) -> Report:
    """Runs the benchmark; returns its report (the ``edge bench`` JSON document)."""
    options.check()
    progress = progress or _no_progress
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    device = device_info()
    total = options.warmup + options.frames
    config = load_config(
        None,
        {
            "source.uri": options.source,
            "model.path": str(options.model),
            "model.backend": options.backend,
            "model.threads": options.threads,
            "max_frames": total,
            "metrics.enabled": False,
        },
    )

    t0 = time.perf_counter()
    runner = open_runner(config)  # cold: the runtime's import, hash checks, session, source
    startup_s = time.perf_counter() - t0
    model = runner.model
    frame = _first_frame(runner)
    heap_trimmed = _trim_heap()
    tensor = model.preprocessor_for("gray" if frame.ndim == 2 else "bgr")(frame)

    # The bare runtime loop, half before the loop and half after it.
    bare_update = progress("bench: bare runtime", options.frames + min(options.warmup, 10))
    for _ in range(min(options.warmup, 10)):
        model.run(tensor)
        bare_update(1)
    half = options.frames // 2
    before = _bare_loop(model, tensor, half, bare_update)

    rss_every = options.rss_every or max(1, options.frames // 200)

    def depths() -> Mapping[str, float]:
        return runner.live_values()["gauges"]

    recorder = _Recorder(
        options.warmup,
        total,
        rss_every,
        progress("bench: loop", total),
        depths,
    )
    runner.telemetry.observe(recorder)
    rss_before_loop = current_rss_kb()
    summary = runner.run()
    loop_cpu_end = time.process_time()
    after = _bare_loop(model, tensor, options.frames - half, bare_update)
    peak_rss = peak_rss_kb()
    rss_end = current_rss_kb()

    n = min(recorder.n, total)
    measured = n - options.warmup
    if measured < 1:
        raise UsageError(
            f"source {options.source!r} gave {n} frames; it needs more than --warmup "
            f"{options.warmup} (lower --warmup or use a longer source)"
        )
    wall0, cpu0 = recorder.start
    loop_seconds = float(recorder.done[n - 1] - wall0)
    # CPU time of the whole process over the measured window, every thread included; the
    # window ends at the last frame's hand-off, and the few ms to the join are not frames.
    loop_cpu = loop_cpu_end - cpu0
    timings = recorder.timings[:, options.warmup : n]
    latency = _stage_percentiles(timings)
    intervals = np.diff(recorder.done[max(options.warmup - 1, 0) : n])
    loop_fps = measured / loop_seconds if loop_seconds > 0 else math.inf

    bare_times = before.times + after.times
    bare_wall = before.wall + after.wall
    bare_cpu = before.cpu + after.cpu
    bare = baselines.timing(bare_times) if bare_times else None
    bare_fps = len(bare_times) / bare_wall if bare_wall > 0 else None
    share = loop_fps / bare_fps if bare_fps else None
    share_median = (
        float(bare.p50 / (np.median(intervals) * 1e3))
        if bare is not None and len(intervals)
        else None
    )
    overhead_p50 = latency["overhead"].p50
    threads = _thread_breakdown(recorder.clocks, measured, loop_seconds)
    infer = (threads or {}).get("edge-infer")
    # What the share would be if the runtime thread never waited for a CPU (a free core for
    # the other stages): the bare loop's CPU per frame over the runtime thread's CPU plus
    # blocked time in the loop. On a shared machine it separates what the loop itself costs
    # the runtime (GIL, queues, cache) from what the machine's other load takes.
    share_uncontended = (
        (bare_cpu / len(bare_times) * 1e3) / (infer.cpu_ms + infer.blocked_ms)
        if infer is not None and bare_times and infer.cpu_ms + infer.blocked_ms > 0
        else None
    )

    kernel = (
        baselines.kernel_baselines(runner, frame, options.rounds, progress)
        if options.rounds > 0
        else {}
    )

    t0 = time.perf_counter()
    load_model(options.model, backend=model.backend, threads=options.threads)
    model_load_s = time.perf_counter() - t0

    height, width = frame.shape[:2]
    rss_samples = recorder.rss
    return Report(
        created=created,
        device=device,
        model=ModelInfo(
            name=model.name,
            version=model.manifest.version,
            path=str(options.model),
            file=model.file.name,
            backend=model.backend,
            sha256=model.sha256,
            threads=options.threads,
            input_shape=[int(d) for d in model.input_shape],
            input_dtype=str(model.input_dtype),
            calibrated=runner.calibration is not None,
        ),
        source=Source(
            uri=options.source,
            width=int(width),
            height=int(height),
            warmup=options.warmup,
            frames=measured,
        ),
        startup_ms=Startup(runner=startup_s * 1e3, model_load=model_load_s * 1e3),
        loop=Loop(
            frames=measured,
            seconds=loop_seconds,
            fps=loop_fps,
            fps_median=float(1.0 / np.median(intervals)) if len(intervals) else None,
            latency_ms=latency,
            cpu=Cpu(
                seconds=loop_cpu,
                ms_per_frame=loop_cpu / measured * 1e3,
                percent_of_core=100 * loop_cpu / loop_seconds if loop_seconds > 0 else None,
            ),
            threads_ms_per_frame=threads,
            queue_depth_mean={
                name.partition("=")[2].rstrip("}") or name: total_depth / max(measured - 1, 1)
                for name, total_depth in recorder.depth_sums.items()
                if name.startswith("queue_depth")
            },
            decisions=summary["decisions"],
            dropped=summary["dropped"],
            errors=sum(summary["errors"].values()),
        ),
        memory=Memory(
            peak_rss_kb=peak_rss,
            rss_before_loop_kb=rss_before_loop,
            heap_trimmed_kb=heap_trimmed,
            rss_after_warmup_kb=rss_samples[0][1] if rss_samples else None,
            rss_end_kb=rss_end,
            rss_slope_kb_per_1000_frames=rss_slope_kb_per_1000(rss_samples),
            rss_samples=rss_samples,
        ),
        baselines=Baselines(
            runtime=RuntimeBaseline(
                baseline="model.run(tensor) in a tight loop, same session and threads",
                frames=len(bare_times),
                fps=bare_fps,
                latency_ms=bare,
                cpu_ms_per_frame=bare_cpu / len(bare_times) * 1e3 if bare_times else None,
                runqueue_ms_per_frame=(before.runqueue_ns + after.runqueue_ns)
                / len(bare_times)
                / 1e6
                if bare_times
                else None,
                fps_before=half / before.wall if before.wall > 0 else None,
                fps_after=(options.frames - half) / after.wall if after.wall > 0 else None,
                share=share,
                share_median=share_median,
                share_uncontended=share_uncontended,
            ),
            **kernel,
        ),
        targets=Targets(
            runtime_share=Target(
                target=SHARE_TARGET,
                value=share,
                met=share is not None and share >= SHARE_TARGET,
            ),
            overhead_p50_ms=Target(
                target=OVERHEAD_TARGET_MS,
                value=overhead_p50,
                met=overhead_p50 < OVERHEAD_TARGET_MS,
            ),
        ),
    )
