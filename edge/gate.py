"""The input gate: is this frame something the model may be trusted on?

Every signal — a frame statistic (a camera fault shows there first) or an OOD score of the
model's outputs — is put on one scale by the calibration data: 0 at its in-distribution
median, 1 at the edge of its in-distribution band (a high quantile, or both tails for
statistics that can fail either way, like brightness). The gate's ``default`` score is the
largest of them, so the reason for a refusal is the signal that moved most; its threshold
is set so that the target share of in-distribution calibration frames passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Side = Literal["high", "low", "both"]

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
#: Where the in-distribution band ends, as a quantile of the calibration data (per tail).
BAND_QUANTILE = 0.995


@dataclass(frozen=True)
class Band:
    """A signal's calibration quantiles: low edge, median, high edge."""

    low: float
    median: float
    high: float

    @classmethod
    def fit(cls, values: npt.ArrayLike, quantile: float = BAND_QUANTILE) -> Band:
        v = np.asarray(values, dtype=np.float64)
        low, median, high = np.quantile(v, [1 - quantile, 0.5, quantile])
        return cls(float(low), float(median), float(high))

    def deviation(self, value: npt.ArrayLike, side: Side) -> npt.NDArray[np.float64]:
        """0 at the median, 1 at the band's edge on the failing side, negative inside."""
        v = np.asarray(value, dtype=np.float64)
        # A floor on the spread keeps a signal that never varied in calibration (say, no
        # blown-out pixels at all) from turning the smallest change into a refusal.
        floor = 1e-3 * max(abs(self.median), 1.0)
        up = (v - self.median) / max(self.high - self.median, floor)
        down = (self.median - v) / max(self.median - self.low, floor)
        if side == "high":
            return up
        if side == "low":
            return down
        return np.maximum(up, down)


@dataclass(frozen=True)
class Gate:
    """Bands of the signals, which of them decide, and the threshold on their maximum."""

    bands: Mapping[str, Band]
    signals: tuple[str, ...]
    threshold: float

    @classmethod
    def fit(
        cls,
        calibration: Mapping[str, npt.ArrayLike],
        *,
        target_tpr: float = 0.95,
        signals: tuple[str, ...] = DEFAULT_SIGNALS,
        band_data: Mapping[str, npt.ArrayLike] | None = None,
    ) -> Gate:
        """Bands from ``band_data`` (default: ``calibration``), then the threshold that accepts
        ``target_tpr`` of the ``calibration`` frames. Fit the bands and the threshold on
        different frames when the scores were fitted on some of them (k-NN is)."""
        if not 0 < target_tpr <= 1:
            raise ValueError(f"target_tpr must be in (0, 1]; got {target_tpr}")
        unknown = sorted(set(signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown gate signals {unknown}; known: {sorted(SIGNALS)}")
        source = calibration if band_data is None else band_data
        bands = {name: Band.fit(source[name]) for name in SIGNALS if name in source}
        missing = sorted(set(signals) - set(bands))
        if missing:
            raise ValueError(f"calibration data lacks the gate signals {missing}")
        gate = cls(bands=bands, signals=signals, threshold=np.inf)
        combined = gate.score(calibration)
        threshold = float(np.quantile(combined, target_tpr, method="higher"))
        return cls(bands=bands, signals=signals, threshold=threshold)

    def deviations(self, values: Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[np.float64]]:
        return {n: self.bands[n].deviation(values[n], SIGNALS[n]) for n in self.signals}

    def score(self, values: Mapping[str, npt.ArrayLike]) -> npt.NDArray[np.float64]:
        """The ``default`` score: the largest deviation of the deciding signals."""
        d = self.deviations(values)
        combined: npt.NDArray[np.float64] = np.max(np.stack([d[n] for n in self.signals]), axis=0)
        return combined

    def check(self, values: Mapping[str, float]) -> tuple[bool, str, float]:
        """One frame: ``(passes, reason, score)``; the reason names the signal that moved most."""
        worst, worst_name = -np.inf, ""
        for name in self.signals:
            d = float(self.bands[name].deviation(values[name], SIGNALS[name]))
            if d > worst:
                worst, worst_name = d, name
        if worst <= self.threshold:
            return True, "", worst
        kind = "camera" if worst_name in STATISTICS else "ood"
        return False, f"{kind}:{worst_name}", worst

    def to_json(self) -> dict[str, Any]:
        return {
            "signals": list(self.signals),
            "threshold": self.threshold,
            "bands": {n: [b.low, b.median, b.high] for n, b in self.bands.items()},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Gate:
        try:
            return cls(
                bands={n: Band(*map(float, b)) for n, b in doc["bands"].items()},
                signals=tuple(doc["signals"]),
                threshold=float(doc["threshold"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"gate calibration is malformed: {exc}") from exc
