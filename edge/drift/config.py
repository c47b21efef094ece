"""The ``[monitor]`` section of the config: windows, thresholds and hysteresis, checked when
it is read so that a bad value names its key before anything runs."""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np

from edge.config import at_least, positive, require, within
from edge.judge.gate import LEVELS

__all__ = ["MonitorConfig"]


# Frozen, unlike a Section (type checkers refuse a frozen subclass of a mutable struct):
# the same options, spelt out.
class MonitorConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The ``[monitor]`` section of the config. Windows, thresholds and hysteresis."""

    #: Read by the loop: False builds no monitor (every frame then reports "ok").
    enabled: bool = True
    #: What "normal" is. "warmup": what this camera saw over its first ``warmup_frames``
    #: frames after start; "calibration": the data ``edge calibrate`` was run on.
    #:
    #: The default is "warmup" because a camera at a real station never looks like a
    #: calibration set: it sees its own belt, its own light and the items in transit between
    #: stops (about a third of a line's frames, mostly refused). Against the calibration every
    #: new station is in ALERT from its first window on and stays there, and an alarm that is
    #: always on is one nobody reads. What someone installing a station wants to hear is "this
    #: station changed since it was set up". The gate still judges each frame against the
    #: calibration, so a station that is wrong from the start is still refused frame by frame;
    #: "calibration" suits a stream that looks like the calibration data (the same pipeline
    #: that produced it), where it also catches a station that was never right.
    reference: Literal["warmup", "calibration"] = "warmup"
    #: Frames of the warm-up reference: the snapshot says "warming up" (state "ok") until
    #: then. 1 500 is 100 s at 15 frames/s, ~50 objects on the sample line: the frames per
    #: independent observation are measured on it, which takes a few dozen observations. It is
    #: learnt again at every start (it is not saved), so start a station when it is right.
    warmup_frames: int = 1500
    #: The rolling window: at most this many frames...
    window_frames: int = 500
    #: ...none older than this many seconds, so a pause does not mix yesterday into today.
    window_seconds: float = 1800.0
    #: Fewer frames than this in the window: not judged (the state is held).
    min_frames: int = 300
    #: Statistics are recomputed every this many frames; a state change needs whole checks.
    check_every: int = 25
    #: Gate signals watched; None watches every signal the calibration recorded.
    features: tuple[str, ...] | None = None
    #: Watch the predicted-class mix, and the REVIEW and REJECT rates.
    class_mix: bool = True
    decision_rates: bool = True
    #: Calibration quantile levels that bound the PSI bins (each must be one of the gate's).
    psi_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    #: PSI (less what sampling noise alone gives at this window size) to warn / alert at; the
    #: usual reading of PSI: < 0.1 stable, 0.1 to 0.25 moved, > 0.25 shifted.
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    #: REVIEW or REJECT rate above the calibrated one by this much (absolute) to warn / alert.
    rate_warn: float = 0.05
    rate_alert: float = 0.15
    #: And the change must be this significant: p-values under these.
    p_warn: float = 1e-4
    p_alert: float = 1e-7
    #: A state is left once its effect and significance fall under release × the thresholds.
    release: float = 0.5
    #: Checks in a row a higher state must be seen at before it is entered.
    enter_checks: int = 2
    #: Checks in a row a lower state must be seen at before it is entered: the least time a
    #: state is held.
    min_dwell: int = 8
    #: State changes kept in :attr:`Monitor.events` (the oldest are dropped).
    max_events: int = 1000

    def __post_init__(self) -> None:
        at_least("monitor.window_frames", self.window_frames, 1)
        positive("monitor.window_seconds", self.window_seconds)
        for key in ("min_frames", "check_every"):
            value = getattr(self, key)
            within(f"monitor.{key}", value, 1, self.window_frames)  # at most window_frames
        require(
            self.warmup_frames >= self.min_frames,
            "monitor.warmup_frames",
            f"must be ≥ min_frames ({self.min_frames})",
            self.warmup_frames,
        )
        positive("monitor.psi_warn", self.psi_warn)
        require(
            self.psi_alert >= self.psi_warn,
            "monitor.psi_alert",
            f"must be ≥ psi_warn ({self.psi_warn:g})",
            self.psi_alert,
        )
        require(0 < self.rate_warn < 1, "monitor.rate_warn", "must be in (0, 1)", self.rate_warn)
        require(
            self.rate_warn <= self.rate_alert < 1,
            "monitor.rate_alert",
            f"must be in [rate_warn ({self.rate_warn:g}), 1)",
            self.rate_alert,
        )
        require(0 < self.p_warn < 1, "monitor.p_warn", "must be in (0, 1)", self.p_warn)
        require(
            0 < self.p_alert <= self.p_warn,
            "monitor.p_alert",
            f"must be in (0, p_warn ({self.p_warn:g})]",
            self.p_alert,
        )
        require(0 < self.release <= 1, "monitor.release", "must be in (0, 1]", self.release)
        for key in ("enter_checks", "min_dwell", "max_events"):
            at_least(f"monitor.{key}", getattr(self, key), 1)
        levels = list(self.psi_levels)
        require(
            len(levels) > 0 and bool(np.all(np.diff(levels) > 0)),
            "monitor.psi_levels",
            "must be increasing, not empty",
            levels,
        )
        for level in levels:
            require(
                bool(np.isclose(LEVELS, level, rtol=0, atol=1e-9).any()),
                "monitor.psi_levels",
                "must be calibration quantile levels (0.0005, 0.001, 0.002, 0.005, 0.01 … "
                "0.99, 0.995 … 0.9995)",
                level,
            )
