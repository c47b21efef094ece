"""The rolling window of binned frames — the last ``window_frames`` frames, none older than
``window_seconds`` — and the counts of what it holds.

The counts are kept up to date as frames come and go, so that the statistics are computed from
them, never from the frames: a check costs the same whatever the window's size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.drift.stats import Counts, Floats

__all__ = ["Tally", "Window"]


class Tally:
    """Counts of binned frames: per fine bin (every signal's, end to end), per class and per
    decision (0 ACCEPT, 1 REVIEW, 2 REJECT)."""

    def __init__(self, fine_bins: int, classes: int) -> None:
        self.fine = np.zeros(fine_bins, np.int64)
        #: ``classes`` 0 (unknown) counts no classes; one slot keeps the array non-empty.
        self.classes = np.zeros(max(classes, 1), np.int64)
        self.decisions = np.zeros(3, np.int64)
        self._class_count = classes

    def add(self, bins: Counts, labels: Counts, decisions: Counts, sign: int = 1) -> None:
        """Counts these frames in (``sign`` 1) or out (-1)."""
        self.fine += sign * np.bincount(bins.ravel(), minlength=len(self.fine))
        if self._class_count:
            self.classes += sign * np.bincount(labels, minlength=self._class_count)
        self.decisions += sign * np.bincount(decisions, minlength=3)


class Window:
    """A ring of binned frames, oldest first, and a :class:`Tally` of what it holds."""

    def __init__(self, frames: int, signals: int, fine_bins: int, classes: int) -> None:
        self.capacity = frames
        self.tally = Tally(fine_bins, classes)
        self._bins = np.zeros((frames, signals), np.int64)
        self._label = np.zeros(frames, np.int64)
        self._decision = np.zeros(frames, np.int64)
        self._t = np.zeros(frames, np.float64)
        self._start = 0  # the oldest frame's slot
        self.size = 0

    def push(self, bins: Counts, labels: Counts, decisions: Counts, t: Floats) -> None:
        """Adds frames (at most ``capacity``), evicting the oldest to make room."""
        n = self.capacity
        overflow = self.size + len(t) - n
        if overflow > 0:
            self._evict(overflow)
        slots = (self._start + self.size + np.arange(len(t))) % n
        self._bins[slots] = bins
        self._label[slots] = labels
        self._decision[slots] = decisions
        self._t[slots] = t
        self.size += len(t)
        self._count(slots, +1)

    def evict_older_than(self, cutoff: float) -> None:
        """Drops the frames older than ``cutoff``: a pause must not mix yesterday into today."""
        self._evict(self._older_than(cutoff))

    def seconds(self, now: float) -> float:
        """The time from the oldest frame held to ``now``; 0 when empty."""
        return float(now - self._t[self._start]) if self.size else 0.0

    def _older_than(self, cutoff: float) -> int:
        """How many of the oldest frames are older than ``cutoff``."""
        if not self.size or self._t[self._start] >= cutoff:
            return 0  # the usual case, in O(1)
        slots = (self._start + np.arange(self.size)) % self.capacity
        old = self._t[slots] < cutoff
        return self.size if old.all() else int(np.argmin(old))

    def _evict(self, count: int) -> None:
        if count <= 0:
            return
        slots = (self._start + np.arange(count)) % self.capacity
        self._count(slots, -1)
        self._start = (self._start + count) % self.capacity
        self.size -= count

    def _count(self, slots: npt.NDArray[np.int64], sign: int) -> None:
        self.tally.add(self._bins[slots], self._label[slots], self._decision[slots], sign)
