"""The runtime loop: capture → prepare → infer → judge → hand-off, each on its own thread.

The thread that runs the model does nothing else, so a frame's preprocessing, scoring and
hand-off overlap the next frame's inference instead of adding to it. Stages are joined by
small bounded queues: when the model falls behind, a live source drops its oldest frames at
the capture queue (counted) rather than letting a backlog grow.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec

from edge.drift import STATE_LEVEL, DriftEvent, Monitor
from edge.errors import ModelError
from edge.judge.calibration import Calibration, load_calibration
from edge.model import Model, load_model
from edge.records import DriftState, Flagged, FlaggedSink, NullSink
from edge.runtime.analyze import Analyzer, Result, Work
from edge.runtime.capture import Capture, Frame, shown
from edge.runtime.config import Config
from edge.runtime.decision import Policy
from edge.runtime.telemetry import Telemetry
from edge.upload import StoreError, Uploader
from edge.upload.target import redact

In = TypeVar("In")
Out = TypeVar("Out")
#: Frames in flight between two stages: enough to keep each thread busy, no more.
STAGE_QUEUE = 2


class ResultsWriter:
    """One JSON object per frame, to a file (appended: a restart keeps the history) or
    stdout (``-``)."""

    def __init__(self, target: str | None) -> None:
        self._encoder = msgspec.json.Encoder()
        self._file: IO[bytes] | None = None
        if target == "-":
            self._file = sys.stdout.buffer
        elif target is not None:
            self._file = open(target, "ab", buffering=1 << 16)  # noqa: SIM115 - closed in close()

    def write(self, doc: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(self._encoder.encode(doc) + b"\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._file is not sys.stdout.buffer:
                self._file.close()
            self._file = None


class RejectSampler:
    """Of a run of REJECTs with the same reason, the first and then every n-th: a dead camera
    must not fill the buffer with a thousand black frames."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._reason = ""
        self._streak = 0

    def keep(self, result: Result) -> bool:
        if result.decision != "REJECT":
            self._reason, self._streak = "", 0
            return True
        if result.reason != self._reason:
            self._reason, self._streak = result.reason, 0
        keep = self._streak % self.every == 0
        self._streak += 1
        return keep


@dataclass
class Counts:
    frames: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    flagged: int = 0  # REVIEW/REJECT frames handed to the buffer
    flagged_refused: int = 0  # ... that it did not take (full queue, limits, duplicates)
    flagged_skipped: int = 0  # REJECTs not offered (sampling)


class Runner:
    """``edge run``: everything built from a :class:`Config`; :meth:`run` blocks until the
    source ends, ``max_frames`` were processed, or :meth:`stop` is called."""

    def __init__(
        self,
        config: Config,
        *,
        flagged: FlaggedSink | None = None,
        uploader: Uploader | None = None,
        on_status: Callable[[Runner], None] | None = None,
    ) -> None:
        self.config = config
        self.model: Model = load_model(
            config.model.path, backend=config.model.backend, threads=config.model.threads
        )
        loaded = load_calibration(self.model.manifest)
        self.calibration: Calibration | None = loaded[0] if loaded else None
        reference = loaded[1] if loaded else None
        self.policy = Policy(config.policy, config.gate, self.calibration, self.model.labels)
        self.analyzer = Analyzer(self.model, self.policy, self.calibration, reference)
        self.monitor = (
            Monitor.from_calibration(
                self.calibration,
                config.monitor,
                labels=self.model.labels,
                on_event=self._drift_event,
            )
            if self.calibration is not None and config.monitor.enabled
            else None
        )
        self.flagged = flagged if flagged is not None else NullSink()
        self.uploader = uploader
        self.interrupted = False
        self.final_upload: dict[str, Any] | None = None
        self.on_status = on_status
        self.counts = Counts()
        self.telemetry = Telemetry(self.live_values)
        self.metrics_port: int | None = None
        self._sampler = RejectSampler(config.policy.reject_sample_every)
        self._results = ResultsWriter(config.results)
        self._prepared: queue.Queue[Work | None] = queue.Queue(STAGE_QUEUE)
        self._inferred: queue.Queue[Work | None] = queue.Queue(STAGE_QUEUE)
        self._stopping = threading.Event()
        self.capture = Capture(config.source)  # opens the source: a bad one fails here
        self.started = self.ended = time.monotonic()

    def close(self) -> None:
        """Release what a runner that never ran holds: its source and its metrics port."""
        self.capture.close()
        self.telemetry.close()

    def attach(self, flagged: FlaggedSink, uploader: Uploader | None) -> None:
        """Where flagged frames go, given once the model and the source have opened: nothing
        is written to the data directory for a run that cannot start."""
        self.flagged = flagged
        self.uploader = uploader

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def stop(self) -> None:
        """Stop capturing; frames in flight are finished and flushed, and the run ends
        without a last upload (one under way ends after the object in flight, within the
        uploader's stop timeout). Safe from a signal handler."""
        self.interrupted = True
        if self.uploader is not None:
            self.uploader.interrupt()
        self._finish()

    def _finish(self) -> None:
        self._stopping.set()
        self.capture.stop()

    def serve_metrics(self) -> int | None:
        """Start the Prometheus endpoint (when the config enables it); returns its port."""
        if self.config.metrics.enabled and self.metrics_port is None:
            self.metrics_port = self.telemetry.serve(
                self.config.metrics.host, self.config.metrics.port, self.health
            )
        return self.metrics_port

    def run(self) -> dict[str, Any]:
        """Runs to the end; returns the summary."""
        self.serve_metrics()
        self.started = time.monotonic()
        stages = [
            threading.Thread(
                target=self._stage,
                args=(self.capture, self.analyzer.prepare, self._prepared),
                name="edge-prepare",
                daemon=True,
            ),
            threading.Thread(
                target=self._stage,
                args=(_drain(self._prepared), self.analyzer.infer, self._inferred),
                name="edge-infer",
                daemon=True,
            ),
        ]
        self.capture.start()
        if self.uploader is not None:
            self.uploader.start()
        for thread in stages:
            thread.start()
        try:
            self._judge_and_hand_off()
        finally:
            self._finish()
            for thread in stages:
                thread.join(timeout=5)
            self.capture.join(timeout=5)
            self.ended = time.monotonic()
            self._results.close()
            self._close_buffer_and_uploader()
            self.telemetry.close()
        return self.summary()

    def _close_buffer_and_uploader(self) -> None:
        """When the source ended by itself, what it flagged is uploaded before exit; after a
        signal the uploader only finishes the PUT in flight (the journal resumes the batch)."""
        if self.uploader is None:
            self.flagged.close()
            return
        self.uploader.stop(timeout=3)
        if not self.interrupted:
            flush = getattr(self.flagged, "flush", None)
            if flush is not None:
                flush(5.0)
            try:
                self.final_upload = self.uploader.upload_once().as_dict()
            except StoreError as exc:
                print(
                    f"edge run: last upload failed: {exc}; the frames stay buffered",
                    file=sys.stderr,
                )
        self.flagged.close()

    def _stage(self, items: Any, step: Callable[[Any], Any], out: queue.Queue[Any]) -> None:
        try:
            for item in items:
                try:
                    out.put(step(item))
                except Exception as exc:  # a bad frame must not stop the line
                    self._error(item, exc)
        finally:
            out.put(None)

    def _judge_and_hand_off(self) -> None:
        last_status = time.monotonic()
        limit = self.config.max_frames
        for work in _drain(self._inferred, on_idle=self._tick):
            try:
                result = self.analyzer.judge(work)
            except Exception as exc:
                self._error(work, exc)
                continue
            self._hand_off(result)
            self.counts.frames += 1
            if limit is not None and self.counts.frames >= limit:
                self._finish()
                for _ in _drain(self._inferred):
                    pass  # frames beyond the limit: let the stages end, do not count them
                return
            if time.monotonic() - last_status >= 1.0:
                last_status = time.monotonic()
                self._tick()

    def _hand_off(self, result: Result) -> None:
        t0 = time.perf_counter()
        drift: DriftState = "ok"
        if self.monitor is not None:
            signals = {**result.stats, **result.scores}
            drift = self.monitor.update(
                signals, result.class_id, result.decision, result.frame.monotonic
            )
        t1 = time.perf_counter()
        self._results.write(result.to_json(drift))
        if result.decision != "ACCEPT":
            if self._sampler.keep(result):
                self.counts.flagged += 1
                if not self.flagged.offer(self._flagged(result, drift)):
                    self.counts.flagged_refused += 1
            else:
                self.counts.flagged_skipped += 1
        else:
            self._sampler.keep(result)
        t2 = time.perf_counter()
        timings = result.timings
        timings["drift"] = t1 - t0
        timings["handoff"] = t2 - t1
        timings["overhead"] = sum(
            timings[s] for s in ("preprocess", "scores", "policy", "drift", "handoff")
        )
        timings["total"] = t2 - result.frame.clock
        self.telemetry.record(result)

    def _flagged(self, result: Result, drift: DriftState) -> Flagged:
        model = self.model
        return Flagged(
            image=result.frame.image,
            frame=result.frame.id,
            captured_at=result.frame.t,
            monotonic=result.frame.monotonic,
            decision=result.decision,  # type: ignore[arg-type]
            reason=result.reason,
            label=result.label,
            confidence=result.confidence,
            top_k=result.top_k,
            scores=dict(result.scores),
            stats=dict(result.stats),
            dhash=result.dhash,
            model=model.name,
            model_version=model.manifest.version,
            model_sha256=model.sha256,
            drift=drift,
        )

    def _drift_event(self, event: DriftEvent) -> None:
        if event.monitor == "overall":
            print(f"edge run: {event}", file=sys.stderr)

    def _tick(self) -> None:
        self._results.flush()  # once a second: a reader tailing the file keeps up
        if self.on_status is not None:
            self.on_status(self)

    def _error(self, item: Work | Frame, exc: Exception) -> None:
        frame = item.frame if isinstance(item, Work) else item
        kind = f"{type(exc).__name__}: {exc}"
        if kind not in self.counts.errors:
            print(
                f"edge run: frame {frame.id}: {kind} (the frame is skipped; more of the same "
                "are counted, not printed)",
                file=sys.stderr,
            )
        self.counts.errors[kind] += 1

    def health(self) -> tuple[bool, str]:
        silent = time.monotonic() - self.capture.last_frame
        if not self.capture.connected or silent > self.config.source.timeout:
            return False, f"no frame from the source for {silent:.1f} s"
        return True, "ok"

    def live_values(self) -> dict[str, dict[str, float]]:
        c, capture = self.counts, self.capture
        return {
            "counters": {
                "frames": c.frames,
                "frames_captured": capture.frames,
                "frames_dropped": capture.dropped,
                "reconnects": capture.reconnects,
                "errors": sum(c.errors.values()),
                "flagged": c.flagged,
                "flagged_refused": c.flagged_refused,
                "flagged_skipped": c.flagged_skipped,
            },
            "gauges": {
                "queue_depth{queue=capture}": capture.depth,
                "queue_depth{queue=prepared}": self._prepared.qsize(),
                "queue_depth{queue=inferred}": self._inferred.qsize(),
                "source_connected": float(capture.connected),
                **self._drift_gauges(),
                **self._part_gauges(),
            },
        }

    def _part_gauges(self) -> dict[str, float]:
        """The buffer's and the uploader's own counters, as they report them."""
        gauges: dict[str, float] = {}
        counters = getattr(self.flagged, "counters", None)
        if counters is not None:
            gauges.update({f"buffer_{k}": float(v) for k, v in counters().items()})
        if self.uploader is not None:
            for k, v in self.uploader.counters().items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    gauges[f"upload_{k}"] = float(v)
        return gauges

    def _drift_gauges(self) -> dict[str, float]:
        """0 ok, 1 warn, 2 alert: overall and per monitor, with each monitor's PSI."""
        if self.monitor is None:
            return {}
        snapshot = self.monitor.snapshot()
        gauges = {"drift_state": float(STATE_LEVEL[snapshot["state"]])}
        for name, m in snapshot["monitors"].items():
            gauges[f"drift_monitor_state{{monitor={name}}}"] = float(STATE_LEVEL[m["state"]])
            if m.get("psi") is not None:
                gauges[f"drift_psi{{monitor={name}}}"] = float(m["psi"])
        return gauges

    @staticmethod
    def _counters_of(part: object) -> dict[str, Any]:
        counters = getattr(part, "counters", None)
        return dict(counters()) if counters is not None else {}

    def _drift_summary(self) -> dict[str, Any]:
        """The monitor's snapshot, its events, and ``status``: what to tell a person. The
        monitor's ``state`` stays "ok" while it has too few frames to judge; ``status`` says
        "warming up" then (with ``warming_up``: which frames, how many of how many)."""
        if self.monitor is None:
            return {"state": "ok", "enabled": False, "status": "off"}
        snapshot = self.monitor.snapshot()
        warming_up = _warming_up(snapshot, self.monitor.config.min_frames)
        drift = {
            "enabled": True,
            **snapshot,
            "status": "warming up" if warming_up else snapshot["state"],
            "events": [e.to_json() for e in self.monitor.events],
        }
        if warming_up:
            drift["warming_up"] = warming_up
        return drift

    def drift_status(self) -> str:
        """The drift as a person reads it: off, warming up (too few frames to judge yet), ok,
        warn or alert."""
        if self.monitor is None:
            return "off"
        snapshot = self.monitor.snapshot()
        warming = _warming_up(snapshot, self.monitor.config.min_frames)
        return "warming up" if warming else str(snapshot["state"])

    def _flagged_summary(self, buffer: dict[str, Any]) -> dict[str, Any]:
        """What became of the flagged (REVIEW or REJECT) frames, in the README's words:
        stored + near_duplicates + sampled_out + not_stored = frames, once the buffer has
        written what it took. ``offered``/``refused``/``skipped`` are the loop's own counts
        (skipped: the REJECTs sampled out before the buffer)."""
        c = self.counts
        flagged = c.flagged + c.flagged_skipped
        stored = buffer.get("stored", 0)
        duplicates = buffer.get("duplicates", 0) + buffer.get("duplicates_stored", 0)
        rate_limited = buffer.get("rate_limited", 0)
        queued = buffer.get("queued", 0)
        return {
            "frames": flagged,
            "offered": c.flagged,
            "refused": c.flagged_refused,
            "skipped": c.flagged_skipped,
            "stored": stored,
            "near_duplicates": duplicates,
            "sampled_out": {"rate_limits": rate_limited, "reject_sampling": c.flagged_skipped},
            # Buffer full, disk errors, the writer's queue full, or no buffer at all.
            "not_stored": max(
                0, flagged - stored - duplicates - rate_limited - c.flagged_skipped - queued
            ),
        }

    def _upload_summary(self) -> dict[str, Any]:
        upload: dict[str, Any] = {**self._counters_of(self.uploader), "last_run": self.final_upload}
        if self.uploader is not None:
            target = self.uploader.target
            upload["target"] = redact(target.uri, target.secrets)
        return upload

    def summary(self) -> dict[str, Any]:
        """The figures of the run so far (``--json``)."""
        seconds = max(
            (self.ended if self.ended > self.started else time.monotonic()) - self.started, 1e-9
        )
        decisions: Counter[str] = Counter()
        reasons: dict[str, Counter[str]] = {}
        labels: dict[str, Counter[str]] = {}
        for (decision, reason, label), n in self.telemetry.decisions.items():
            decisions[decision] += n
            reasons.setdefault(decision, Counter())[reason] += n
            labels.setdefault(decision, Counter())[label] += n
        model = self.model
        buffer = self._counters_of(self.flagged)
        return {
            "frames": self.counts.frames,
            "seconds": seconds,
            "fps": self.counts.frames / seconds,
            "decisions": {k: decisions.get(k, 0) for k in ("ACCEPT", "REVIEW", "REJECT")},
            "reasons": {k: dict(v.most_common()) for k, v in reasons.items()},
            "labels": {k: dict(v.most_common()) for k, v in labels.items()},
            "latency_ms": self.telemetry.latencies.percentiles(),
            "dropped": self.capture.dropped,
            "reconnects": self.capture.reconnects,
            "errors": dict(self.counts.errors),
            # Files of an image directory that were not frames, and the first one's reason.
            "skipped": {"files": self.capture.skipped, "first": self.capture.first_skipped},
            "flagged": self._flagged_summary(buffer),
            "drift": self._drift_summary(),
            "buffer": buffer,
            "upload": self._upload_summary(),
            "source": shown(self.config.source.uri),
            "model": {
                "name": model.name,
                "version": model.manifest.version,
                "file": model.file.name,
                "backend": model.backend,
                "sha256": model.sha256,
                "calibrated": self.calibrated,
            },
        }


def _warming_up(snapshot: dict[str, Any], min_frames: int) -> dict[str, Any] | None:
    """Which frames a drift monitor is still gathering before it can judge, or None: the
    warm-up reference it learns, then a window of ``min_frames`` frames to compare with it."""
    reference, window = snapshot["reference"], snapshot["window"]
    if reference.get("status") == "warming up":
        return {"what": "reference", "frames": reference["frames"], "of": reference["of"]}
    if snapshot["state"] == "ok" and not snapshot["evaluated"]:
        return {"what": "window", "frames": window["frames"], "of": min_frames}
    return None


def _drain(q: queue.Queue[Any], on_idle: Callable[[], None] | None = None) -> Any:
    """Items of a stage queue up to its end marker (None)."""
    while True:
        try:
            item = q.get(timeout=0.25)
        except queue.Empty:
            if on_idle is not None:
                on_idle()
            continue
        if item is None:
            return
        yield item


def open_runner(config: Config, **kwargs: Any) -> Runner:
    """A :class:`Runner`, with the model directory checked first for a clearer message."""
    if not Path(config.model.path).is_dir():
        raise ModelError(f"model directory {config.model.path} does not exist")
    return Runner(config, **kwargs)
