"""The ``edge bench --json`` document as typed structs: what :mod:`~edge.benchmark.measure`
writes and ``--compare`` reads back, from this board or another one.

The keys are those of schema 1 as the README documents them, so files written before these
structs existed still decode. A new key may be added with a default; a key that changes
meaning or goes away bumps :data:`SCHEMA`. Every figure's unit is in its key (``_ms``, ``_kb``,
``fps``, ``percent_``); ratios (``share``, ``speedup``) are plain fractions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from edge.errors import UsageError

#: Version of the JSON document; bumped when a key changes meaning or goes away.
SCHEMA = 1


class _Struct(msgspec.Struct, forbid_unknown_fields=False, kw_only=True):
    """Unknown keys are ignored, so a newer schema-1 file (one more key) still decodes.
    Keyword-only, so a key with a default can sit where schema 1 put it; mypy does not see
    that through the base class, so a subclass that needs it says ``kw_only=True`` again."""


class MemoryKb(_Struct):
    total: int | None
    available: int | None


class Device(_Struct):
    cpu: str
    machine: str
    cores: int | None
    cores_usable: int
    isa_flags: list[str]
    memory_kb: MemoryKb
    os: str
    python: str
    packages: dict[str, str | None]
    opencv: str
    opencv_threads: int
    edge_isa: str
    edge_isa_forced: str | None = None
    load_average: list[float] | None = None


class ModelInfo(_Struct):
    name: str
    version: str
    path: str
    file: str
    backend: str
    sha256: str
    threads: int | None
    input_shape: list[int]
    input_dtype: str
    calibrated: bool


class Source(_Struct):
    uri: str
    width: int
    height: int
    warmup: int
    frames: int


class Startup(_Struct):
    runner: float
    model_load: float


class Quantiles(_Struct):
    """One stage's latency over the measured frames, in ms."""

    p50: float
    p95: float
    p99: float
    mean: float


class Timing(_Struct):
    """Per-call times of one contender, in ms."""

    p50: float
    p95: float
    mean: float
    min: float


class Cpu(_Struct):
    seconds: float
    ms_per_frame: float
    percent_of_core: float | None


class ThreadTime(_Struct):
    """One thread's share of a frame, in ms: on a CPU, runnable but waiting for one, and the
    rest of the frame's wall time, blocked (on a queue, the GIL or a lock)."""

    cpu_ms: float
    runqueue_ms: float
    blocked_ms: float


class Loop(_Struct, kw_only=True):
    frames: int
    seconds: float
    fps: float
    fps_median: float | None
    #: Per stage (``edge.runtime.telemetry.STAGES``); ``total`` runs from capture to the
    #: hand-off, so it includes the time a frame waits in the queues between stages.
    latency_ms: dict[str, Quantiles]
    cpu: Cpu
    #: Where each thread's share of a frame went: the first thing to read when the loop falls
    #: short of the bare runtime (Linux only; None elsewhere).
    threads_ms_per_frame: dict[str, ThreadTime] | None = None
    queue_depth_mean: dict[str, float] = msgspec.field(default_factory=dict)
    decisions: dict[str, int]
    dropped: int
    errors: int


class Memory(_Struct, kw_only=True):
    peak_rss_kb: int
    rss_before_loop_kb: int | None = None
    #: Freed heap glibc kept after start-up, handed back before measuring (None: not glibc);
    #: it is in peak_rss_kb, not in the samples.
    heap_trimmed_kb: int | None = None
    rss_after_warmup_kb: int | None
    rss_end_kb: int | None
    #: None when the samples span too few frames for a slope to mean anything.
    rss_slope_kb_per_1000_frames: float | None
    #: (measured frame index, RSS in KiB)
    rss_samples: list[tuple[int, int]]


class RuntimeBaseline(_Struct, kw_only=True):
    baseline: str
    frames: int
    fps: float | None
    latency_ms: Timing | None
    cpu_ms_per_frame: float | None
    runqueue_ms_per_frame: float | None = None
    fps_before: float | None = None
    fps_after: float | None = None
    #: Our loop's throughput as a fraction of the bare loop's (1.0: no cost at all).
    share: float | None
    share_median: float | None = None
    share_uncontended: float | None = None


class Kernel(
    _Struct,
    omit_defaults=True,  # a skipped kernel is {"skipped": why}, as schema 1 wrote it
):
    """Ours against a baseline for one per-frame step; or only ``skipped``, saying why."""

    skipped: str | None = None
    ours_ms: Timing | None = None
    baseline_ms: Timing | None = None
    #: > 1: ours is that many times faster than the baseline (medians).
    speedup: float | None = None
    ours: str | None = None
    baseline: str | None = None
    agrees: bool | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    embedding_dim: int | None = None
    bank: int | None = None
    classes: int | None = None


class Baselines(
    _Struct,
    omit_defaults=True,  # `--rounds 0` skips the kernel baselines: their keys are absent
):
    runtime: RuntimeBaseline
    loop_prepare_ms: Timing | None = None
    preprocess: Kernel | None = None
    frame_stats: Kernel | None = None
    logit_scores: Kernel | None = None
    ood_scores: Kernel | None = None


class Target(_Struct):
    target: float
    value: float | None
    met: bool


class Targets(_Struct):
    runtime_share: Target
    overhead_p50_ms: Target


class Report(_Struct, kw_only=True):
    """One ``edge bench`` run: what ran, on what, and every figure."""

    schema: int = SCHEMA
    created: str
    device: Device
    model: ModelInfo
    source: Source
    startup_ms: Startup
    loop: Loop
    memory: Memory
    baselines: Baselines
    targets: Targets


class _Header(_Struct):
    """Enough of a file to tell whether it is an ``edge bench`` file, and of which schema,
    before the rest is checked (so an old or new schema says so, not "missing key")."""

    schema: Any = None  # anything: a schema this version does not know is still named
    loop: Any = None


def decode(data: bytes | str, where: str = "input") -> Report:
    """A :class:`Report` from JSON; a :class:`UsageError` (one line, naming ``where``) for
    anything that is not an ``edge bench`` document of this schema."""
    try:
        header = msgspec.json.decode(data, type=_Header)
    except msgspec.ValidationError:  # JSON, but not an object (a DecodeError too: first)
        header = _Header()
    except msgspec.DecodeError as exc:
        raise UsageError(f"{where}: not JSON ({exc})") from exc
    if header.schema is None or header.loop is None:
        raise UsageError(f"{where}: not an `edge bench --json` file (no 'schema' and 'loop')")
    if header.schema != SCHEMA:
        raise UsageError(
            f"{where}: edge bench schema {header.schema!r}, this version reads {SCHEMA}"
        )
    try:
        return msgspec.json.decode(data, type=Report)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{where}: not a valid edge bench schema {SCHEMA} file: {exc}") from exc


def load_report(path: Path) -> Report:
    """An ``edge bench`` JSON file; a :class:`UsageError` naming the file if it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode(data, str(path))


__all__ = ["SCHEMA", "Report", "decode", "load_report"]
