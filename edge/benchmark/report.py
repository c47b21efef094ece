"""``edge bench`` results for humans: a Markdown report of one run, and two runs side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge.runtime.telemetry import STAGES

KERNELS = (
    ("preprocess", "preprocessing (frame → model input)"),
    ("frame_stats", "frame statistics of the view"),
    ("logit_scores", "logit scores (msp, energy, entropy)"),
    ("ood_scores", "OOD scores (Mahalanobis, k-NN)"),
)


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for key in path.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            return None
    return value


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def describe(doc: Mapping[str, Any]) -> str:
    """One line: which model, on what, on which board."""
    m, d, s = doc["model"], doc["device"], doc["source"]
    flags = ", ".join(d.get("isa_flags") or []) or "no SIMD flags found"
    return (
        f"{m['name']} {m['version']} ({m['file']}, {m['backend']}, threads={m['threads']}) "
        f"on {s['width']}×{s['height']} frames ({s['uri']}); {d['cpu']}, "
        f"{d['cores_usable']}/{d['cores']} cores, {flags}; edge ISA {d['edge_isa']}"
    )


def markdown(doc: Mapping[str, Any]) -> str:
    """The Markdown report of one ``edge bench`` run."""
    loop, base, mem = doc["loop"], doc["baselines"], doc["memory"]
    runtime = base["runtime"]
    lines = [
        "# edge bench",
        "",
        describe(doc),
        "",
        f"{loop['frames']} frames after {doc['source']['warmup']} of warm-up; "
        f"model sha256 {doc['model']['sha256'][:16]}…; "
        f"load average at start {_num(_get(doc, 'device.load_average.0'), 2)}.",
        "",
        "## Latency per stage (ms)",
        "",
    ]
    rows = [
        [stage] + [_num(loop["latency_ms"][stage][k]) for k in ("p50", "p95", "p99", "mean")]
        for stage in STAGES
    ]
    lines += _table(["stage", "p50", "p95", "p99", "mean"], rows)
    share = runtime.get("share")
    cpu = f"{_num(loop['cpu']['ms_per_frame'])} / {_num(runtime.get('cpu_ms_per_frame'))}"
    startup = doc["startup_ms"]
    startup_ms = f"{_num(startup['runner'], 0)} / {_num(startup['model_load'], 0)}"
    targets = doc.get("targets", {})

    def met(name: str) -> str:
        t = targets.get(name)
        return "" if t is None else (" ✓" if t["met"] else " ✗") + f" (target {t['target']})"

    lines += [
        "",
        "## Throughput and resources",
        "",
        *_table(
            ["", "value"],
            [
                ["loop throughput (fps)", _num(loop["fps"], 1)],
                ["bare runtime loop (fps)", _num(runtime.get("fps"), 1)],
                [
                    "loop / bare runtime",
                    (f"{100 * share:.1f}%" if share is not None else "-") + met("runtime_share"),
                ],
                [
                    "loop / bare, if the runtime thread never waited for a CPU",
                    _pct(runtime.get("share_uncontended")),
                ],
                [
                    "loop overhead p50 (ms)",
                    _num(loop["latency_ms"]["overhead"]["p50"]) + met("overhead_p50_ms"),
                ],
                [
                    "inference p50 in the loop / bare (ms)",
                    f"{_num(loop['latency_ms']['inference']['p50'])} / "
                    f"{_num(_get(runtime, 'latency_ms.p50'))}",
                ],
                ["CPU per frame, loop / bare (ms)", cpu],
                ["CPU use (% of one core)", _num(loop["cpu"]["percent_of_core"], 0)],
                ["peak RSS (MiB)", _num(mem["peak_rss_kb"] / 1024, 1)],
                ["RSS slope (KiB / 1000 frames)", _num(mem["rss_slope_kb_per_1000_frames"], 1)],
                ["startup: runner / model load (ms)", startup_ms],
                ["dropped / errors", f"{loop['dropped']} / {loop['errors']}"],
            ],
        ),
        "",
        *_threads(loop, runtime),
        "## Against the baselines (one core, medians)",
        "",
    ]
    rows = []
    for key, title in KERNELS:
        entry = base.get(key)
        if entry is None:
            continue
        if "skipped" in entry:
            rows.append([title, "-", "-", f"skipped: {entry['skipped']}"])
            continue
        agrees = "" if entry.get("agrees", True) else " (answers differ!)"
        rows.append(
            [
                title,
                _num(entry["ours_ms"]["p50"], 4),
                f"{_num(entry['baseline_ms']['p50'], 4)} ({entry['baseline']})",
                f"**{_num(entry['speedup'], 2)}×** faster{agrees}",
            ]
        )
    lines += _table(["per frame", "ours (ms)", "baseline (ms)", "ratio"], rows)
    return "\n".join(lines) + "\n"


def _threads(loop: Mapping[str, Any], runtime: Mapping[str, Any]) -> list[str]:
    """Where each thread's share of a frame went, next to the bare runtime's thread."""
    threads = loop.get("threads_ms_per_frame")
    if not threads:
        return []
    rows = [
        [name, _num(t["cpu_ms"]), _num(t["runqueue_ms"]), _num(t["blocked_ms"])]
        for name, t in threads.items()
    ]
    rows.append(
        [
            "bare runtime loop",
            _num(runtime.get("cpu_ms_per_frame")),
            _num(runtime.get("runqueue_ms_per_frame")),
            "",
        ]
    )
    depths = ", ".join(f"{k} {v:.2f}" for k, v in loop.get("queue_depth_mean", {}).items())
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


#: (label, path in the document, how to show it)
Row = tuple[str, str, Callable[[Any], str]]


def _ms(v: Any) -> str:
    return _num(v, 3)


def _rows() -> list[Row]:
    rows: list[Row] = [
        ("loop fps", "loop.fps", lambda v: _num(v, 1)),
        ("bare runtime fps", "baselines.runtime.fps", lambda v: _num(v, 1)),
        ("loop / bare runtime", "baselines.runtime.share", lambda v: _num(v, 3)),
        ("loop / bare, uncontended", "baselines.runtime.share_uncontended", lambda v: _num(v, 3)),
    ]
    for stage in STAGES:
        rows.append((f"{stage} p50 (ms)", f"loop.latency_ms.{stage}.p50", _ms))
    rows += [
        ("overhead p95 (ms)", "loop.latency_ms.overhead.p95", _ms),
        ("total p99 (ms)", "loop.latency_ms.total.p99", _ms),
        ("CPU per frame (ms)", "loop.cpu.ms_per_frame", _ms),
        ("CPU use (% of a core)", "loop.cpu.percent_of_core", lambda v: _num(v, 0)),
        ("peak RSS (KiB)", "memory.peak_rss_kb", _num),
        ("runner startup (ms)", "startup_ms.runner", lambda v: _num(v, 0)),
        ("model load (ms)", "startup_ms.model_load", lambda v: _num(v, 0)),
    ]
    for key, title in KERNELS:
        rows.append((f"{title}: ours (ms)", f"baselines.{key}.ours_ms.p50", _ms))
        rows.append((f"{title}: baseline (ms)", f"baselines.{key}.baseline_ms.p50", _ms))
    return rows


def compare(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Two runs side by side (Markdown), with B / A for every figure."""
    lines = [f"- **{names[0]}**: {describe(a)}", f"- **{names[1]}**: {describe(b)}", ""]
    if a["model"]["sha256"] != b["model"]["sha256"]:
        lines += ["Note: the two runs used different model files (sha256 differs).", ""]
    rows = []
    for label, path, show in _rows():
        va, vb = _get(a, path), _get(b, path)
        if va is None and vb is None:
            continue
        ratio = (
            f"{vb / va:.2f}×"
            if isinstance(va, int | float) and isinstance(vb, int | float) and va
            else "-"
        )
        rows.append([label, show(va), show(vb), ratio])
    lines += _table(["", names[0], names[1], f"{names[1]} / {names[0]}"], rows)
    return "\n".join(lines) + "\n"
