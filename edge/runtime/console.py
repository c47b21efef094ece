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
            + (f"  drift {runner.drift_status()}" if runner.monitor is not None else "")
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
    skipped = s.get("skipped", {}).get("files", 0)
    lines += [
        "",
        f"dropped {s['dropped']}  reconnects {s['reconnects']}  errors {sum(s['errors'].values())}"
        + (f"  skipped {skipped} files (the first: {s['skipped']['first']})" if skipped else ""),
        _flagged_line(f),
    ]
    drift = s.get("drift", {})
    if drift.get("enabled"):
        lines.append(_drift_line(drift))
    buffer, upload = s.get("buffer", {}), s.get("upload", {})
    if buffer:
        lines.append(
            f"buffer: {buffer.get('records', 0)} records waiting to upload; "
            f"uploaded {upload.get('uploaded_records', 0)} records"
            + (f" to {upload['target']}" if upload.get("target") else "")
            + (f"; last error: {upload['last_error']}" if upload.get("last_error") else "")
        )
    return "\n".join(lines)


def _flagged_line(f: Mapping[str, Any]) -> str:
    """What became of the REVIEW and REJECT frames, in the words of the README."""
    sampled = f["sampled_out"]
    line = (
        f"flagged {f['frames']} (REVIEW or REJECT): {f['stored']} stored, "
        f"{f['near_duplicates']} near-duplicates, "
        f"{sampled['rate_limits'] + sampled['reject_sampling']} sampled out "
        f"({sampled['rate_limits']} by rate limits, {sampled['reject_sampling']} by "
        "reject sampling)"
    )
    if f["not_stored"]:
        line += f", {f['not_stored']} not stored (buffer full, disk errors or no buffer)"
    return line


def _drift_line(drift: Mapping[str, Any]) -> str:
    status = drift.get("status", drift["state"])
    warming = drift.get("warming_up")
    if status == "warming up" and warming:
        what = "learning the reference" if warming["what"] == "reference" else "filling the window"
        status += f" ({what}: {warming['frames']} of {warming['of']} frames)"
    moved = ", ".join(drift.get("moved", [])[:4])
    events = len(drift.get("events", []))
    return (
        f"drift {status}"
        + (f", moved: {moved}" if moved else "")
        + (f", {events} state changes" if events else "")
    )
