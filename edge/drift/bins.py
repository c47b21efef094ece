"""The watched signals' reference distributions as bins: fine bins at every distinct quantile
of the calibration (the empirical CDF a KS test reads), grouped into coarse bins for PSI.

The edges always stay the calibration's, so a bin means the same thing on every device; a
warm-up reference only regroups the coarse bins (:meth:`Bins.refit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from edge.drift.stats import Counts, Floats
from edge.judge.gate import LEVELS

__all__ = ["Bins"]


@dataclass(frozen=True)
class Bins:
    """The watched signals' calibration distributions as bins, laid out for one bincount.

    Fine bins at every distinct quantile of a signal — (-inf, e0], (e0, e1], …, (e_last, inf) —
    are the empirical CDF a KS test reads; PSI groups them into coarse bins at ``psi_levels``.
    Signal j's fine bin b is j·width + b (narrower signals are padded with empty bins).
    """

    edges: tuple[Floats, ...]  # per signal, its distinct quantiles
    width: int
    cdf: Floats  # (signals, width − 1): P(X <= edge) in calibration; 1 in the padding
    upper: Floats  # (signals, width − 1): each fine bin's upper edge (the last in the padding)
    coarse_of: npt.NDArray[np.intp]  # (signals · width,): the PSI bin of each fine bin
    coarse_signal: npt.NDArray[np.intp]  # the signal of each PSI bin
    coarse_share: Floats  # the calibration share of each PSI bin
    coarse_bins: npt.NDArray[np.int64]  # PSI bins per signal
    median: Floats  # the calibration median of each signal

    @classmethod
    def of(cls, quantiles: Sequence[Sequence[float]], psi_levels: Sequence[float]) -> Bins:
        edges, cdfs, starts = [], [], []
        at = [int(np.argmin(np.abs(LEVELS - level))) for level in psi_levels]
        for table in quantiles:
            # Linear interpolation can be non-monotone by an ulp; a CDF must not be.
            q = np.maximum.accumulate(np.asarray(table, np.float64))
            e = np.unique(q)
            # Where the table repeats a value (a signal often exactly 0), the highest level
            # counts: P(X <= v) takes in the whole tie.
            cdfs.append(LEVELS[np.searchsorted(q, e, side="right") - 1])
            edges.append(e)
            starts.append(np.concatenate([[0], np.unique(np.searchsorted(e, q[at])) + 1]))
        width = max(len(e) for e in edges) + 1
        signals = len(edges)
        cdf = np.ones((signals, width - 1))
        upper = np.empty((signals, width - 1))
        coarse_of = np.empty((signals, width), np.intp)
        coarse_signal, coarse_share, coarse_bins = [], [], []
        first = 0
        for j, (e, c, s) in enumerate(zip(edges, cdfs, starts, strict=True)):
            cdf[j, : len(e)] = c
            upper[j, : len(e)], upper[j, len(e) :] = e, e[-1]
            coarse_of[j] = first + np.searchsorted(s, np.arange(width), side="right") - 1
            share = np.add.reduceat(np.diff(np.concatenate([[0.0], c, [1.0]])), s)
            coarse_signal += [j] * len(s)
            coarse_share += share.tolist()
            coarse_bins.append(len(s))
            first += len(s)
        return cls(
            edges=tuple(edges),
            width=width,
            cdf=cdf,
            upper=upper,
            coarse_of=coarse_of.ravel(),
            coarse_signal=np.asarray(coarse_signal, np.intp),
            coarse_share=np.asarray(coarse_share),
            coarse_bins=np.asarray(coarse_bins, np.int64),
            median=np.array([np.interp(0.5, c, e) for e, c in zip(edges, cdfs, strict=True)]),
        )

    def refit(self, fine: Counts, psi_levels: Sequence[float]) -> Bins:
        """The same fine bins with another reference: ``fine`` (signals, width) counts frames
        of the warm-up. The edges stay the calibration's, so a bin means the same thing on
        every device; the PSI bins are regrouped at the warm-up's own quantiles, so that each
        is again about equally likely under the reference (a station's frames crowd into a few
        of the calibration's)."""
        frames = fine.sum(axis=1, keepdims=True)
        cdf = np.ones_like(self.cdf)
        below = np.cumsum(fine, axis=1)[:, :-1] / frames
        coarse_of = np.empty((len(fine), self.width), np.intp)
        coarse_signal, coarse_share, coarse_bins = [], [], []
        first = 0
        levels = np.asarray(psi_levels) - 1e-12  # a level met exactly closes its bin
        for j, e in enumerate(self.edges):
            cdf[j, : len(e)] = below[j, : len(e)]
            # A PSI bin ends at the first fine bin whose cumulative share reaches its level.
            s = np.unique(np.concatenate([[0], np.searchsorted(cdf[j, : len(e)], levels) + 1]))
            s = s[s <= len(e)]  # len(e) is the bin above the last edge; past it is padding
            coarse_of[j] = first + np.searchsorted(s, np.arange(self.width), side="right") - 1
            share = np.add.reduceat(fine[j], s) / frames[j, 0]
            coarse_signal += [j] * len(s)
            coarse_share += share.tolist()
            coarse_bins.append(len(s))
            first += len(s)
        return replace(
            self,
            cdf=cdf,
            coarse_of=coarse_of.ravel(),
            coarse_signal=np.asarray(coarse_signal, np.intp),
            coarse_share=np.asarray(coarse_share),
            coarse_bins=np.asarray(coarse_bins, np.int64),
            # As the window's median is read: the upper edge of the bin the half falls in.
            median=self.upper[np.arange(len(cdf)), np.argmax(cdf >= 0.5, axis=1)],
        )

    def index(self, values: Floats) -> Counts:
        """The fine bin of each value of ``values`` (frames, signals), as an index into the
        signals' bins laid end to end: what one bincount over every signal takes."""
        bins = np.empty(values.shape, np.int64)
        for j, edges in enumerate(self.edges):
            # NaN sorts past every edge: an undefined statistic counts as extreme.
            bins[:, j] = np.searchsorted(edges, values[:, j], side="left")
        bins += np.arange(len(self.edges)) * self.width
        return bins
