"""The drift monitor: does what the camera sees still look like what it did when it started (or
like what the model was calibrated on)?

Compares rolling windows of live frames — the last ``window_frames`` frames, no older than
``window_seconds`` — with a reference, without labels. The reference (``reference``) is the
station's own first ``warmup_frames`` frames (the default), binned on the calibration's
quantile tables, or what ``edge calibrate`` recorded:

- each gate signal (frame statistics and OOD scores): the population stability index over
  coarse bins (quantiles of the calibration data, so every bin was equally likely) and a
  Kolmogorov-Smirnov test against the calibration's empirical CDF (its quantile table);
- the predicted-class mix: a chi-square test of the window's counts against calibration's;
- the REVIEW and REJECT rates: a one-sided likelihood-ratio test against calibration's.

Every test is two-sample: the reference is a few thousand frames, not the truth, and treating
it as exact would turn its own sampling noise into false alarms. Nor are a video's frames
independent: an item rests under the camera for a second or more. With the warm-up reference
each monitor's frames per independent observation (its integrated autocorrelation time) is
measured on the warm-up, and every test counts frames by it; without that, a 500-frame window
of a line (~17 items) read as 500 independent draws alarms within a minute of a stable line.
Calibration frames are independent images, so against the calibration it is 1.

A monitor enters WARN or ALERT only when the change is both large (PSI, or rate excess, over
its threshold) and significant (p under its threshold) — large but noisy and significant but
negligible are both not drift — at ``enter_checks`` checks in a row. It leaves a state only
once the change has fallen under ``release`` times the entering thresholds for ``min_dwell``
checks in a row, so a change near a threshold does not flap. The overall state is the worst
monitor's.

Per frame :meth:`Monitor.update` only appends a row; every ``check_every`` frames the rows are
binned (a binary search in each quantile table), added to the window's counts, the oldest
evicted, and the statistics recomputed from the counts: O(1) amortised, independent of the
window's size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from edge.judge.calibration import REFERENCE_SHARE, Calibration
from edge.judge.gate import LEVELS
from edge.records import DriftState

__all__ = ["STATE_LEVEL", "DriftEvent", "Monitor", "MonitorConfig"]

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

#: States in order of severity, with the number Prometheus exports for each.
STATE_LEVEL: dict[DriftState, int] = {"ok": 0, "warn": 1, "alert": 2}
_STATES: tuple[DriftState, ...] = ("ok", "warn", "alert")
_DECISIONS = {"ACCEPT": 0, "REVIEW": 1, "REJECT": 2, "accept": 0, "review": 1, "reject": 2}
#: Added to every bin's count before PSI takes logarithms: an empty bin is "rare", not "never".
_SMOOTHING = 0.5
_LN10 = math.log(10.0)
_NONE = np.zeros(0, np.intp)


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
        checks = {
            "window_frames >= 1": self.window_frames >= 1,
            "window_seconds > 0": self.window_seconds > 0,
            "1 <= min_frames <= window_frames": 1 <= self.min_frames <= self.window_frames,
            "1 <= check_every <= window_frames": 1 <= self.check_every <= self.window_frames,
            "warmup_frames >= min_frames": self.warmup_frames >= self.min_frames,
            "0 < psi_warn <= psi_alert": 0 < self.psi_warn <= self.psi_alert,
            "0 < rate_warn <= rate_alert < 1": 0 < self.rate_warn <= self.rate_alert < 1,
            "0 < p_alert <= p_warn < 1": 0 < self.p_alert <= self.p_warn < 1,
            "0 < release <= 1": 0 < self.release <= 1,
            "enter_checks >= 1": self.enter_checks >= 1,
            "min_dwell >= 1": self.min_dwell >= 1,
            "max_events >= 1": self.max_events >= 1,
            "psi_levels increasing, not empty": len(self.psi_levels) > 0
            and bool(np.all(np.diff(self.psi_levels) > 0)),
        }
        for rule, ok in checks.items():
            if not ok:
                raise ValueError(f"must be {rule}")
        for level in self.psi_levels:
            if not np.isclose(LEVELS, level, rtol=0, atol=1e-9).any():
                raise ValueError(
                    f"psi_levels: {level} is not a calibration quantile level "
                    f"(0.0005, 0.001, 0.002, 0.005, 0.01 … 0.99, 0.995 … 0.9995)"
                )


@dataclass(frozen=True)
class DriftEvent:
    """A state change of one monitor or (``monitor == "overall"``) of the whole."""

    t: float  # the time passed to update() with the frame that completed the check
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


# -- tail probabilities, as -log10 p so that "p = 1e-40" neither underflows nor ties ---------


def _norm_log10_sf(z: float) -> float:
    """-log10 P(Z > z) for a standard normal Z."""
    if z < 30:
        return -math.log10(max(0.5 * math.erfc(z / math.sqrt(2)), 1e-300))
    # Mills' ratio: erfc underflows out here; the asymptote is exact to 1/z².
    return (z * z / 2 + math.log(z * math.sqrt(2 * math.pi))) / _LN10


def _chi2_log10_sf(x: float, df: int) -> float:
    """-log10 P(χ²_df > x), by the regularised upper incomplete gamma Q(df/2, x/2)."""
    if x <= 0 or df < 1:
        return 0.0
    a, y = df / 2, x / 2
    log_prefix = -y + a * math.log(y) - math.lgamma(a)
    if y < a + 1:
        # Series for P(a, y); Q = 1 − P is not small here, so no precision is lost.
        term = total = 1 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= y / n
            total += term
        q = 1 - math.exp(log_prefix + math.log(total))
        return -math.log10(max(q, 1e-300))
    # Continued fraction for Q(a, y) (modified Lentz), kept in logarithms so that a huge
    # statistic gives a huge -log10 p rather than 0.
    tiny = 1e-300
    b = y + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 300):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return -(log_prefix + math.log(h)) / _LN10


#: Terms of the Kolmogorov series: the first one left out is under 2e-6 for lam >= 0.2.
_KS_K2 = np.arange(1, 13, dtype=np.float64)[:, None] ** 2
_KS_SIGNS = 2 * (-1.0) ** np.arange(12)


def _ks_log10_sf(d: Floats, n: float | Floats) -> Floats:
    """-log10 of the asymptotic Kolmogorov-Smirnov p-value of distances ``d`` at effective
    sample size ``n``, with Stephens' small-sample correction (as in Numerical Recipes)."""
    root = np.sqrt(n)
    # Under lam = 0.2, p > 0.999999: clamped there, where 12 terms are exact to 2e-6.
    lam2 = np.maximum(((root + 0.12 + 0.11 / root) * d) ** 2, 0.04)
    series = _KS_SIGNS @ np.exp(-2 * _KS_K2 * lam2)
    # Past lam = 3 only the first term matters (the second is e^-54 of it), and it is taken
    # in logarithms: the series itself underflows to 0 for lam > 19.
    out: Floats = np.where(
        lam2 > 9, (2 * lam2 - math.log(2)) / _LN10, -np.log10(np.clip(series, 1e-300, 1.0))
    )
    return out


def _rate_log10p(x: int, n: int, x0: int, m: int, tau: float = 1.0) -> float:
    """-log10 p of "the window's rate x/n is higher than the reference's x0/m": the signed
    root of the likelihood-ratio (G) statistic of the 2 × 2 table, one-sided (fewer REVIEWs
    or REJECTs than calibration is not what this watches for). Frames come ``tau`` to an
    independent observation: G shrinks by as much."""
    if x * m <= x0 * n:
        return 0.0
    pooled = (x + x0) / (n + m)

    def term(observed: float, expected: float) -> float:
        return observed * math.log(observed / expected) if observed > 0 else 0.0

    g = 2 * (
        term(x, n * pooled)
        + term(n - x, n * (1 - pooled))
        + term(x0, m * pooled)
        + term(m - x0, m * (1 - pooled))
    )
    return _norm_log10_sf(math.sqrt(max(g / tau, 0.0)))


def _frames_per_sample(x: Floats) -> float:
    """How many frames of the series ``x`` (frames, k) carry one frame's worth of independent
    information: the integrated autocorrelation time, 1 + 2 Σ rho(lag), of the k series' summed
    autocovariances, by Geyer's initial monotone sequence (sums of adjacent lags, cut at the
    first that is not positive, made non-increasing). Video is not i.i.d.: an item rests
    under the camera for a second, so its frames are one observation, not twenty."""
    x = x - x.mean(axis=0)
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n, axis=0)
    acov = np.fft.irfft(np.abs(spectrum) ** 2, 2 * n, axis=0)[:n].sum(axis=1)
    if n < 4 or acov[0] <= 1e-12 * n:
        return 1.0  # a constant series: nothing to correct
    pairs = (acov[: n - n % 2] / acov[0]).reshape(-1, 2).sum(axis=1)
    positive = pairs > 0
    stop = int(np.argmin(positive)) if not positive.all() else len(pairs)
    return max(1.0, float(-1 + 2 * np.minimum.accumulate(pairs[:stop]).sum()))


def _psi_noise(bins: npt.ArrayLike, n: int, m: int | None) -> Floats:
    """What PSI reads with no drift at all: n·PSI is about χ² with bins − 1 degrees of freedom
    (per sample), so a 500-frame window over 12 bins reads ~0.03 by chance alone."""
    out: Floats = (np.asarray(bins, np.float64) - 1) * (1 / n + (0.0 if m is None else 1 / m))
    return out


# -- the reference, binned --------------------------------------------------------------------


@dataclass(frozen=True)
class _Bins:
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
    def of(cls, quantiles: Sequence[Sequence[float]], psi_levels: Sequence[float]) -> _Bins:
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

    def refit(self, fine: Counts, psi_levels: Sequence[float]) -> _Bins:
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


@dataclass(frozen=True)
class _Result:
    """One check's figures, never changed afterwards: what snapshot() reads, from any thread."""

    t: float
    checks: int
    evaluated: bool
    window_frames: int
    window_seconds: float
    level: npt.NDArray[np.int64]  # per monitor, 0 ok, 1 warn, 2 alert
    moved: tuple[str, ...]
    signals: Mapping[str, Floats] = field(default_factory=dict)  # per-signal columns
    others: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # class mix, rates


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
        self._on_event = on_event
        gate = calibration.gate.distributions
        names = tuple(gate) if cfg.features is None else cfg.features
        unknown = [n for n in names if n not in gate]
        if unknown:
            raise ValueError(
                f"monitor.features: {unknown} are not in the calibration (it has {sorted(gate)})"
            )
        if not names:
            raise ValueError("monitor.features: empty; leave it out to watch every signal")
        self._names = names
        self._bins = _Bins.of([gate[n].quantiles for n in names], cfg.psi_levels)

        drift = calibration.drift
        self._warmup = cfg.reference == "warmup"
        self._classes = len(drift.class_counts) if drift is not None else 0
        if self._warmup and not self._classes and labels is not None:
            self._classes = len(labels)  # the warm-up counts classes itself; it needs how many
        if labels is not None and self._classes and len(labels) != self._classes:
            raise ValueError(f"{len(labels)} labels for a calibration of {self._classes} classes")
        self._labels = tuple(labels) if labels is not None else None
        #: Monitors that are off, and why.
        self.off: dict[str, str] = {}
        old = (
            "calibration.json has no drift reference (written before the monitor existed); "
            "re-run `edge calibrate` on the model"
        )
        watch_classes = cfg.class_mix
        if not cfg.class_mix:
            self.off["class_mix"] = "disabled in the config"
        elif not self._warmup and drift is None:
            self.off["class_mix"] = old
            watch_classes = False
        elif not self._classes:
            self.off["class_mix"] = "the number of classes is unknown: pass the model's labels"
            watch_classes = False
        rates: list[tuple[str, int]] = []
        for name, code in (("review_rate", 1), ("reject_rate", 2)):
            if not cfg.decision_rates:
                self.off[name] = "disabled in the config"
            elif not self._warmup and drift is None:
                self.off[name] = old
            else:
                rates.append((name, code))

        # The monitors, in this order: signals, class mix, rates.
        self._watch_names = [*names]
        self._kinds = ["signal"] * len(names)
        warn, alert = [cfg.psi_warn] * len(names), [cfg.psi_alert] * len(names)
        if watch_classes:
            self._watch_names.append("class_mix")
            self._kinds.append("class_mix")
            warn.append(cfg.psi_warn)
            alert.append(cfg.psi_alert)
        for name, _ in rates:
            self._watch_names.append(name)
            self._kinds.append("rate")
            warn.append(cfg.rate_warn)
            alert.append(cfg.rate_alert)
        self._effect_warn, self._effect_alert = np.asarray(warn), np.asarray(alert)
        self._sig_warn, self._sig_alert = -math.log10(cfg.p_warn), -math.log10(cfg.p_alert)
        w = len(self._watch_names)
        self._level = np.zeros(w, np.int64)
        self._previous = np.zeros(w, np.int64)
        self._severity = np.zeros(w)
        self._up_run, self._up_min = np.zeros(w, np.int64), np.zeros(w, np.int64)
        self._down_run, self._down_max = np.zeros(w, np.int64), np.zeros(w, np.int64)

        # The window: a ring of binned frames, and the counts of what it holds.
        n = cfg.window_frames
        self._ring_bins = np.zeros((n, len(names)), np.int64)
        self._ring_label = np.zeros(n, np.int64)
        self._ring_decision = np.zeros(n, np.int64)
        self._ring_t = np.zeros(n, np.float64)
        self._start = 0  # the oldest frame's slot
        self._size = 0
        self._bin_offset = np.arange(len(names)) * self._bins.width
        self._fine = np.zeros(len(names) * self._bins.width, np.int64)
        self._class_counts = np.zeros(max(self._classes, 1), np.int64)
        self._decision_counts = np.zeros(3, np.int64)

        # The reference: the calibration's now, or the warm-up's once it has been seen (the
        # window's counters count the warm-up's frames until then).
        self._m: int | None = None
        self._class_ref: Counts | None = None
        self._rate_ref: dict[str, tuple[int, int, int]] = {}  # name: (decision, count, frames)
        self._warmed = 0  # warm-up frames counted so far
        self._warming = self._warmup
        self._warm_rows: list[tuple[Counts, Counts, Counts]] = []  # its frames, binned
        #: Frames per independent observation, per monitor: 1 against the calibration (its
        #: frames are independent images), measured on the warm-up's own frames otherwise.
        self._tau = np.ones(w)
        self._rates, self._watch_classes = rates, watch_classes
        if not self._warmup:
            # The sample size of the quantile tables, for the two-sample tests. A file from
            # before the drift reference: this version's split of the images it records, if
            # it does.
            images = calibration.figures.get("images")
            if drift is not None:
                self._m = drift.frames
                if watch_classes:
                    self._class_ref = np.asarray(drift.class_counts, np.int64)
                for name, code in rates:
                    count = drift.review if code == 1 else drift.reject
                    self._rate_ref[name] = (code, count, drift.frames)
            elif images:
                self._m = int(images) - round(int(images) * REFERENCE_SHARE)
            self._smooth_reference()

        self._pending: list[tuple[float, ...]] = []
        self._frames = 0
        self._checks = 0
        self._state: DriftState = "ok"
        self._events: deque[DriftEvent] = deque(maxlen=cfg.max_events)
        self._result = _Result(0.0, 0, False, 0, 0.0, self._level.copy(), ())

    def _smooth_reference(self) -> None:
        """The reference side of PSI, smoothed like the window's: it is m frames, not truth."""
        b = self._bins
        self._per_bin = b.coarse_bins[b.coarse_signal].astype(np.float64)
        self._q = b.coarse_share
        if self._m is not None:
            self._q = (b.coarse_share * self._m + _SMOOTHING) / (
                self._m + _SMOOTHING * self._per_bin
            )
        if self._class_ref is not None:
            k, self._class_m = len(self._class_ref), int(self._class_ref.sum())
            self._class_q = (self._class_ref + _SMOOTHING) / (self._class_m + _SMOOTHING * k)

    def _end_warmup(self) -> None:
        """The warm-up's counts become the reference, and the window starts empty: a window
        that held the reference's own frames would be compared with itself."""
        m = self._warmed
        bins, labels, decisions = (np.concatenate(c) for c in zip(*self._warm_rows, strict=True))
        self._warm_rows.clear()
        self._bins = self._bins.refit(
            self._fine.reshape(len(self._names), -1), self.config.psi_levels
        )
        self._m = m
        if self._watch_classes:
            self._class_ref = self._class_counts.copy()
        for name, code in self._rates:
            self._rate_ref[name] = (code, int(self._decision_counts[code]), m)
        self._smooth_reference()
        self._tau = self._measure_tau(bins, labels, decisions)
        self._fine[:] = 0
        self._class_counts[:] = 0
        self._decision_counts[:] = 0
        self._start = self._size = 0

    def _measure_tau(self, bins: Counts, labels: Counts, decisions: Counts) -> Floats:
        """Each monitor's frames per independent observation, on the warm-up's frames: of
        each signal's rank (its fine bin's mid-point in the warm-up's CDF), of the one-hot
        class and of the REVIEW and REJECT indicators."""
        fine = self._fine.reshape(len(self._names), -1).astype(np.float64)
        mid = (np.cumsum(fine, axis=1) - fine / 2) / self._warmed
        ranks = mid.ravel()[bins]
        tau = [_frames_per_sample(ranks[:, j : j + 1]) for j in range(len(self._names))]
        if self._class_ref is not None:
            tau.append(_frames_per_sample(np.eye(self._classes)[labels]))
        for code, _, _ in self._rate_ref.values():
            tau.append(_frames_per_sample((decisions == code).astype(np.float64)[:, None]))
        return np.asarray(tau)

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
        return self._state

    @property
    def state(self) -> DriftState:
        """The overall state: the worst monitor's."""
        return self._state

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def events(self) -> list[DriftEvent]:
        """State changes, oldest first (the last ``max_events``)."""
        return list(self._events)

    def snapshot(self) -> dict[str, Any]:
        """The state as of the last check, JSON-able: overall and per-monitor state and
        statistics, the monitors that moved (worst first), frames seen and in the window,
        the reference (and whether it is still being learnt: ``"warming up"``) and the
        monitors that are off and why."""
        r = self._result
        monitors: dict[str, dict[str, Any]] = {}
        for i, (name, kind) in enumerate(zip(self._watch_names, self._kinds, strict=True)):
            entry: dict[str, Any] = {"state": _STATES[r.level[i]], "kind": kind}
            entry.update(self._detail(r, i))
            monitors[name] = entry
        return {
            "state": _STATES[int(r.level.max(initial=0))],
            "frames": self._frames,
            "checks": r.checks,
            "evaluated": r.evaluated,
            "window": {"frames": r.window_frames, "seconds": r.window_seconds},
            "moved": list(r.moved),
            "monitors": monitors,
            "off": dict(self.off),
            "reference": self._reference(),
        }

    def _reference(self) -> dict[str, Any]:
        if not self._warmup:
            return {"kind": "calibration", "frames": self._m, "status": "ready"}
        return {
            "kind": "warmup",
            "frames": self._warmed,
            "of": self.config.warmup_frames,
            "status": "warming up" if self._warming else "ready",
        }

    # -- every check_every frames -----------------------------------------------------------

    def _check(self) -> None:
        block = np.asarray(self._pending, np.float64)
        self._pending.clear()
        self._checks += 1
        t = block[:, 0]
        bins = np.empty((len(block), len(self._names)), np.int64)
        for j, edges in enumerate(self._bins.edges):
            # NaN sorts past every edge: an undefined statistic counts as extreme.
            bins[:, j] = np.searchsorted(edges, block[:, 3 + j], side="left")
        bins += self._bin_offset
        labels, decisions = block[:, 1].astype(np.int64), block[:, 2].astype(np.int64)
        if self._warming:
            k = self._warm(bins, labels, decisions)
            bins, labels, decisions, t = bins[k:], labels[k:], decisions[k:], t[k:]
            if not len(t):
                self._result = _Result(
                    float(block[-1, 0]), self._checks, False, 0, 0.0, self._level.copy(), ()
                )
                return
        self._push(bins, labels, decisions, t)
        now = float(t[-1])
        self._evict(self._older_than(now - self.config.window_seconds))
        evaluated = self._size >= self.config.min_frames
        seconds = float(now - self._ring_t[self._start]) if self._size else 0.0
        if not evaluated:
            last = self._result
            self._result = _Result(
                now, self._checks, False, self._size, seconds, last.level, last.moved,
                last.signals, last.others,
            )  # fmt: skip
            return
        effect, log10p, signals, others = self._statistics()
        changed = self._step(effect, log10p)
        moved = self._moved()
        self._result = _Result(
            now, self._checks, True, self._size, seconds, self._level.copy(), moved, signals,
            others,
        )  # fmt: skip
        if len(changed):
            self._emit(changed, now, moved)

    def _warm(self, bins: Counts, labels: Counts, decisions: Counts) -> int:
        """Counts the first of these frames into the warm-up, up to its length; how many."""
        k = min(len(bins), self.config.warmup_frames - self._warmed)
        self._warm_rows.append((bins[:k], labels[:k], decisions[:k]))
        self._fine += np.bincount(bins[:k].ravel(), minlength=len(self._fine))
        if self._classes:
            self._class_counts += np.bincount(labels[:k], minlength=self._classes)
        self._decision_counts += np.bincount(decisions[:k], minlength=3)
        self._warmed += k
        if self._warmed >= self.config.warmup_frames:
            self._end_warmup()
            self._warming = False
        return k

    def _push(self, bins: Counts, labels: Counts, decisions: Counts, t: Floats) -> None:
        n = self.config.window_frames
        overflow = self._size + len(t) - n
        if overflow > 0:
            self._evict(overflow)
        slots = (self._start + self._size + np.arange(len(t))) % n
        self._ring_bins[slots] = bins
        self._ring_label[slots] = labels
        self._ring_decision[slots] = decisions
        self._ring_t[slots] = t
        self._size += len(t)
        self._count(slots, +1)

    def _older_than(self, cutoff: float) -> int:
        """How many of the oldest frames are older than ``cutoff``."""
        if not self._size or self._ring_t[self._start] >= cutoff:
            return 0  # the usual case, in O(1)
        slots = (self._start + np.arange(self._size)) % self.config.window_frames
        old = self._ring_t[slots] < cutoff
        return self._size if old.all() else int(np.argmin(old))

    def _evict(self, count: int) -> None:
        if count <= 0:
            return
        slots = (self._start + np.arange(count)) % self.config.window_frames
        self._count(slots, -1)
        self._start = (self._start + count) % self.config.window_frames
        self._size -= count

    def _count(self, slots: npt.NDArray[np.int64], sign: int) -> None:
        self._fine += sign * np.bincount(self._ring_bins[slots].ravel(), minlength=len(self._fine))
        if self._classes:
            self._class_counts += sign * np.bincount(
                self._ring_label[slots], minlength=self._classes
            )
        self._decision_counts += sign * np.bincount(self._ring_decision[slots], minlength=3)

    def _statistics(
        self,
    ) -> tuple[Floats, Floats, dict[str, Floats], dict[str, dict[str, Any]]]:
        """Every monitor's effect and -log10 p, and the figures snapshots show."""
        b, n, m = self._bins, self._size, self._m
        signals_tau = self._tau[: len(self._names)]
        fine = self._fine.reshape(len(self._names), b.width)
        # KS, two-sample against the calibration's quantile table, at every distinct quantile.
        ecdf = np.cumsum(fine, axis=1)[:, :-1] / n
        distance = np.max(np.abs(ecdf - b.cdf), axis=1)
        log10p = _ks_log10_sf(distance, (n if m is None else n * m / (n + m)) / signals_tau)
        # PSI over the coarse bins, smoothed so that an empty bin is rare rather than never.
        coarse = np.bincount(b.coarse_of, weights=self._fine, minlength=len(b.coarse_share))
        p, q = (coarse + _SMOOTHING) / (n + _SMOOTHING * self._per_bin), self._q
        raw = np.bincount(b.coarse_signal, weights=(p - q) * np.log(p / q))
        psi = np.maximum(raw - signals_tau * _psi_noise(b.coarse_bins, n, m), 0.0)
        # Which way it moved: the window's median, to the resolution of the quantile table.
        median = b.upper[np.arange(len(fine)), np.argmax(ecdf >= 0.5, axis=1)]
        signals = {
            "psi": psi, "psi_raw": raw, "ks": distance, "p": 10.0**-log10p,
            "median": median, "reference_median": b.median, "frames_per_sample": signals_tau,
        }  # fmt: skip
        effects, sigs = [psi], [log10p]
        others: dict[str, dict[str, Any]] = {}
        if self._class_ref is not None:
            effect, sig, others["class_mix"] = self._class_mix(n)
            effects.append(np.array([effect]))
            sigs.append(np.array([sig]))
        at = len(self._names) + (self._class_ref is not None)
        for i, (name, (code, count, frames)) in enumerate(self._rate_ref.items(), at):
            x = int(self._decision_counts[code])
            rate, expected, tau = x / n, count / frames, float(self._tau[i])
            sig = _rate_log10p(x, n, count, frames, tau)
            others[name] = {
                "rate": rate, "expected": expected, "p": 10.0**-sig, "frames_per_sample": tau
            }  # fmt: skip
            effects.append(np.array([rate - expected]))
            sigs.append(np.array([sig]))
        return np.concatenate(effects), np.concatenate(sigs), signals, others

    def _class_mix(self, n: int) -> tuple[float, float, dict[str, Any]]:
        ref = self._class_ref
        assert ref is not None
        live, m, k = self._class_counts, self._class_m, len(ref)
        total = live + ref
        # Pearson's chi-square on the 2 × classes table (window, calibration): both rows have
        # the same (O − E)², and 1/E_live + 1/E_ref = (n + m)² / (n · m · total).
        diff = live - total * (n / (n + m))
        chi2 = (n + m) ** 2 / (n * m) * float(np.dot(diff, diff / np.maximum(total, 1)))
        # Runs of frames of one item count as one observation each.
        tau = float(self._tau[len(self._names)])
        sig = _chi2_log10_sf(chi2 / tau, int(np.count_nonzero(total)) - 1)
        p, q = (live + _SMOOTHING) / (n + _SMOOTHING * k), self._class_q
        raw = float(np.dot(p - q, np.log(p / q)))
        psi = max(0.0, raw - tau * (k - 1) * (1 / n + 1 / m))
        top = int(np.argmax(live * m - ref * n))
        detail = {
            "psi": psi,
            "psi_raw": raw,
            "chi2": chi2,
            "p": 10.0**-sig,
            "most_over": self._labels[top] if self._labels else top,
            "share": float(live[top] / n),
            "expected_share": float(ref[top] / m),
            "frames_per_sample": tau,
        }
        return psi, sig, detail

    def _step(self, effect: Floats, log10p: Floats) -> npt.NDArray[np.intp]:
        """Every monitor's state machine, one check on; the monitors that changed state.

        A check points each monitor to a target state: a level it does not hold needs
        effect and significance over that level's thresholds, one it holds only ``release``
        times them. It goes up to the lowest target of ``enter_checks`` higher targets in a
        row, down to the highest of ``min_dwell`` lower ones in a row."""
        cfg, level = self.config, self._level
        r_warn = np.minimum(effect / self._effect_warn, log10p / self._sig_warn)
        r_alert = np.minimum(effect / self._effect_alert, log10p / self._sig_alert)
        target = np.where(
            r_alert >= np.where(level >= 2, cfg.release, 1.0),
            2,
            np.where(r_warn >= np.where(level >= 1, cfg.release, 1.0), 1, 0),
        )
        self._severity = effect / self._effect_warn
        if not (target != level).any() and not self._up_run.any() and not self._down_run.any():
            return _NONE  # the usual check: every monitor where it was, nothing pending
        up, down = target > level, target < level
        self._up_min = np.where(
            up, np.where(self._up_run == 0, target, np.minimum(self._up_min, target)), 0
        )
        self._up_run = np.where(up, self._up_run + 1, 0)
        self._down_max = np.where(
            down, np.where(self._down_run == 0, target, np.maximum(self._down_max, target)), 0
        )
        self._down_run = np.where(down, self._down_run + 1, 0)
        new = np.where(
            self._up_run >= cfg.enter_checks,
            self._up_min,
            np.where(self._down_run >= cfg.min_dwell, self._down_max, level),
        )
        changed = np.flatnonzero(new != level)
        if len(changed):
            self._previous[changed] = level[changed]
            self._up_run[changed] = 0  # the dwell counts from the change
            self._down_run[changed] = 0
            self._level = new
        return changed

    # -- reporting --------------------------------------------------------------------------

    def _moved(self) -> tuple[str, ...]:
        flagged = np.flatnonzero(self._level > 0)
        order = sorted(flagged, key=lambda i: (-self._level[i], -self._severity[i]))
        return tuple(self._watch_names[i] for i in order)

    def _detail(self, r: _Result, i: int) -> dict[str, Any]:
        name = self._watch_names[i]
        if i < len(self._names):
            detail = {k: float(v[i]) for k, v in r.signals.items()}
        else:
            detail = dict(r.others.get(name, {}))
        # JSON has no NaN or infinity.
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in detail.items()
        }

    def _emit(self, changed: npt.NDArray[np.intp], now: float, moved: tuple[str, ...]) -> None:
        r = self._result
        events = [
            DriftEvent(
                now,
                self._frames,
                self._watch_names[i],
                _STATES[self._previous[i]],
                _STATES[self._level[i]],
                moved,
                self._detail(r, i),
            )
            for i in changed
        ]
        previous, self._state = self._state, _STATES[int(self._level.max(initial=0))]
        if self._state != previous:
            events.append(DriftEvent(now, self._frames, "overall", previous, self._state, moved))
        for event in events:
            self._events.append(event)
            if self._on_event is not None:
                self._on_event(event)
