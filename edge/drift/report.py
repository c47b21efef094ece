"""What the drift monitor tells the rest of the runtime: state names and levels, one check's
figures as snapshots read them, and the log of state changes (:class:`DriftEvent`)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.drift.stats import Counts, Floats
from edge.records import DriftState

__all__ = ["STATES", "STATE_LEVEL", "Check", "DriftEvent", "EventLog", "worst_first"]

#: States in order of severity, with the number Prometheus exports for each.
STATE_LEVEL: dict[DriftState, int] = {"ok": 0, "warn": 1, "alert": 2}
#: The name of each level of :mod:`edge.drift.hysteresis`.
STATES: tuple[DriftState, ...] = ("ok", "warn", "alert")


@dataclass(frozen=True)
class DriftEvent:
    """A state change of one monitor or (``monitor == "overall"``) of the whole."""

    # The time passed to update() with the frame that completed the check: `edge run` passes
    # the monotonic clock (seconds, only differences mean anything), not the wall clock.
    t: float
    frame: int  # frames seen when it changed
    monitor: str
    previous: DriftState
    state: DriftState
    moved: tuple[str, ...]  # monitors not OK after the change, worst first
    detail: Mapping[str, Any] = field(default_factory=dict)  # the monitor's statistics

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "frame": self.frame,
            "monitor": self.monitor,
            "previous": self.previous,
            "state": self.state,
            "moved": list(self.moved),
            "detail": dict(self.detail),
        }

    def __str__(self) -> str:
        moved = f" (moved: {', '.join(self.moved)})" if self.moved else ""
        return f"drift {self.monitor}: {self.previous} -> {self.state} at frame {self.frame}{moved}"


@dataclass(frozen=True)
class Check:
    """One check's figures, never changed afterwards: what snapshots read, from any thread."""

    t: float
    checks: int
    evaluated: bool
    window_frames: int
    window_seconds: float
    level: Counts  # per monitor, 0 ok, 1 warn, 2 alert
    moved: tuple[str, ...]
    signals: Mapping[str, Floats] = field(default_factory=dict)  # per-signal columns
    others: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # class mix, rates

    def detail(self, i: int, name: str, signals: int) -> dict[str, Any]:
        """Monitor ``i``'s statistics (the first ``signals`` monitors are gate signals), with
        None for what is not finite: JSON has no NaN or infinity."""
        if i < signals:
            detail = {k: float(v[i]) for k, v in self.signals.items()}
        else:
            detail = dict(self.others.get(name, {}))
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in detail.items()
        }


def worst_first(names: Sequence[str], level: Counts, severity: Floats) -> tuple[str, ...]:
    """The monitors not OK, the highest state first and, within a state, the largest
    ``severity`` (effect over its WARN threshold) first."""
    flagged = np.flatnonzero(level > 0)
    order = sorted(flagged, key=lambda i: (-level[i], -severity[i]))
    return tuple(names[int(i)] for i in order)


class EventLog:
    """The overall state and the last ``max_events`` state changes (the oldest are dropped),
    each also passed to ``on_event`` on the updating thread."""

    def __init__(self, max_events: int, on_event: Callable[[DriftEvent], None] | None) -> None:
        self.state: DriftState = "ok"
        self._events: deque[DriftEvent] = deque(maxlen=max_events)
        self._on_event = on_event

    @property
    def events(self) -> list[DriftEvent]:
        return list(self._events)

    def record(
        self,
        changes: Sequence[DriftEvent],
        state: DriftState,
        t: float,
        frame: int,
        moved: tuple[str, ...],
    ) -> None:
        """One check's changes of single monitors, then the overall one if ``state`` (the
        worst monitor's) is not the overall state before them."""
        events = list(changes)
        previous, self.state = self.state, state
        if state != previous:
            events.append(DriftEvent(t, frame, "overall", previous, state, moved))
        for event in events:
            self._events.append(event)
            if self._on_event is not None:
                self._on_event(event)
