""":class:`Monitor`: the drift monitor as the loop uses it, composing the parts of this package.

Per frame :meth:`Monitor.update` only appends a row; every ``check_every`` frames the rows are
binned (:mod:`.bins`), counted into the warm-up until it is done (:mod:`.reference`), then into
the window (:mod:`.window`), compared with the reference (:mod:`.compare`), and the result
stepped through each monitor's state machine (:mod:`.hysteresis`); state changes become events
(:mod:`.report`). O(1) amortised per frame, independent of the window's size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edge.drift.bins import Bins
from edge.drift.compare import compare
from edge.drift.config import MonitorConfig
from edge.drift.hysteresis import Hysteresis
from edge.drift.reference import Reference, Warmup
from edge.drift.report import STATES, Check, DriftEvent, EventLog, worst_first
from edge.drift.stats import Counts
from edge.drift.window import Window
from edge.judge.calibration import Calibration
from edge.records import DriftState

__all__ = ["Monitor"]

_DECISIONS = {"ACCEPT": 0, "REVIEW": 1, "REJECT": 2, "accept": 0, "review": 1, "reject": 2}
#: The decision code of each watched rate.
_RATES = (("review_rate", 1), ("reject_rate", 2))
_NO_DRIFT_REFERENCE = (
    "calibration.json has no drift reference (written before the monitor existed); "
    "re-run `edge calibrate` on the model"
)


def _watched_signals(calibration: Calibration, cfg: MonitorConfig) -> tuple[str, ...]:
    """The gate signals watched: ``features``, each of which the calibration must have."""
    gate = calibration.gate.distributions
    names = tuple(gate) if cfg.features is None else cfg.features
    unknown = [n for n in names if n not in gate]
    if unknown:
        raise ValueError(
            f"monitor.features: {unknown} are not in the calibration (it has {sorted(gate)})"
        )
    if not names:
        raise ValueError("monitor.features: empty; leave it out to watch every signal")
    return names


def _class_count(calibration: Calibration, cfg: MonitorConfig, labels: Sequence[str] | None) -> int:
    """How many classes the model has (0: unknown), as the calibration or ``labels`` say."""
    drift = calibration.drift
    classes = len(drift.class_counts) if drift is not None else 0
    if cfg.reference == "warmup" and not classes and labels is not None:
        classes = len(labels)  # the warm-up counts classes itself; it needs how many
    if labels is not None and classes and len(labels) != classes:
        raise ValueError(f"{len(labels)} labels for a calibration of {classes} classes")
    return classes


class Monitor:
    """Drift of a live stream against a model's calibration.

    Call :meth:`update` once per frame, from one thread (the loop's post-processing thread);
    :attr:`state`, :meth:`snapshot` and :attr:`events` may be read from any thread.
    """

    def __init__(
        self,
        calibration: Calibration,
        config: MonitorConfig | None = None,
        *,
        labels: Sequence[str] | None = None,
        on_event: Callable[[DriftEvent], None] | None = None,
    ) -> None:
        cfg = config if config is not None else MonitorConfig()
        self.config = cfg
        self._names = _watched_signals(calibration, cfg)
        gate = calibration.gate.distributions
        self._bins = Bins.of([gate[n].quantiles for n in self._names], cfg.psi_levels)
        self._classes = _class_count(calibration, cfg, labels)
        self._labels = tuple(labels) if labels is not None else None
        #: Monitors that are off, and why.
        self.off: dict[str, str] = {}
        self._watch_classes = self._class_mix_on(calibration)
        self._rates = self._rates_on(calibration)
        self._watch_names, self._kinds, self._hysteresis = self._lay_out_monitors()
        self._window = Window(
            cfg.window_frames, len(self._names), len(self._names) * self._bins.width, self._classes
        )
        self._reference, self._warmup = self._start_reference(calibration)
        self._pending: list[tuple[float, ...]] = []
        self._frames = 0
        self._checks = 0
        self._log = EventLog(cfg.max_events, on_event)
        self._result = Check(0.0, 0, False, 0, 0.0, self._hysteresis.level.copy(), ())

    # -- the steps of __init__ --------------------------------------------------------------

    def _class_mix_on(self, calibration: Calibration) -> bool:
        """Whether the class mix is watched; if not, says why in :attr:`off`."""
        warmup = self.config.reference == "warmup"
        if not self.config.class_mix:
            self.off["class_mix"] = "disabled in the config"
            return False
        if not warmup and calibration.drift is None:
            self.off["class_mix"] = _NO_DRIFT_REFERENCE
            return False
        if not self._classes:
            self.off["class_mix"] = "the number of classes is unknown: pass the model's labels"
            return False
        return True

    def _rates_on(self, calibration: Calibration) -> list[tuple[str, int]]:
        """The decision rates watched, as (name, decision code); says why not in :attr:`off`."""
        warmup = self.config.reference == "warmup"
        rates: list[tuple[str, int]] = []
        for name, code in _RATES:
            if not self.config.decision_rates:
                self.off[name] = "disabled in the config"
            elif not warmup and calibration.drift is None:
                self.off[name] = _NO_DRIFT_REFERENCE
            else:
                rates.append((name, code))
        return rates

    def _lay_out_monitors(self) -> tuple[list[str], list[str], Hysteresis]:
        """The monitors, in this order: signals, class mix, rates; their names, kinds, and the
        state machine with each one's effect thresholds."""
        cfg, count = self.config, len(self._names)
        names, kinds = [*self._names], ["signal"] * count
        warn, alert = [cfg.psi_warn] * count, [cfg.psi_alert] * count
        if self._watch_classes:
            names.append("class_mix")
            kinds.append("class_mix")
            warn.append(cfg.psi_warn)
            alert.append(cfg.psi_alert)
        for name, _ in self._rates:
            names.append(name)
            kinds.append("rate")
            warn.append(cfg.rate_warn)
            alert.append(cfg.rate_alert)
        hysteresis = Hysteresis(
            warn,
            alert,
            p_warn=cfg.p_warn,
            p_alert=cfg.p_alert,
            release=cfg.release,
            enter_checks=cfg.enter_checks,
            min_dwell=cfg.min_dwell,
        )
        return names, kinds, hysteresis

    def _start_reference(self, calibration: Calibration) -> tuple[Reference | None, Warmup | None]:
        """The calibration's reference now, or a warm-up that becomes the reference once it
        has seen ``warmup_frames`` frames."""
        if self.config.reference == "warmup":
            return None, Warmup(self.config.warmup_frames, self._bins, self._classes)
        reference = Reference.of_calibration(
            calibration,
            self._bins,
            classes=self._watch_classes,
            rates=self._rates,
            monitors=len(self._watch_names),
        )
        return reference, None

    @classmethod
    def from_calibration(
        cls,
        calibration: Calibration,
        config: MonitorConfig | None = None,
        *,
        labels: Sequence[str] | None = None,
        on_event: Callable[[DriftEvent], None] | None = None,
    ) -> Monitor:
        """A monitor of ``calibration``'s reference. ``labels`` name the classes in snapshots;
        ``on_event`` is called, on the updating thread, with every state change."""
        return cls(calibration, config, labels=labels, on_event=on_event)

    # -- per frame --------------------------------------------------------------------------

    def update(
        self, signals: Mapping[str, float], label: int, decision: str, t: float
    ) -> DriftState:
        """One frame: its gate signals, the model's top class, the policy's decision
        (``"ACCEPT"``, ``"REVIEW"``, ``"REJECT"``) and its time in seconds (any clock that does
        not jump; only differences count). Returns the overall state."""
        try:
            row = (t, label, _DECISIONS[decision], *map(signals.__getitem__, self._names))
        except KeyError:
            if decision not in _DECISIONS:
                raise ValueError(
                    f"decision must be ACCEPT, REVIEW or REJECT; got {decision!r}"
                ) from None
            missing = [n for n in self._names if n not in signals]
            raise ValueError(f"signals lack {missing}, which the monitor watches") from None
        if self._classes and not 0 <= label < self._classes:
            raise ValueError(f"label {label} is out of range for {self._classes} classes")
        self._pending.append(row)
        self._frames += 1
        if len(self._pending) >= self.config.check_every:
            self._check()
        return self._log.state

    @property
    def state(self) -> DriftState:
        """The overall state: the worst monitor's."""
        return self._log.state

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def events(self) -> list[DriftEvent]:
        """State changes, oldest first (the last ``max_events``)."""
        return self._log.events

    def snapshot(self) -> dict[str, Any]:
        """The state as of the last check, JSON-able: overall and per-monitor state and
        statistics, the monitors that moved (worst first), frames seen and in the window,
        the reference (and whether it is still being learnt: ``"warming up"``) and the
        monitors that are off and why."""
        r = self._result
        monitors: dict[str, dict[str, Any]] = {}
        for i, (name, kind) in enumerate(zip(self._watch_names, self._kinds, strict=True)):
            entry: dict[str, Any] = {"state": STATES[r.level[i]], "kind": kind}
            entry.update(r.detail(i, name, len(self._names)))
            monitors[name] = entry
        return {
            "state": STATES[int(r.level.max(initial=0))],
            "frames": self._frames,
            "checks": r.checks,
            "evaluated": r.evaluated,
            "window": {"frames": r.window_frames, "seconds": r.window_seconds},
            "moved": list(r.moved),
            "monitors": monitors,
            "off": dict(self.off),
            "reference": self._describe_reference(),
        }

    def _describe_reference(self) -> dict[str, Any]:
        if self._warmup is None:
            frames = self._reference.frames if self._reference is not None else None
            return {"kind": "calibration", "frames": frames, "status": "ready"}
        return {
            "kind": "warmup",
            "frames": self._warmup.seen,
            "of": self.config.warmup_frames,
            "status": "ready" if self._warmup.done else "warming up",
        }

    # -- every check_every frames -----------------------------------------------------------

    def _check(self) -> None:
        block = np.asarray(self._pending, np.float64)
        self._pending.clear()
        self._checks += 1
        t = block[:, 0]
        bins = self._bins.index(block[:, 3:])
        labels, decisions = block[:, 1].astype(np.int64), block[:, 2].astype(np.int64)
        if self._warmup is not None and not self._warmup.done:
            k = self._warm(bins, labels, decisions)
            bins, labels, decisions, t = bins[k:], labels[k:], decisions[k:], t[k:]
            if not len(t):
                level = self._hysteresis.level.copy()
                self._result = Check(float(block[-1, 0]), self._checks, False, 0, 0.0, level, ())
                return
        window = self._window
        window.push(bins, labels, decisions, t)
        now = float(t[-1])
        window.evict_older_than(now - self.config.window_seconds)
        if window.size < self.config.min_frames:
            # Too few frames to judge: the states are held, the window's figures updated.
            last = self._result
            self._result = Check(
                now, self._checks, False, window.size, window.seconds(now), last.level,
                last.moved, last.signals, last.others,
            )  # fmt: skip
            return
        self._evaluate(now)

    def _warm(self, bins: Counts, labels: Counts, decisions: Counts) -> int:
        """Counts the first of these frames into the warm-up; how many. The window starts
        empty when the warm-up ends: a window that held the reference's own frames would be
        compared with itself."""
        assert self._warmup is not None
        k = self._warmup.take(bins, labels, decisions)
        if self._warmup.done:
            self._reference = self._warmup.reference(
                self.config.psi_levels, classes=self._watch_classes, rates=self._rates
            )
        return k

    def _evaluate(self, now: float) -> None:
        """Compares the window with the reference, steps the state machines, and reports."""
        assert self._reference is not None  # the warm-up, if any, is done
        window, hysteresis = self._window, self._hysteresis
        c = compare(self._reference, window.tally, window.size, self._labels)
        changed = hysteresis.step(c.effect, c.log10p)
        level = hysteresis.level
        moved = worst_first(self._watch_names, level, c.effect / hysteresis.effect_warn)
        self._result = r = Check(
            now, self._checks, True, window.size, window.seconds(now), level.copy(), moved,
            c.signals, c.others,
        )  # fmt: skip
        if not len(changed):
            return
        signals = len(self._names)
        events = [
            DriftEvent(
                now,
                self._frames,
                self._watch_names[i],
                STATES[hysteresis.previous[i]],
                STATES[level[i]],
                moved,
                r.detail(i, self._watch_names[i], signals),
            )
            for i in changed
        ]
        self._log.record(events, STATES[int(level.max(initial=0))], now, self._frames, moved)
