"""``edge bench``: the real loop on the target device, timed per stage, and in the same run the
baselines a user would otherwise pick, each with its ratio to ours.

Order of one run, chosen so that each figure is measured where it is clean:

1. the loop (:class:`~edge.runtime.Runner`, the one ``edge run`` uses) is built — startup;
2. half of the bare runtime loop (``model.run`` on one preprocessed tensor, same session,
   same threads), then the loop over ``warmup + frames`` frames, then the other half: the
   bare figure brackets the loop's, so a burst of load on a shared machine hits both;
3. peak RSS, read before anything else allocates;
4. the kernel baselines (OpenCV + NumPy preprocessing, NumPy statistics and scores),
   alternating with ours call by call;
5. a second model load, for the load time without the runtime's import.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from edge._native import _core
from edge.benchmark import baselines
from edge.benchmark.device import current_rss_kb, device_info, peak_rss_kb
from edge.errors import SourceError, UsageError
from edge.judge.calibration import load_calibration
from edge.model import Model, load_model
from edge.model.preprocess import Dst, Preprocessor, Src
from edge.runtime.analyze import Result
from edge.runtime.capture import Frame, open_reader
from edge.runtime.config import load_config
from edge.runtime.loop import Runner, open_runner
from edge.runtime.telemetry import STAGES

#: Version of the JSON document; bumped when a key changes meaning or goes away.
SCHEMA = 1
#: Issue 5's targets for the loop (efficientnet-lite0, 1080p, one runtime thread).
SHARE_TARGET = 0.95
OVERHEAD_TARGET_MS = 1.0
DEFAULT_SOURCE = "synthetic:1920x1080"
_SYNTHETIC = re.compile(r"(\d+)x(\d+)")

Progress = Callable[[str, int], Callable[[int], object]]


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


def thread_clocks() -> dict[str, tuple[int, int]] | None:
    """Per thread of this process: (ns on a CPU, ns runnable but waiting for a CPU), summed
    by Python thread name; threads Python did not start (a runtime's pool) are ``native``.
    None where the kernel does not say (not Linux, no schedstat)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    clocks: dict[str, tuple[int, int]] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(tid), "native")
        on_cpu, waiting = clocks.get(name, (0, 0))
        clocks[name] = (on_cpu + int(fields[0]), waiting + int(fields[1]))
    return clocks or None


class _Recorder:
    """Wraps the runner's per-frame ``telemetry.record``: keeps every frame's stage timings
    and completion time, and marks where warm-up ends (clock, CPU time, RSS), so that the
    figures describe only the measured frames. The runner's own telemetry still sees all."""

    def __init__(
        self,
        record: Callable[[Result], None],
        warmup: int,
        total: int,
        rss_every: int,
        update: Callable[[int], object],
        depths: Callable[[], Mapping[str, float]],
    ) -> None:
        self._record = record
        self._depths = depths
        self.depth_sums: dict[str, float] = {}
        self.clocks: tuple[dict[str, tuple[int, int]] | None, dict[str, tuple[int, int]] | None]
        self.clocks = (None, None)
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
        self._record(result)
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


def _stage_percentiles(values: npt.NDArray[np.float64]) -> dict[str, dict[str, float]]:
    q = np.percentile(values, [50, 95, 99], axis=1) * 1e3
    mean = values.mean(axis=1) * 1e3
    return {
        stage: {
            "p50": float(q[0, i]),
            "p95": float(q[1, i]),
            "p99": float(q[2, i]),
            "mean": float(mean[i]),
        }
        for i, stage in enumerate(STAGES)
    }


def rss_slope_kb_per_1000(samples: list[tuple[int, int]]) -> float | None:
    """Least-squares slope of RSS over frames, in KiB per 1 000 frames (None: < 3 samples)."""
    if len(samples) < 3:
        return None
    x = np.array([s[0] for s in samples], np.float64)
    y = np.array([s[1] for s in samples], np.float64)
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * 1000)


def _thread_breakdown(
    clocks: tuple[dict[str, tuple[int, int]] | None, dict[str, tuple[int, int]] | None],
    frames: int,
    seconds: float,
) -> dict[str, dict[str, float]] | None:
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
        out[name] = {
            "cpu_ms": cpu,
            "runqueue_ms": wait,
            "blocked_ms": max(wall_ms - cpu - wait, 0.0),
        }
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


def _own_schedstat() -> tuple[int, int]:
    """(ns on a CPU, ns waiting for one) of the calling thread; zeros where unknown."""
    try:
        fields = Path("/proc/thread-self/schedstat").read_text().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


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
    wait0 = _own_schedstat()[1]
    for _ in range(n):
        t0 = time.perf_counter()
        model.run(tensor)
        times.append(time.perf_counter() - t0)
        update(1)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return _Bare(times, wall, cpu, _own_schedstat()[1] - wait0)


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


def _ratio(timed: tuple[baselines.Timing, baselines.Timing]) -> dict[str, Any]:
    ours, base = timed
    return {
        "ours_ms": ours.to_json(),
        "baseline_ms": base.to_json(),
        # > 1: ours is that many times faster than the baseline (medians).
        "speedup": base.p50 / ours.p50 if ours.p50 > 0 else None,
    }


def _kernel_baselines(
    runner: Runner,
    frame: npt.NDArray[np.uint8],
    rounds: int,
    progress: Progress,
) -> dict[str, Any]:
    """Ours against OpenCV + NumPy for each per-frame step, on one core, in this process."""
    import cv2

    model, spec = runner.model, runner.model.input
    src: Src = "gray" if frame.ndim == 2 else "bgr"
    pre = model.preprocessor_for(src)
    out = np.empty(pre.shape, pre.dtype)
    # The runtime's quantization of its input is what the baseline must reproduce; Model
    # does not expose it (yet), its session does.
    quantization = model._session.input_quantization
    steps = 4 if runner.calibration is not None else 3
    update = progress("bench: baselines", rounds * steps)
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # ours is single-threaded: the comparison is per core
    try:
        doc: dict[str, Any] = {}

        # Preprocessing: camera frame → model input.
        def baseline_input() -> npt.NDArray[Any] | None:
            return baselines.opencv_numpy_input(
                frame,
                spec,
                layout=model.file.layout or "nhwc",
                dtype=pre.dtype,
                quantization=quantization,
            )

        expected = baseline_input()
        if expected is None:
            doc["preprocess"] = {"skipped": f"the baseline does not do fit={spec.fit!r}"}
        else:
            ours_input = pre(frame, out)
            diff = float(np.abs(ours_input.astype(np.float64) - expected.astype(np.float64)).max())
            entry = _ratio(
                baselines.time_pair(
                    lambda: pre(frame, out), baseline_input, rounds, on_round=lambda: update(1)
                )
            )
            tolerance = baselines.input_tolerance(spec, quantization)
            entry.update(
                ours="edge.Preprocessor (one C++ pass)",
                baseline="centre crop + cv2.resize + cv2.cvtColor + NumPy normalise/quantize",
                max_abs_diff=diff,
                tolerance=tolerance,
                agrees=diff <= tolerance,
            )
            doc["preprocess"] = entry

        # The loop's own preprocessing step, alone: view + tensor + statistics.
        analyzer = runner.analyzer
        item = Frame(0, time.time(), time.perf_counter(), frame, 0.0)
        analyzer.prepare(item)
        prepare_times = []
        for _ in range(max(rounds // 2, 1)):
            t0 = time.perf_counter()
            analyzer.prepare(item)
            prepare_times.append(time.perf_counter() - t0)
        doc["loop_prepare_ms"] = baselines.Timing.of(prepare_times).to_json()

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
            return baselines.numpy_frame_stats(grey)

        ours_stats = _core.frame_stats(view, src=view_color)
        want = numpy_stats()
        entry = _ratio(
            baselines.time_pair(
                lambda: _core.frame_stats(view, src=view_color),
                numpy_stats,
                rounds,
                on_round=lambda: update(1),
            )
        )
        entry.update(
            ours="_core.frame_stats",
            baseline="cv2.cvtColor + NumPy (mean, std, Laplacian variance, shares)",
            agrees=bool(
                abs(ours_stats.brightness - want[0]) <= 1.0
                and math.isclose(ours_stats.sharpness, want[2], rel_tol=0.05, abs_tol=1.0)
            ),
        )
        doc["frame_stats"] = entry

        # Scores of the model's outputs, on its real outputs for this frame.
        prediction = model.run(pre(frame, out))
        logits, embedding = prediction.logits, prediction.embedding
        temperature = runner.calibration.temperature if runner.calibration is not None else 1.0
        ours_logit = _core.logit_scores(logits, temperature)[0]
        want_logit = baselines.numpy_logit_scores(logits, temperature)
        entry = _ratio(
            baselines.time_pair(
                lambda: _core.logit_scores(logits, temperature),
                lambda: baselines.numpy_logit_scores(logits, temperature),
                rounds,
                on_round=lambda: update(1),
            )
        )
        entry.update(
            ours="_core.logit_scores",
            baseline="NumPy softmax, energy, entropy",
            agrees=bool(
                math.isclose(ours_logit.msp, want_logit[0], rel_tol=1e-4, abs_tol=1e-6)
                and math.isclose(ours_logit.energy, want_logit[1], rel_tol=1e-4, abs_tol=1e-4)
            ),
        )
        doc["logit_scores"] = entry

        loaded = load_calibration(model.manifest.directory) if runner.calibration else None
        if loaded is None:
            doc["ood_scores"] = {"skipped": "the model is not calibrated (run `edge calibrate`)"}
        else:
            reference = loaded[1]
            scorer = reference.scorer()
            maha, _, knn = scorer.score(embedding)
            want_maha, want_knn = baselines.numpy_embedding_scores(reference, embedding)
            entry = _ratio(
                baselines.time_pair(
                    lambda: scorer.score(embedding),
                    lambda: baselines.numpy_embedding_scores(reference, embedding),
                    rounds,
                    on_round=lambda: update(1),
                )
            )
            entry.update(
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
            doc["ood_scores"] = entry
        return doc
    finally:
        cv2.setNumThreads(cv2_threads)


def run_benchmark(options: BenchOptions, *, progress: Progress | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns the ``edge bench`` JSON document (see the README)."""
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
        runner.telemetry.record,
        options.warmup,
        total,
        rss_every,
        progress("bench: loop", total),
        depths,
    )
    # An instance attribute shadows the method: the loop calls ours for every frame.
    runner.telemetry.record = recorder  # type: ignore[method-assign]
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
    bare = baselines.Timing.of(bare_times) if bare_times else None
    bare_fps = len(bare_times) / bare_wall if bare_wall > 0 else None
    share = loop_fps / bare_fps if bare_fps else None
    share_median = (
        float(bare.p50 / (np.median(intervals) * 1e3))
        if bare is not None and len(intervals)
        else None
    )
    overhead_p50 = latency["overhead"]["p50"]
    threads = _thread_breakdown(recorder.clocks, measured, loop_seconds)
    infer = (threads or {}).get("edge-infer")
    # What the share would be if the runtime thread never waited for a CPU (a free core for
    # the other stages): the bare loop's CPU per frame over the runtime thread's CPU plus
    # blocked time in the loop. On a shared machine it separates what the loop itself costs
    # the runtime (GIL, queues, cache) from what the machine's other load takes.
    share_uncontended = (
        (bare_cpu / len(bare_times) * 1e3) / (infer["cpu_ms"] + infer["blocked_ms"])
        if infer is not None and bare_times and infer["cpu_ms"] + infer["blocked_ms"] > 0
        else None
    )

    kernel = (
        _kernel_baselines(runner, frame, options.rounds, progress) if options.rounds > 0 else {}
    )

    t0 = time.perf_counter()
    load_model(options.model, backend=model.backend, threads=options.threads)
    model_load_s = time.perf_counter() - t0

    height, width = frame.shape[:2]
    rss_samples = recorder.rss
    return {
        "schema": SCHEMA,
        "created": created,
        "device": device,
        "model": {
            "name": model.name,
            "version": model.manifest.version,
            "path": str(options.model),
            "file": model.file.name,
            "backend": model.backend,
            "sha256": model.sha256,
            "threads": options.threads,
            "input_shape": list(model.input_shape),
            "input_dtype": str(model.input_dtype),
            "calibrated": runner.calibration is not None,
        },
        "source": {
            "uri": options.source,
            "width": int(width),
            "height": int(height),
            "warmup": options.warmup,
            "frames": measured,
        },
        "startup_ms": {
            "runner": startup_s * 1e3,
            "model_load": model_load_s * 1e3,
        },
        "loop": {
            "frames": measured,
            "seconds": loop_seconds,
            "fps": loop_fps,
            "fps_median": float(1.0 / np.median(intervals)) if len(intervals) else None,
            "latency_ms": latency,
            "cpu": {
                "seconds": loop_cpu,
                "ms_per_frame": loop_cpu / measured * 1e3,
                "percent_of_core": 100 * loop_cpu / loop_seconds if loop_seconds > 0 else None,
            },
            # Where each thread's share of a frame went: the first thing to read when the loop
            # falls short of the bare runtime (Linux only; None elsewhere).
            "threads_ms_per_frame": threads,
            "queue_depth_mean": {
                name.partition("=")[2].rstrip("}") or name: total_depth / max(measured - 1, 1)
                for name, total_depth in recorder.depth_sums.items()
                if name.startswith("queue_depth")
            },
            "decisions": summary["decisions"],
            "dropped": summary["dropped"],
            "errors": sum(summary["errors"].values()),
        },
        "memory": {
            "peak_rss_kb": peak_rss,
            "rss_before_loop_kb": rss_before_loop,
            # Freed heap glibc kept after start-up, handed back before measuring (None: not
            # glibc); it is in peak_rss_kb, not in the samples.
            "heap_trimmed_kb": heap_trimmed,
            "rss_after_warmup_kb": rss_samples[0][1] if rss_samples else None,
            "rss_end_kb": rss_end,
            "rss_slope_kb_per_1000_frames": rss_slope_kb_per_1000(rss_samples),
            "rss_samples": [[i, kb] for i, kb in rss_samples],
        },
        "baselines": {
            "runtime": {
                "baseline": "model.run(tensor) in a tight loop, same session and threads",
                "frames": len(bare_times),
                "fps": bare_fps,
                "latency_ms": bare.to_json() if bare is not None else None,
                "cpu_ms_per_frame": bare_cpu / len(bare_times) * 1e3 if bare_times else None,
                "runqueue_ms_per_frame": (before.runqueue_ns + after.runqueue_ns)
                / len(bare_times)
                / 1e6
                if bare_times
                else None,
                "fps_before": half / before.wall if before.wall > 0 else None,
                "fps_after": (options.frames - half) / after.wall if after.wall > 0 else None,
                # Our loop's throughput as a share of the bare loop's (1.0: no cost at all).
                "share": share,
                "share_median": share_median,
                "share_uncontended": share_uncontended,
            },
            **kernel,
        },
        "targets": {
            "runtime_share": {
                "target": SHARE_TARGET,
                "value": share,
                "met": share is not None and share >= SHARE_TARGET,
            },
            "overhead_p50_ms": {
                "target": OVERHEAD_TARGET_MS,
                "value": overhead_p50,
                "met": overhead_p50 < OVERHEAD_TARGET_MS,
            },
        },
    }


def load_report(path: Path) -> dict[str, Any]:
    """An ``edge bench`` JSON file; a :class:`UsageError` naming the file if it is not one."""
    import json

    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or "schema" not in doc or "loop" not in doc:
        raise UsageError(f"{path}: not an `edge bench --json` file (no 'schema' and 'loop')")
    if doc["schema"] != SCHEMA:
        raise UsageError(
            f"{path}: edge bench schema {doc['schema']!r}, this version reads {SCHEMA}"
        )
    return cast(dict[str, Any], doc)
