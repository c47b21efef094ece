"""``edge bench`` results for humans: a Markdown report of one run, and two runs side by side.

One unit per kind of figure, everywhere: times in ms, memory in KiB (as the JSON keeps it),
every ratio as ``N.NNN×``; CPU use alone is a percentage of one core, as ``top`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge.benchmark.schema import Kernel, Loop, Report, RuntimeBaseline
from edge.runtime.telemetry import STAGES

KERNELS = (
    ("preprocess", "preprocessing (frame → model input)"),
    ("frame_stats", "frame statistics of the view"),
    ("logit_scores", "logit scores (msp, energy, entropy)"),
    ("ood_scores", "OOD scores (Mahalanobis, k-NN)"),
)
#: Said wherever ``total`` latency appears: it is the one stage that is not a stage.
TOTAL_NOTE = "`total` runs from capture to hand-off, so it includes queue wait"
NO_SLOPE = "n/a: too few frames"


def _num(value: float | int | bool | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    """Every ratio in one unit (a share of 0.97 and a speed-up of 9.4 alike)."""
    return "-" if value is None else f"{value:.3f}×"


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _stage_label(stage: str) -> str:
    return f"{stage} (incl. queue wait)" if stage == "total" else stage


def rss_slope_text(report: Report) -> str:
    """The RSS slope, or why there is none: no number from a run too short to show one."""
    memory = report.memory
    if memory.rss_slope_kb_per_1000_frames is not None:
        return _num(memory.rss_slope_kb_per_1000_frames, 1)
    return NO_SLOPE if memory.rss_samples else "-"  # no samples: no /proc to read them from


def describe(report: Report) -> str:
    """One line: which model, on what, on which board."""
    m, d, s = report.model, report.device, report.source
    flags = ", ".join(d.isa_flags) or "no SIMD flags found"
    return (
        f"{m.name} {m.version} ({m.file}, {m.backend}, threads={m.threads}) "
        f"on {s.width}×{s.height} frames ({s.uri}); {d.cpu}, "
        f"{d.cores_usable}/{d.cores} cores, {flags}; edge ISA {d.edge_isa}"
    )


def markdown(report: Report) -> str:
    """The Markdown report of one ``edge bench`` run."""
    loop, base, mem = report.loop, report.baselines, report.memory
    runtime = base.runtime
    load = report.device.load_average
    lines = [
        "# edge bench",
        "",
        describe(report),
        "",
        f"{loop.frames} frames after {report.source.warmup} of warm-up; "
        f"model sha256 {report.model.sha256[:16]}…; "
        f"load average at start {_num(load[0] if load else None, 2)}.",
        "",
        "## Latency per stage (ms)",
        "",
    ]
    rows = [
        [stage] + [_num(getattr(loop.latency_ms[stage], k)) for k in ("p50", "p95", "p99", "mean")]
        for stage in STAGES
    ]
    lines += _table(["stage", "p50", "p95", "p99", "mean"], rows)
    lines += ["", f"{TOTAL_NOTE}; the other rows are time spent in the stage itself.", ""]
    targets, startup = report.targets, report.startup_ms
    share_target = targets.runtime_share
    overhead_target = targets.overhead_p50_ms

    def met(ok: bool, target: str) -> str:
        return (" ✓" if ok else " ✗") + f" (target {target})"

    lines += [
        "## Throughput and resources",
        "",
        *_table(
            ["", "value"],
            [
                ["loop throughput (fps)", _num(loop.fps, 1)],
                ["bare runtime loop (fps)", _num(runtime.fps, 1)],
                [
                    "loop / bare runtime",
                    _ratio(runtime.share)
                    + met(share_target.met, f"≥ {_ratio(share_target.target)}"),
                ],
                [
                    "loop / bare, if the runtime thread never waited for a CPU",
                    _ratio(runtime.share_uncontended),
                ],
                [
                    "loop overhead p50 (ms)",
                    _num(loop.latency_ms["overhead"].p50)
                    + met(overhead_target.met, f"< {_num(overhead_target.target)} ms"),
                ],
                [
                    "inference p50 in the loop / bare (ms)",
                    f"{_num(loop.latency_ms['inference'].p50)} / "
                    f"{_num(runtime.latency_ms.p50 if runtime.latency_ms else None)}",
                ],
                [
                    "CPU per frame, loop / bare (ms)",
                    f"{_num(loop.cpu.ms_per_frame)} / {_num(runtime.cpu_ms_per_frame)}",
                ],
                ["CPU use (% of one core)", _num(loop.cpu.percent_of_core, 0)],
                ["peak RSS (KiB)", _kib(mem.peak_rss_kb)],
                ["RSS slope (KiB / 1000 frames)", rss_slope_text(report)],
                [
                    "startup: runner / model load (ms)",
                    f"{startup.runner:.0f} / {startup.model_load:.0f}",
                ],
                ["dropped / errors", f"{loop.dropped} / {loop.errors}"],
            ],
        ),
        "",
        *_threads(loop, runtime),
        "## Against the baselines (one core, medians)",
        "",
    ]
    rows = []
    for key, title in KERNELS:
        entry: Kernel | None = getattr(base, key)
        if entry is None:
            continue
        if entry.skipped is not None or entry.ours_ms is None or entry.baseline_ms is None:
            rows.append([title, "-", "-", f"skipped: {entry.skipped}"])
            continue
        agrees = "" if entry.agrees in (True, None) else " (answers differ!)"
        rows.append(
            [
                title,
                _num(entry.ours_ms.p50, 4),
                f"{_num(entry.baseline_ms.p50, 4)} ({entry.baseline})",
                f"**{_ratio(entry.speedup)}**{agrees}",
            ]
        )
    lines += _table(["per frame", "ours (ms)", "baseline (ms)", "baseline / ours"], rows)
    return "\n".join(lines) + "\n"


def _threads(loop: Loop, runtime: RuntimeBaseline) -> list[str]:
    """Where each thread's share of a frame went, next to the bare runtime's thread."""
    threads = loop.threads_ms_per_frame
    if not threads:
        return []
    rows = [
        [name, _num(t.cpu_ms), _num(t.runqueue_ms), _num(t.blocked_ms)]
        for name, t in threads.items()
    ]
    rows.append(
        [
            "bare runtime loop",
            _num(runtime.cpu_ms_per_frame),
            _num(runtime.runqueue_ms_per_frame),
            "",
        ]
    )
    depths = ", ".join(f"{k} {v:.2f}" for k, v in loop.queue_depth_mean.items())
    return [
        "## Where a frame's time goes (ms per frame, per thread)",
        "",
        "On a CPU; runnable but waiting for a CPU (other threads or processes had it); "
        "blocked (on a queue, the GIL or a lock). `MainThread` judges and hands off.",
        "",
        *_table(["thread", "on CPU", "waiting for a CPU", "blocked"], rows),
        "",
        f"Mean queue depths: {depths}.",
        "",
    ]


Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Figure:
    """One row of ``--compare``: a figure, how to read it from a report and show it, and
    which way is better (None: neither way is)."""

    label: str
    get: Callable[[Report], float | int | None]
    show: Callable[[float | int | None], str]
    better: Better | None


def _ms(v: float | int | None) -> str:
    return _num(v, 3)


def _stage_p50(stage: str) -> Callable[[Report], float | None]:
    def get(report: Report) -> float | None:
        quantiles = report.loop.latency_ms.get(stage)
        return quantiles.p50 if quantiles is not None else None

    return get


def _kernel_ms(key: str, side: str) -> Callable[[Report], float | None]:
    def get(report: Report) -> float | None:
        entry: Kernel | None = getattr(report.baselines, key)
        timing = getattr(entry, side) if entry is not None else None
        return timing.p50 if timing is not None else None

    return get


def figures() -> list[Figure]:
    """The rows of ``--compare``, in order."""
    rows = [
        Figure("loop fps", lambda r: r.loop.fps, lambda v: _num(v, 1), "higher"),
        Figure(
            "bare runtime fps", lambda r: r.baselines.runtime.fps, lambda v: _num(v, 1), "higher"
        ),
        Figure("loop / bare runtime", lambda r: r.baselines.runtime.share, _ratio, "higher"),
        Figure(
            "loop / bare, uncontended",
            lambda r: r.baselines.runtime.share_uncontended,
            _ratio,
            "higher",
        ),
    ]
    for stage in STAGES:
        rows.append(
            Figure(
                f"{_stage_label(stage)} p50 (ms)",
                _stage_p50(stage),
                _ms,
                "lower",
            )
        )
    rows += [
        Figure("overhead p95 (ms)", lambda r: r.loop.latency_ms["overhead"].p95, _ms, "lower"),
        Figure(
            f"{_stage_label('total')} p99 (ms)",
            lambda r: r.loop.latency_ms["total"].p99,
            _ms,
            "lower",
        ),
        Figure("CPU per frame (ms)", lambda r: r.loop.cpu.ms_per_frame, _ms, "lower"),
        # Neither way is better: CPU use rises with throughput as much as with cost; CPU per
        # frame, above, is the figure to judge.
        Figure(
            "CPU use (% of a core)",
            lambda r: r.loop.cpu.percent_of_core,
            lambda v: _num(v, 0),
            None,
        ),
        Figure("peak RSS (KiB)", lambda r: r.memory.peak_rss_kb, _kib, "lower"),
        Figure("runner startup (ms)", lambda r: r.startup_ms.runner, lambda v: _num(v, 0), "lower"),
        Figure("model load (ms)", lambda r: r.startup_ms.model_load, lambda v: _num(v, 0), "lower"),
    ]
    for key, title in KERNELS:
        rows.append(Figure(f"{title}: ours (ms)", _kernel_ms(key, "ours_ms"), _ms, "lower"))
        rows.append(Figure(f"{title}: baseline (ms)", _kernel_ms(key, "baseline_ms"), _ms, "lower"))
    return rows


def winner(
    a: float | int | None, b: float | int | None, better: Better | None, names: tuple[str, str]
) -> str:
    """Which of the two runs did better on one figure: a name, ``tie``, or ``-`` (no way to
    tell: a figure missing, or one with no better direction)."""
    if a is None or b is None or better is None:
        return "-"
    if a == b:
        return "tie"
    return names[0] if (a > b) == (better == "higher") else names[1]


def compare(a: Report, b: Report, names: tuple[str, str] = ("A", "B")) -> str:
    """Two runs side by side (Markdown): every figure, B / A, which way is better and which
    run won."""
    lines = [f"- **{names[0]}**: {describe(a)}", f"- **{names[1]}**: {describe(b)}", ""]
    if a.model.sha256 != b.model.sha256:
        lines += ["Note: the two runs used different model files (sha256 differs).", ""]
    rows = []
    for figure in figures():
        va, vb = figure.get(a), figure.get(b)
        if va is None and vb is None:
            continue
        ratio = _ratio(vb / va) if va is not None and vb is not None and va else "-"
        rows.append(
            [
                figure.label,
                figure.show(va),
                figure.show(vb),
                ratio,
                figure.better or "neither",
                winner(va, vb, figure.better, names),
            ]
        )
    header = ["figure", names[0], names[1], f"{names[1]} / {names[0]}", "better", "winner"]
    lines += _table(header, rows)
    lines += [
        "",
        f"{TOTAL_NOTE}. CPU use is better neither higher nor lower: it rises with throughput "
        "as much as with cost; judge CPU per frame.",
    ]
    return "\n".join(lines) + "\n"
