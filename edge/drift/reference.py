"""What the window is compared with: the calibration's counts, or what this camera saw over its
first ``warmup_frames`` frames (:class:`Warmup` learns it).

Either is a sample, not the truth: it keeps its size so that every test is two-sample, and its
shares are smoothed like the window's. With the warm-up it also measures each monitor's frames
per independent observation, since a video's frames are not independent draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.drift.bins import Bins
from edge.drift.stats import SMOOTHING, Counts, Floats, frames_per_sample
from edge.drift.window import Tally
from edge.judge.calibration import REFERENCE_SHARE, Calibration

__all__ = ["ClassReference", "RateReference", "Reference", "Warmup"]


@dataclass(frozen=True)
class ClassReference:
    """The reference's predicted-class counts, and its shares smoothed for PSI."""

    counts: Counts
    frames: int
    q: Floats

    @classmethod
    def of(cls, counts: Counts) -> ClassReference:
        k, m = len(counts), int(counts.sum())
        return cls(counts, m, np.asarray((counts + SMOOTHING) / (m + SMOOTHING * k), np.float64))


@dataclass(frozen=True)
class RateReference:
    """How many of the reference's ``frames`` had ``decision`` (1 REVIEW, 2 REJECT)."""

    decision: int
    count: int
    frames: int


@dataclass(frozen=True)
class Reference:
    """The reference of every monitor, in the monitors' order: signals, class mix, rates."""

    bins: Bins
    #: Its sample size; None when unknown (a calibration file that does not say), when the
    #: tests take the reference as exact.
    frames: int | None
    q: Floats  # the share of each PSI bin, smoothed: it is ``frames`` frames, not truth
    per_bin: Floats  # PSI bins of each PSI bin's signal: the smoothing's denominator
    classes: ClassReference | None  # None: the class mix is not watched
    rates: Mapping[str, RateReference]  # the watched rates
    #: Frames per independent observation, per monitor: 1 against the calibration (its frames
    #: are independent images), measured on the warm-up's own frames otherwise.
    tau: Floats

    @classmethod
    def of(
        cls,
        bins: Bins,
        frames: int | None,
        classes: ClassReference | None,
        rates: Mapping[str, RateReference],
        tau: Floats,
    ) -> Reference:
        per_bin = bins.coarse_bins[bins.coarse_signal].astype(np.float64)
        q = bins.coarse_share
        if frames is not None:
            q = (bins.coarse_share * frames + SMOOTHING) / (frames + SMOOTHING * per_bin)
        return cls(bins, frames, q, per_bin, classes, rates, tau)

    @classmethod
    def of_calibration(
        cls,
        calibration: Calibration,
        bins: Bins,
        *,
        classes: bool,
        rates: Sequence[tuple[str, int]],
        monitors: int,
    ) -> Reference:
        """The calibration's reference: ``classes`` and ``rates`` ((name, decision) pairs)
        say what is watched; each needs the calibration's drift reference."""
        drift = calibration.drift
        frames: int | None = None
        class_ref: ClassReference | None = None
        rate_ref: dict[str, RateReference] = {}
        # A file from before the drift reference: this version's split of the images it
        # records, if it does.
        images = calibration.figures.get("images")
        if drift is not None:
            frames = drift.frames
            if classes:
                class_ref = ClassReference.of(np.asarray(drift.class_counts, np.int64))
            for name, code in rates:
                count = drift.review if code == 1 else drift.reject
                rate_ref[name] = RateReference(code, count, drift.frames)
        elif images:
            frames = int(images) - round(int(images) * REFERENCE_SHARE)
        return cls.of(bins, frames, class_ref, rate_ref, np.ones(monitors))


class Warmup:
    """Counts the first ``frames`` frames of a stream, binned, and then makes them the
    reference (:meth:`reference`)."""

    def __init__(self, frames: int, bins: Bins, classes: int) -> None:
        self.frames = frames
        self.seen = 0
        self.tally = Tally(len(bins.edges) * bins.width, classes)
        self._bins = bins
        self._classes = classes
        self._rows: list[tuple[Counts, Counts, Counts]] = []  # its frames, to measure tau on

    @property
    def done(self) -> bool:
        return self.seen >= self.frames

    def take(self, bins: Counts, labels: Counts, decisions: Counts) -> int:
        """Counts the first of these frames in, up to the warm-up's length; how many."""
        k = min(len(bins), self.frames - self.seen)
        self._rows.append((bins[:k], labels[:k], decisions[:k]))
        self.tally.add(bins[:k], labels[:k], decisions[:k])
        self.seen += k
        return k

    def reference(
        self, psi_levels: Sequence[float], *, classes: bool, rates: Sequence[tuple[str, int]]
    ) -> Reference:
        """The warm-up's counts as the reference, once it is :attr:`done`."""
        m = self.seen
        bins, labels, decisions = (np.concatenate(c) for c in zip(*self._rows, strict=True))
        self._rows.clear()
        fine = self.tally.fine.reshape(len(self._bins.edges), -1)
        class_ref = ClassReference.of(self.tally.classes.copy()) if classes else None
        rate_ref = {
            name: RateReference(code, int(self.tally.decisions[code]), m) for name, code in rates
        }
        tau = self._tau(bins, labels, decisions, class_ref is not None, [c for _, c in rates])
        return Reference.of(self._bins.refit(fine, psi_levels), m, class_ref, rate_ref, tau)

    def _tau(
        self,
        bins: Counts,
        labels: Counts,
        decisions: Counts,
        classes: bool,
        rates: Sequence[int],
    ) -> Floats:
        """Each monitor's frames per independent observation, on the warm-up's frames: of
        each signal's rank (its fine bin's mid-point in the warm-up's CDF), of the one-hot
        class and of the REVIEW and REJECT indicators."""
        signals = len(self._bins.edges)
        fine = self.tally.fine.reshape(signals, -1).astype(np.float64)
        mid = (np.cumsum(fine, axis=1) - fine / 2) / self.seen
        ranks = mid.ravel()[bins]
        tau = [frames_per_sample(ranks[:, j : j + 1]) for j in range(signals)]
        if classes:
            tau.append(frames_per_sample(np.eye(self._classes)[labels]))
        for code in rates:
            tau.append(frames_per_sample((decisions == code).astype(np.float64)[:, None]))
        return np.asarray(tau)
