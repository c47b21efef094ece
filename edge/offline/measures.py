"""Figures of a classifier and its out-of-distribution scores, in NumPy.

Small enough to keep scikit-learn off the device; the tests check them against it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike


def softmax(logits: ArrayLike, temperature: float = 1.0) -> npt.NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    p: npt.NDArray[np.float64] = e / e.sum(axis=-1, keepdims=True)
    return p


def nll(logits: ArrayLike, labels: ArrayLike, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels)
    m = z.max(axis=1)
    log_z = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float((log_z - z[np.arange(len(y)), y]).mean())


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The temperature minimising the NLL on labelled data (Guo et al., ICML 2017).

    The NLL is convex in 1/T, so a golden-section search over log T finds it.
    """
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def reliability(
    probs: ArrayLike, labels: ArrayLike, bins: int = 15
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Per confidence bin: mean confidence, accuracy and count (equal-width bins)."""
    p = np.asarray(probs, dtype=np.float64)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    safe = np.maximum(counts, 1)
    conf = np.bincount(index, weights=confidence, minlength=bins) / safe
    acc = np.bincount(index, weights=correct, minlength=bins) / safe
    return conf, acc, counts


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over bins by their share."""
    conf, acc, counts = reliability(probs, labels, bins)
    return float((np.abs(conf - acc) * counts).sum() / counts.sum())


def roc_curve(
    id_scores: ArrayLike, ood_scores: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """False and true positive rates of "score above threshold means OOD", OOD positive."""
    s_id = np.asarray(id_scores, dtype=np.float64)
    s_ood = np.asarray(ood_scores, dtype=np.float64)
    scores = np.concatenate([s_ood, s_id])
    positive = np.concatenate([np.ones(len(s_ood)), np.zeros(len(s_id))])
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    # One point per distinct threshold, so ties do not draw staircases.
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tp = np.cumsum(positive)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / max(len(s_ood), 1)]
    fpr = np.r_[0.0, fp / max(len(s_id), 1)]
    return fpr, tpr


def auroc(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Area under the ROC curve: 1.0 separates perfectly, 0.5 is chance."""
    fpr, tpr = roc_curve(id_scores, ood_scores)
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1])).sum() / 2)


def fpr_at_tpr(id_scores: ArrayLike, ood_scores: ArrayLike, tpr_target: float = 0.95) -> float:
    """FPR95 as OpenOOD reports it: with the threshold that accepts ``tpr_target`` of the
    in-distribution inputs, the share of OOD inputs accepted too (lower is better)."""
    s_id = np.asarray(id_scores, dtype=np.float64)
    s_ood = np.asarray(ood_scores, dtype=np.float64)
    threshold = np.quantile(s_id, tpr_target)
    return float((s_ood <= threshold).mean())
