"""``edge calibrate``: what "normal" looks like for a model, measured on in-distribution data.

Writes into the model directory, and records in its manifest with the data's sha256:

- ``calibration.json``: the temperature (minimum NLL), the gate's signal bands and threshold,
  the confidence under which a frame goes to human review, and the drift monitor's reference
  (:class:`DriftReference`: the predicted-class mix and the expected REVIEW and REJECT rates);
- ``ood.npz``: the OOD reference (class means, whitened shared covariance, k-NN bank).

The data is split once, reproducibly: the OOD reference is fitted on one part and everything
measured on it (temperature, bands, thresholds) on the other, so k-NN distances are not
measured against the very points in the bank. Data with ``groups`` is split by group.

Without labels (a model with more classes than anyone can label offline) the temperature and
the review threshold are not fitted: both need to know which answers are right, and fitting
them on the model's own answers would only confirm them. The temperature stays 1, nothing is
sent to review on confidence, and the file says so. The gate decides on the frame statistics
and the k-NN distance (:data:`edge.judge.gate.UNLABELLED_SIGNALS`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge._native import _core
from edge.errors import DataError
from edge.judge.calibration import (
    CALIBRATION_FILE,
    OOD_FILE,
    REFERENCE_SHARE,
    Calibration,
    DriftReference,
)
from edge.judge.gate import DEFAULT_SIGNALS, UNLABELLED_SIGNALS, Gate
from edge.judge.ood import OodReference
from edge.model.manifest import MANIFEST_NAME, Manifest
from edge.model.model import Model
from edge.model.preprocess import Preprocessor
from edge.offline import measures
from edge.offline.data import Dataset

Signals = dict[str, npt.NDArray[np.float64]]
Progress = Callable[[Iterable[Any]], Iterable[Any]]


@dataclass(frozen=True)
class ModelOutputs:
    logits: npt.NDArray[np.float32]  # (n, classes)
    embeddings: npt.NDArray[np.float32]  # (n, dim)
    stats: Signals  # frame statistics of the model's view of each image


def stats_preprocessor(model: Model, src: str) -> Preprocessor:
    """The model's view of a frame as 8-bit grey: what the frame statistics are measured on,
    so that a camera frame and a calibration image are judged at the same scale."""
    spec = model.input
    return Preprocessor(size=spec.size, src=src, dst="gray", resize=spec.resize, fit=spec.fit)  # type: ignore[arg-type]


def run_model(model: Model, data: Dataset, progress: Progress = iter) -> ModelOutputs:
    """The model's logits, embeddings and frame statistics for every image of ``data``."""
    src = data.src
    view = stats_preprocessor(model, src)
    grey = np.empty((len(data), model.input.height, model.input.width), np.uint8)
    logits, embeddings = [], []
    for i in progress(range(len(data))):
        image = data.images[i]
        p = model.predict(image, src=src)  # type: ignore[arg-type]
        logits.append(p.logits)
        embeddings.append(p.embedding)
        view(image, out=grey[i].reshape(view.shape))
    stats = _core.frame_stats_batch(grey, src="gray")
    return ModelOutputs(
        np.stack(logits),
        np.stack(embeddings),
        {k: np.asarray(v, np.float64) for k, v in stats.items() if k != "dhash"},
    )


def signals(outputs: ModelOutputs, temperature: float, reference: OodReference) -> Signals:
    """Every gate signal for each image: frame statistics, logit and embedding scores."""
    logit = _core.logit_scores_batch(outputs.logits, temperature)
    embedding = reference.scorer().score_batch(outputs.embeddings)
    out: Signals = dict(outputs.stats)
    for name in ("msp", "energy", "entropy"):
        out[name] = np.asarray(logit[name], np.float64)
    out["top"] = np.asarray(logit["top"], np.float64)
    for name in ("mahalanobis", "knn"):
        out[name] = np.asarray(embedding[name], np.float64)
    return out


def review_threshold(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], target_accuracy: float
) -> float:
    """The lowest confidence threshold whose accepted frames reach ``target_accuracy``."""
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(running >= target_accuracy)[0]
    if len(ok) == 0:
        return 1.0  # nothing is that accurate: everything goes to review
    return float(confidence[order][ok[-1]])


def split(
    n: int, seed: int, groups: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Indices of the part the OOD reference is fitted on and of the part it is measured on;
    with ``groups``, whole groups go to one part."""
    if groups is None:
        order = np.random.default_rng(seed).permutation(n)
        cut = round(n * REFERENCE_SHARE)
        return np.sort(order[:cut]), np.sort(order[cut:])
    names = np.unique(groups)
    order = np.random.default_rng(seed).permutation(names)
    fitted = np.isin(groups, order[: round(len(names) * REFERENCE_SHARE)])
    return np.nonzero(fitted)[0], np.nonzero(~fitted)[0]


def calibrate(
    model: Model,
    data: Dataset,
    *,
    target_tpr: float = 0.95,
    target_accuracy: float = 0.97,
    seed: int = 0,
    progress: Progress = iter,
) -> tuple[Calibration, OodReference]:
    """Fits OOD reference, gate and, on labelled ``data``, temperature and review threshold."""
    if len(data) < 50:
        raise DataError(f"{data.path}: {len(data)} images are too few to calibrate on (>= 50)")
    if data.groups is not None and len(np.unique(data.groups)) < 3:
        raise DataError(f"{data.path}: calibration needs 3 or more groups to split by group")
    classes = len(model.labels)
    out = run_model(model, data, progress)
    fit_part, measure_part = split(len(data), seed, data.groups)
    labels = data.labels
    reference = OodReference.fit(
        out.embeddings[fit_part],
        None if labels is None else labels[fit_part],
        classes=classes,
        seed=seed,
    )
    measured = ModelOutputs(
        out.logits[measure_part],
        out.embeddings[measure_part],
        {k: v[measure_part] for k, v in out.stats.items()},
    )
    y = None if labels is None else labels[measure_part]
    temperature = 1.0 if y is None else measures.fit_temperature(measured.logits, y)
    s = signals(measured, temperature, reference)
    deciding = DEFAULT_SIGNALS if y is not None else UNLABELLED_SIGNALS
    gate = Gate.fit(s, target_tpr=target_tpr, signals=deciding)
    passed = gate.score(s) <= gate.threshold
    figures = {"images": float(len(data)), "gate_pass_rate": float(passed.mean())}
    if y is None:
        review, accepted = 0.0, passed
    else:
        correct = s["top"].astype(np.int64) == y
        review = review_threshold(s["msp"][passed], correct[passed], target_accuracy)
        accepted = passed & (s["msp"] >= review)
        figures |= {
            "accuracy": float(correct.mean()),
            "ece_raw": measures.expected_calibration_error(measures.softmax(measured.logits), y),
            "ece_calibrated": measures.expected_calibration_error(
                measures.softmax(measured.logits, temperature), y
            ),
            "selective_accuracy": (
                float(correct[accepted].mean()) if accepted.any() else float("nan")
            ),
        }
    figures["coverage"] = float(accepted.mean())
    # The drift monitor's reference. REVIEW and REJECT exactly as ``evaluate.decide`` has them
    # (rejected: the gate refuses; review: passed but under the review confidence).
    drift = DriftReference(
        frames=len(measure_part),
        class_counts=tuple(
            int(c) for c in np.bincount(np.argmax(out.logits, axis=1), minlength=classes)
        ),
        review=int((passed & ~accepted).sum()),
        reject=int((~passed).sum()),
    )
    calibration = Calibration(
        temperature, gate, review, data.sha256, figures, drift, labelled=y is not None
    )
    return calibration, reference


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the file private (0600); a model directory's files are shared ones.
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_calibration(
    model: Model, calibration: Calibration, reference: OodReference, data: Dataset
) -> None:
    """Writes both files and records them, and the data they came from, in the manifest."""
    directory = model.manifest.directory
    files = {
        CALIBRATION_FILE: (json.dumps(calibration.to_json(), indent=2) + "\n").encode(),
        OOD_FILE: reference.to_bytes(),
    }
    for name, content in files.items():
        _atomic_write(directory / name, content)
    with (directory / MANIFEST_NAME).open() as f:
        doc = json.load(f)
    for name, content in files.items():
        doc["files"][name] = {
            "sha256": hashlib.sha256(content).hexdigest(),
            "runtime": None,
            "role": "calibration",
        }
    doc["calibration"] = {
        "file": CALIBRATION_FILE,
        "ood_reference": OOD_FILE,
        "data": data.path.name,
        "data_sha256": data.sha256,
        "images": len(data),
        "labelled": data.labels is not None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic_write(directory / MANIFEST_NAME, (json.dumps(doc, indent=2) + "\n").encode())
    Manifest.load(directory).verify()
