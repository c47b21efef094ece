"""The calibration of a model directory, as the device reads it: ``calibration.json`` (the
temperature, the gate's bands and threshold, the review confidence, the drift monitor's
reference) and ``ood.npz`` (the OOD reference). ``edge calibrate`` writes both
(:mod:`edge.offline.calibrate`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.judge.gate import Gate
from edge.judge.ood import OodReference

CALIBRATION_FILE = "calibration.json"
OOD_FILE = "ood.npz"
FORMAT_VERSION = 1
#: Share of the calibration data the OOD reference is fitted on; the rest measures it.
REFERENCE_SHARE = 2 / 3


@dataclass(frozen=True)
class DriftReference:
    """What the drift monitor compares live frames with, besides the gate's quantile tables.

    Counts rather than shares, so the monitor's tests can allow for the reference's own
    sampling noise (a two-sample test against a few thousand frames, not a known truth).
    """

    #: Frames the gate's quantile tables and the decision counts were measured on: the
    #: sample size of the empirical CDFs a KS test compares with.
    frames: int
    #: The model's top class on every calibration image (predictions do not depend on the
    #: split, so all of them count).
    class_counts: tuple[int, ...]
    #: Of ``frames``, how many ``decide`` sent to REVIEW and to REJECT.
    review: int
    reject: int

    @property
    def review_rate(self) -> float:
        return self.review / self.frames

    @property
    def reject_rate(self) -> float:
        return self.reject / self.frames

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "class_counts": list(self.class_counts),
            "review": self.review,
            "reject": self.reject,
            # Derived, for people reading the file; the counts are what is read back.
            "review_rate": self.review_rate,
            "reject_rate": self.reject_rate,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DriftReference:
        ref = cls(
            frames=int(doc["frames"]),
            class_counts=tuple(int(c) for c in doc["class_counts"]),
            review=int(doc["review"]),
            reject=int(doc["reject"]),
        )
        if ref.frames < 1 or not 0 <= ref.review + ref.reject <= ref.frames:
            raise ValueError("drift: frames, review and reject counts are inconsistent")
        if len(ref.class_counts) < 2 or min(ref.class_counts) < 0 or sum(ref.class_counts) < 1:
            raise ValueError("drift: class_counts must be two or more counts, not all zero")
        return ref


@dataclass(frozen=True)
class Calibration:
    temperature: float
    gate: Gate
    review_confidence: float  # calibrated confidence under which a frame goes to review
    data_sha256: str
    figures: Mapping[str, float]
    #: None in files written before the drift monitor existed (they still load).
    drift: DriftReference | None = None
    #: False when calibrated without labels: temperature 1 and review confidence 0 are then
    #: neutral values, not fitted ones.
    labelled: bool = True

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "labelled": self.labelled,
            "temperature": self.temperature,
            "temperature_fitted": self.labelled,
            "gate": self.gate.to_json(),
            "review": {"confidence": self.review_confidence, "fitted": self.labelled},
            "data_sha256": self.data_sha256,
            "figures": dict(self.figures),
        }
        if self.drift is not None:
            doc["drift"] = self.drift.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Calibration:
        try:
            drift = doc.get("drift")
            return cls(
                temperature=float(doc["temperature"]),
                gate=Gate.from_json(doc["gate"]),
                review_confidence=float(doc["review"]["confidence"]),
                data_sha256=str(doc["data_sha256"]),
                figures=dict(doc.get("figures", {})),
                drift=None if drift is None else DriftReference.from_json(drift),
                labelled=bool(doc.get("labelled", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{CALIBRATION_FILE} is malformed: {exc}") from exc


def load_calibration(directory: str | Path) -> tuple[Calibration, OodReference] | None:
    """The calibration of a model directory, or None when it has not been calibrated."""
    d = Path(directory)
    if not (d / CALIBRATION_FILE).is_file():
        return None
    with (d / CALIBRATION_FILE).open() as f:
        calibration = Calibration.from_json(json.load(f))
    return calibration, OodReference.load(d / OOD_FILE)
