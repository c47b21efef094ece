"""The calibration of a model directory, as the device reads it: ``calibration.json`` (the
temperature, the gate's bands and threshold, the review confidence, the drift monitor's
reference) and ``ood.npz`` (the OOD reference). ``edge calibrate`` writes both
(:mod:`edge.offline.calibrate`) and lists both in the manifest with their sha256.

:func:`load_calibration` reads them through the manifest, so what the device judges with is
what the manifest hashed: an unlisted calibration file is refused, not used or ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ModelError
from edge.judge.gate import Gate
from edge.judge.ood import OodReference
from edge.model.manifest import MANIFEST_NAME, Manifest, parse_json

CALIBRATION_FILE = "calibration.json"
OOD_FILE = "ood.npz"
FORMAT_VERSION = 1
_FIX = "calibrate the model directory again with `edge calibrate` (it lists what it writes)"
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
        """The calibration ``to_json`` wrote; ValueError for a malformed one, or one whose
        values would load but could not judge a frame (a temperature of 0, a NaN)."""
        try:
            drift = doc.get("drift")
            calibration = cls(
                temperature=float(doc["temperature"]),
                gate=Gate.from_json(doc["gate"]),
                review_confidence=float(doc["review"]["confidence"]),
                data_sha256=str(doc["data_sha256"]),
                figures=dict(doc.get("figures", {})),
                drift=None if drift is None else DriftReference.from_json(drift),
                labelled=bool(doc.get("labelled", True)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{CALIBRATION_FILE} is malformed: {exc}") from exc
        t, c = calibration.temperature, calibration.review_confidence
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a positive finite number; got {t}")
        if not 0 <= c <= 1:  # also refuses NaN
            raise ValueError(f"review.confidence must be a probability in [0, 1]; got {c}")
        return calibration


def load_calibration(
    model_directory: Manifest | str | Path,
) -> tuple[Calibration, OodReference] | None:
    """The calibration of a model directory, or None when it has not been calibrated.

    Pass the loaded model's :class:`~edge.model.manifest.Manifest` (``model.manifest``), so
    the calibration comes from the same release as the model (a path loads its manifest).
    Both files are read as the bytes their sha256 in the manifest covers. A
    :class:`~edge.errors.ModelError` naming the file refuses a calibration file the manifest
    does not list, one listed without the other, a hash mismatch, and a file that parses but
    could not judge a frame.
    """
    manifest = (
        model_directory if isinstance(model_directory, Manifest) else Manifest.load(model_directory)
    )
    entries = {name: manifest.listed(name) for name in (CALIBRATION_FILE, OOD_FILE)}
    for name, entry in entries.items():
        if entry is None and manifest.holds(name):
            raise ModelError(
                f"{manifest.directory / name}: calibration data that {MANIFEST_NAME} does not "
                "list, so no hash covers it and edge will not use it; "
                f"{_FIX}, or remove the file"
            )
    calibration_entry, ood_entry = entries[CALIBRATION_FILE], entries[OOD_FILE]
    if calibration_entry is None and ood_entry is None:
        return None
    if calibration_entry is None or ood_entry is None:
        listed, missing = (
            (OOD_FILE, CALIBRATION_FILE)
            if calibration_entry is None
            else (CALIBRATION_FILE, OOD_FILE)
        )
        raise ModelError(
            f"{manifest.path}: lists {listed} but not {missing}; a calibration is both: {_FIX}"
        )
    path = manifest.directory / CALIBRATION_FILE
    doc = parse_json(manifest.read(calibration_entry), path, fix=_FIX)
    try:
        if not isinstance(doc, dict):
            raise ValueError("must be a JSON object")
        calibration = Calibration.from_json(doc)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}; {_FIX}") from exc
    path = manifest.directory / OOD_FILE
    content = manifest.read(ood_entry)
    try:
        reference = OodReference.from_bytes(content)
        reference.scorer()  # the C++ scorer checks that the shapes agree: here, not per frame
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: not a usable OOD reference ({exc}); {_FIX}") from exc
    return calibration, reference
