"""``edge eval``: how good the model and its gate are on in-distribution data, how well each
score separates out-of-distribution sets, and what camera faults do to both.

Without labels in the in-distribution set, what needs them (accuracy, ECE, selective accuracy,
the reliability and risk-coverage pictures) is left out and listed under ``skipped``; the gate's
decisions and the OOD figures do not need them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.judge.calibration import Calibration
from edge.judge.gate import STATISTICS
from edge.judge.ood import OodReference
from edge.model import Model
from edge.offline import measures
from edge.offline.calibrate import ModelOutputs, Progress, Signals, run_model, signals
from edge.offline.data import Dataset

#: Scores compared side by side; each is oriented so that higher means "more OOD".
METHODS: dict[str, Callable[[Signals], npt.NDArray[np.float64]]] = {
    "msp": lambda s: -s["msp"],
    "energy": lambda s: s["energy"],
    "mahalanobis": lambda s: s["mahalanobis"],
    "knn": lambda s: s["knn"],
}

Images = npt.NDArray[np.uint8]


def _blur(x: Images, level: float) -> Images:
    sigma = level * max(x.shape[1:3]) / 28
    return np.stack([np.asarray(cv2.GaussianBlur(i, (0, 0), sigma), np.uint8) for i in x])


def _noise(x: Images, level: float) -> Images:
    rng = np.random.default_rng(0)
    return np.clip(x + rng.normal(0, level, x.shape), 0, 255).astype(np.uint8)


def _jpeg(x: Images, quality: float) -> Images:
    def once(i: Images) -> Images:
        _, buf = cv2.imencode(".jpg", i, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return np.asarray(decoded, np.uint8)

    return np.stack([once(i) for i in x])


def _occlude(x: Images, share: float) -> Images:
    rng = np.random.default_rng(0)
    out = x.copy()
    h, w = x.shape[1:3]
    side_h, side_w = round(h * np.sqrt(share)), round(w * np.sqrt(share))
    for i in range(len(out)):
        top, left = rng.integers(0, h - side_h + 1), rng.integers(0, w - side_w + 1)
        out[i, top : top + side_h, left : left + side_w] = 0
    return out


def _scale(x: Images, f: float, toward: float) -> Images:
    scaled = toward + (x.astype(np.float32) - toward) * f
    return np.asarray(np.clip(scaled, 0, 255), np.uint8)


#: Camera faults at three severities: (name, function, levels).
CORRUPTIONS: dict[str, tuple[Callable[[Images, float], Images], tuple[float, ...]]] = {
    "dark": (lambda x, f: _scale(x, f, 0.0), (0.5, 0.25, 0.1)),
    "bright": (lambda x, f: _scale(x, f, 255.0), (0.5, 0.25, 0.1)),
    "low_contrast": (lambda x, f: _scale(x, f, float(x.mean())), (0.5, 0.25, 0.1)),
    "blur": (_blur, (0.7, 1.2, 2.0)),
    "noise": (_noise, (10.0, 25.0, 50.0)),
    "jpeg": (_jpeg, (30.0, 15.0, 5.0)),
    "occlusion": (_occlude, (0.2, 0.35, 0.5)),
    "blank": (lambda x, v: np.full_like(x, int(v)), (0.0, 128.0, 255.0)),
}


@dataclass
class Decisions:
    rejected: npt.NDArray[np.bool_]
    review: npt.NDArray[np.bool_]

    @property
    def accepted(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = ~(self.rejected | self.review)
        return out


def decide(s: Signals, calibration: Calibration) -> Decisions:
    """What ``edge run`` decides for each frame: REJECT (gate), REVIEW (low confidence)."""
    rejected = calibration.gate.score(s) > calibration.gate.threshold
    review = ~rejected & (s["msp"] < calibration.review_confidence)
    return Decisions(rejected, review)


@dataclass
class Evaluation:
    """Figures for the JSON output, plus the curves the HTML report draws."""

    figures: dict[str, Any]
    curves: dict[str, Any] = field(default_factory=dict)


def evaluate(
    model: Model,
    calibration: Calibration,
    reference: OodReference,
    in_distribution: Dataset,
    ood_sets: Mapping[str, Dataset],
    *,
    corrupt: bool = False,
    progress: Progress = iter,
) -> Evaluation:
    y = in_distribution.labels
    t = calibration.temperature

    def outputs(data: Dataset) -> tuple[ModelOutputs, Signals]:
        out = run_model(model, data, progress)
        return out, signals(out, t, reference)

    id_out, id_s = outputs(in_distribution)
    d = decide(id_s, calibration)
    figures: dict[str, Any] = {
        "model": model.name,
        "backend": model.backend,
        "model_sha256": model.sha256,
        "images": len(in_distribution),
        "labelled": y is not None,
        "temperature": t,
        "temperature_fitted": calibration.labelled,
        "selective": {
            "coverage": float(d.accepted.mean()),
            "accept_rate": float(d.accepted.mean()),
            "review_rate": float(d.review.mean()),
            "reject_rate": float(d.rejected.mean()),
        },
        "ood": {},
    }
    curves: dict[str, Any] = {
        "scores": {"id": {"default": calibration.gate.score(id_s)}},
        "roc": {},
    }
    if y is None:
        figures["skipped"] = {
            "figures": ["accuracy", "ece_raw", "ece_calibrated", "selective.accuracy"],
            "reason": "no labels in the in-distribution data",
        }
    else:
        correct = id_s["top"].astype(np.int64) == y
        raw, calibrated = measures.softmax(id_out.logits), measures.softmax(id_out.logits, t)
        figures["accuracy"] = float(correct.mean())
        figures["ece_raw"] = measures.expected_calibration_error(raw, y)
        figures["ece_calibrated"] = measures.expected_calibration_error(calibrated, y)
        accepted = d.accepted
        figures["selective"]["accuracy"] = (
            float(correct[accepted].mean()) if accepted.any() else None
        )
        order = np.argsort(-id_s["msp"], kind="stable")
        risk = 1 - np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
        curves["reliability_raw"] = measures.reliability(raw, y)
        curves["reliability_calibrated"] = measures.reliability(calibrated, y)
        curves["risk_coverage"] = (np.arange(1, len(order) + 1) / len(order), risk)
    id_scores = {m: f(id_s) for m, f in METHODS.items()}
    id_scores["default"] = calibration.gate.score(id_s)
    for name, data in ood_sets.items():
        _, s = outputs(data)
        ood_scores = {m: f(s) for m, f in METHODS.items()}
        ood_scores["default"] = calibration.gate.score(s)
        figures["ood"][name] = {
            m: {
                "auroc": measures.auroc(id_scores[m], ood_scores[m]),
                "fpr95": measures.fpr_at_tpr(id_scores[m], ood_scores[m]),
            }
            for m in ood_scores
        }
        figures["ood"][name]["default"]["rejected"] = float(decide(s, calibration).rejected.mean())
        curves["scores"][name] = {"default": ood_scores["default"]}
        curves["roc"][name] = {
            m: measures.roc_curve(id_scores[m], ood_scores[m]) for m in ood_scores
        }
    if corrupt:
        figures["corruptions"] = _corruptions(in_distribution, outputs, calibration)
    return Evaluation(figures, curves)


def _corruptions(
    data: Dataset,
    outputs: Callable[[Dataset], tuple[ModelOutputs, Signals]],
    calibration: Calibration,
) -> dict[str, list[dict[str, Any]]]:
    # A fixed subset keeps --corrupt to seconds; 24 corrupted copies of the whole set would not.
    pick = np.random.default_rng(0).permutation(len(data))[:1000]
    images, y = data.images[pick], None if data.labels is None else data.labels[pick]
    result: dict[str, list[dict[str, Any]]] = {}
    for name, (corrupt, levels) in CORRUPTIONS.items():
        rows = []
        for severity, level in enumerate(levels, start=1):
            _, s = outputs(Dataset(data.path, corrupt(images, level), y, data.sha256))
            d = decide(s, calibration)
            # Which statistics the fault moved: rarer than 1 in 200 in-distribution frames.
            surprise = calibration.gate.surprise(s)
            moved = {k: float((surprise[k] > -np.log(0.005)).mean()) for k in STATISTICS}
            rows.append(
                {
                    "severity": severity,
                    "level": level,
                    "accuracy": (
                        None if y is None else float((s["top"].astype(np.int64) == y).mean())
                    ),
                    "rejected": float(d.rejected.mean()),
                    "flagged": float((d.rejected | d.review).mean()),
                    "statistics_moved": moved,
                }
            )
        result[name] = rows
    return result
