"""What ``edge run`` shows a person: a live status line on a terminal, a summary table."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from edge.runtime.loop import Runner

SHOWN_STAGES = (
    "decode",
    "preprocess",
    "inference",
    "scores",
    "policy",
    "handoff",
    "overhead",
    "total",
)


class StatusLine:
    """One line rewritten in place each second; nothing when stderr is not a terminal (a
    service's log would fill with it)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = (0, 0.0)

    def __call__(self, runner: Runner) -> None:
        if not self.enabled:
            return
        import time

        now, frames = time.monotonic(), runner.counts.frames
        last_frames, last_t = self._last
        fps = (frames - last_frames) / (now - last_t) if last_t else 0.0
        self._last = (frames, now)
        decisions = {"ACCEPT": 0, "REVIEW": 0, "REJECT": 0}
        for (decision, _, _), n in runner.telemetry.decisions.items():
            decisions[decision] += n
        p50 = runner.telemetry.latencies.percentiles().get("total", {}).get("p50", 0.0)
        line = (
            f"{frames} frames  {fps:5.1f} fps  latency p50 {p50:6.1f} ms  "
            + "  ".join(f"{k} {v}" for k, v in decisions.items())
            + f"  dropped {runner.capture.dropped}  reconnects {runner.capture.reconnects}"
            + (f"  drift {runner.monitor.state}" if runner.monitor is not None else "")
        )
        self.stream.write("\r" + line[:200] + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def summary_table(s: Mapping[str, Any]) -> str:
    m = s["model"]
    lines = [
        f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.1f} fps) from {s['source']}",
        f"model {m['name']} {m['version']} ({m['file']} on {m['backend']})"
        + ("" if m["calibrated"] else " — NOT calibrated: no gate, raw confidence"),
        "",
        f"{'decision':<28}{'frames':>8}{'share':>8}",
    ]
    total = max(s["frames"], 1)
    for decision, n in s["decisions"].items():
        lines.append(f"{decision:<28}{n:>8}{n / total:>8.1%}")
        for reason, k in s["reasons"].get(decision, {}).items():
            lines.append(f"  {reason:<26}{k:>8}{k / total:>8.1%}")
    latency = s["latency_ms"]
    if latency:
        lines += ["", f"{'stage (ms)':<28}{'p50':>8}{'p95':>8}{'p99':>8}"]
        for stage in SHOWN_STAGES:
            q = latency[stage]
            lines.append(f"{stage:<28}{q['p50']:>8.2f}{q['p95']:>8.2f}{q['p99']:>8.2f}")
    f = s["flagged"]
    lines += [
        "",
        f"dropped {s['dropped']}  reconnects {s['reconnects']}  errors {sum(s['errors'].values())}"
        f"  flagged {f['offered']} (refused {f['refused']}, REJECTs sampled out {f['skipped']})",
    ]
    drift = s.get("drift", {})
    if drift.get("enabled"):
        moved = ", ".join(drift.get("moved", [])[:4])
        reference = drift.get("reference", {})
        warming = (
            f" (warming up: {reference.get('frames')} of {reference.get('of')} frames)"
            if reference.get("status") == "warming up"
            else ""
        )
        events = len(drift.get("events", []))
        lines.append(
            f"drift {drift['state']}{warming}"
            + (f", moved: {moved}" if moved else "")
            + (f", {events} state changes" if events else "")
        )
    buffer, upload = s.get("buffer", {}), s.get("upload", {})
    if buffer:
        lines.append(
            f"buffer: {buffer.get('stored', 0)} stored, {buffer.get('records', 0)} waiting; "
            f"uploaded {upload.get('uploaded_records', 0)} records"
            + (f", last error: {upload['last_error']}" if upload.get("last_error") else "")
        )
    return "\n".join(lines)
