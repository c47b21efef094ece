"""The input gate: is this frame something the model may be trusted on?

Each signal — a frame statistic (a camera fault shows there first) or an OOD score of the
model's outputs — is turned into a tail probability under its calibration distribution: how
rare a value at least this extreme is among in-distribution frames, on the side where the
signal fails (too dark, too blurred, too far from the class means...). The ``default`` score
is Fisher's combination of them, −Σ log p: a frame a little unusual in several ways is as
suspect as one very unusual in one. Its threshold accepts the target share of held-out
in-distribution frames, and a refusal's reason is the signal with the smallest p.

On Fashion-MNIST vs MNIST the combination separates far better than any single signal or
the largest deviation (see the README's figures).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Side = Literal["high", "low", "both"]
Floats = npt.NDArray[np.float64]

#: Which way each signal fails. Statistics of a camera fault, then model-output scores.
SIGNALS: dict[str, Side] = {
    "brightness": "both",
    "contrast": "low",
    "sharpness": "low",
    "dark": "high",
    "bright": "high",
    "msp": "low",
    "energy": "high",
    "mahalanobis": "high",
    "knn": "high",
}
STATISTICS = ("brightness", "contrast", "sharpness", "dark", "bright")
#: Signals combined into the default decision: camera faults and distance from the training
#: data. MSP and energy measure uncertainty between known classes; they route to REVIEW.
DEFAULT_SIGNALS = (*STATISTICS, "mahalanobis", "knn")
#: Without labels the Mahalanobis reference is one Gaussian over every class, a poor model of
#: a many-class feature space: on EfficientNet-Lite0 with photos it put MNIST digits closer
#: than held-out photos (AUROC 0.04) and refused a third of those photos. It is still
#: reported by ``edge eval``, but does not decide.
UNLABELLED_SIGNALS = (*STATISTICS, "knn")
#: Levels of the quantile table kept per signal: dense in the tails, where decisions are made.
LEVELS = np.concatenate(
    [[0.0005, 0.001, 0.002, 0.005], np.linspace(0.01, 0.99, 99), [0.995, 0.998, 0.999, 0.9995]]
)
#: Smallest tail scale per signal, in its own unit: a signal that never varied during
#: calibration (no blown-out pixel at all, say) must not make the smallest change fatal.
SCALE_FLOOR = {"brightness": 1.0, "contrast": 1.0, "sharpness": 1.0, "dark": 0.005, "bright": 0.005}


@dataclass(frozen=True)
class Distribution:
    """A signal's calibration distribution as a quantile table at :data:`LEVELS`."""

    quantiles: tuple[float, ...]
    floor: float

    @classmethod
    def fit(cls, values: npt.ArrayLike, floor: float) -> Distribution:
        q = np.quantile(np.asarray(values, dtype=np.float64), LEVELS)
        return cls(tuple(float(v) for v in q), floor)

    @cached_property
    def _high(self) -> UpperTail:
        return UpperTail.of(np.asarray(self.quantiles), self.floor)

    @cached_property
    def _low(self) -> UpperTail:
        # The lower tail of X is the upper tail of -X.
        return UpperTail.of(-np.asarray(self.quantiles)[::-1], self.floor)

    def tail(self, value: npt.ArrayLike, side: Side) -> Floats:
        """The probability of a value at least this extreme on the failing ``side``."""
        v = np.asarray(value, dtype=np.float64)
        if side == "high":
            return self._high(v)
        if side == "low":
            return self._low(-v)
        both: Floats = np.minimum(1.0, 2 * np.minimum(self._high(v), self._low(-v)))
        return both

    def tail_at(self, value: float, side: Side) -> float:
        """:meth:`tail` of one value (one frame's check), in plain floats."""
        if side == "high":
            return self._high.at(value)
        if side == "low":
            return self._low.at(-value)
        return min(1.0, 2 * min(self._high.at(value), self._low.at(-value)))


@dataclass(frozen=True)
class UpperTail:
    """P(X >= v) from a quantile table at :data:`LEVELS`: interpolated inside the table, an
    exponential tail beyond its end. Derived once per distribution, used per frame."""

    values: Floats  # the table's distinct values
    levels: Floats  # the level of each
    scale: float  # of the exponential tail past the last value

    @classmethod
    def of(cls, q: Floats, floor: float) -> UpperTail:
        # Where the table repeats a value, the lowest level counts: at that value the
        # upper tail still holds everything above it.
        values, first = np.unique(q, return_index=True)
        levels = LEVELS[first]
        # The tail's scale from the last two distinct entries, matched to their levels.
        scale = floor
        if len(values) >= 2:
            drop = np.log((1 - levels[-2]) / (1 - levels[-1]))
            scale = max((values[-1] - values[-2]) / max(drop, 1e-12), floor)
        return cls(values, levels, float(scale))

    def __call__(self, v: Floats) -> Floats:
        inside = 1.0 - np.interp(v, self.values, self.levels, left=0.0)
        edge, edge_p = self.values[-1], 1 - self.levels[-1]
        # Clipped at the edge: below it the other branch counts, and exp must not overflow.
        beyond = edge_p * np.exp(-np.maximum(v - edge, 0.0) / self.scale)
        p: Floats = np.where(v > edge, beyond, np.maximum(inside, edge_p))
        return p

    @cached_property
    def _table(self) -> tuple[list[float], list[float]]:
        return self.values.tolist(), self.levels.tolist()

    def at(self, v: float) -> float:
        """The same for one value, without NumPy's cost per call, which on a scalar is most
        of a frame's check."""
        values, levels = self._table
        edge_p = 1 - levels[-1]
        if v > values[-1]:
            return edge_p * math.exp(-(v - values[-1]) / self.scale)
        i = bisect.bisect_right(values, v)
        if i == 0:
            level = 0.0
        elif values[i - 1] == v:
            level = levels[i - 1]
        else:  # values[i - 1] < v < values[i]
            t = (v - values[i - 1]) / (values[i] - values[i - 1])
            level = levels[i - 1] + t * (levels[i] - levels[i - 1])
        return max(1.0 - level, edge_p)


@dataclass(frozen=True)
class Gate:
    """The signals' distributions, which of them decide, and the threshold on −Σ log p."""

    distributions: Mapping[str, Distribution]
    signals: tuple[str, ...]
    threshold: float

    @classmethod
    def fit(
        cls,
        calibration: Mapping[str, npt.ArrayLike],
        *,
        target_tpr: float = 0.95,
        signals: tuple[str, ...] = DEFAULT_SIGNALS,
    ) -> Gate:
        """Distributions of every known signal in ``calibration``, and the threshold that
        accepts ``target_tpr`` of those frames. Measure them on frames the scores were not
        fitted on (the k-NN bank must not contain them)."""
        if not 0 < target_tpr <= 1:
            raise ValueError(f"target_tpr must be in (0, 1]; got {target_tpr}")
        unknown = sorted(set(signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown gate signals {unknown}; known: {sorted(SIGNALS)}")
        missing = sorted(set(signals) - set(calibration))
        if missing:
            raise ValueError(f"calibration data lacks the gate signals {missing}")
        distributions = {}
        for name in SIGNALS:
            if name in calibration:
                values = np.asarray(calibration[name], dtype=np.float64)
                floor = SCALE_FLOOR.get(name, 1e-3 * max(float(np.median(np.abs(values))), 1.0))
                distributions[name] = Distribution.fit(values, floor)
        gate = cls(distributions, signals, np.inf)
        threshold = float(np.quantile(gate.score(calibration), target_tpr, method="higher"))
        return cls(distributions, signals, threshold)

    def surprise(self, values: Mapping[str, npt.ArrayLike]) -> dict[str, Floats]:
        """−log p of each deciding signal: 0 for a typical value, growing with its rarity."""
        return {
            n: -np.log(np.maximum(self.distributions[n].tail(values[n], SIGNALS[n]), 1e-300))
            for n in self.signals
        }

    def score(self, values: Mapping[str, npt.ArrayLike]) -> Floats:
        """The ``default`` score: Fisher's combination −Σ log p of the deciding signals."""
        total: Floats = np.sum(np.stack(list(self.surprise(values).values())), axis=0)
        return total

    def check(self, values: Mapping[str, float]) -> tuple[bool, str, float]:
        """One frame: ``(passes, reason, score)``; the reason names the rarest signal."""
        surprise = {
            n: -math.log(max(self.distributions[n].tail_at(float(values[n]), SIGNALS[n]), 1e-300))
            for n in self.signals
        }
        score = sum(surprise.values())
        if score <= self.threshold:
            return True, "", score
        worst = max(surprise, key=surprise.__getitem__)
        kind = "camera" if worst in STATISTICS else "ood"
        return False, f"{kind}:{worst}", score

    def to_json(self) -> dict[str, Any]:
        return {
            "signals": list(self.signals),
            "threshold": self.threshold,
            "levels": LEVELS.tolist(),
            "distributions": {
                n: {"quantiles": list(d.quantiles), "floor": d.floor}
                for n, d in self.distributions.items()
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Gate:
        """The gate ``to_json`` wrote; ValueError for one that could not decide a frame."""
        try:
            if not np.allclose(doc["levels"], LEVELS):
                raise ValueError("its quantile levels differ from this version's")
            distributions = {n: _distribution(n, d) for n, d in doc["distributions"].items()}
            signals = tuple(doc["signals"])
            threshold = float(doc["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"gate calibration is malformed: {exc}") from exc
        unknown = sorted(set(map(str, signals)) - set(SIGNALS))
        if unknown or not signals:
            raise ValueError(f"gate.signals must name some of {sorted(SIGNALS)}; got {signals}")
        missing = sorted(set(signals) - set(distributions))
        if missing:
            raise ValueError(f"gate.distributions lacks the deciding signals {missing}")
        if math.isnan(threshold):
            raise ValueError("gate.threshold is NaN: no frame could be compared with it")
        return cls(distributions, signals, threshold)


def _distribution(name: str, doc: Mapping[str, Any]) -> Distribution:
    quantiles = tuple(map(float, doc["quantiles"]))
    floor = float(doc["floor"])
    q = np.asarray(quantiles)
    if len(q) != len(LEVELS) or not np.isfinite(q).all() or (np.diff(q) < 0).any():
        raise ValueError(
            f"gate.distributions.{name}.quantiles must be {len(LEVELS)} finite, "
            "non-decreasing numbers"
        )
    if not (math.isfinite(floor) and floor > 0):
        raise ValueError(f"gate.distributions.{name}.floor must be a positive number; got {floor}")
    return Distribution(quantiles, floor)
