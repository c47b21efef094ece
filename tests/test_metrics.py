"""The evaluation figures against scikit-learn, and temperature scaling on real behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from edge.offline import measures


@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_roc_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Rounded scores make ties, the case a hand-written ROC usually gets wrong.
    id_scores = np.round(rng.normal(0, 1, 500), 1)
    ood_scores = np.round(rng.normal(1, 1, 300), 1)
    y = np.r_[np.zeros(500), np.ones(300)]
    s = np.r_[id_scores, ood_scores]
    assert measures.auroc(id_scores, ood_scores) == pytest.approx(roc_auc_score(y, s))
    fpr, tpr = measures.roc_curve(id_scores, ood_scores)
    want_fpr, want_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)


def test_fpr95_counts_ood_accepted_at_95_percent_of_id_accepted() -> None:
    id_scores = np.arange(100.0)  # the threshold accepting 95% of these is 94.05
    ood_scores = np.array([10.0, 50.0, 94.0, 94.1, 200.0])
    assert measures.fpr_at_tpr(id_scores, ood_scores) == pytest.approx(3 / 5)
    assert measures.auroc(np.zeros(10), np.ones(10)) == 1.0
    assert measures.fpr_at_tpr(np.zeros(10), np.ones(10)) == 0.0


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident() -> None:
    rng = np.random.default_rng(0)
    n, classes = 20000, 4
    labels = rng.integers(0, classes, n)
    confidence = rng.uniform(0.3, 1.0, n)
    correct = rng.uniform(size=n) < confidence
    predicted = np.where(correct, labels, (labels + 1) % classes)
    probs = np.full((n, classes), 0.0)
    probs[np.arange(n), predicted] = confidence
    rest = (1 - confidence) / (classes - 1)
    for c in range(classes):
        probs[:, c] = np.where(probs[:, c] == 0, rest, probs[:, c])
    assert measures.expected_calibration_error(probs, labels) < 0.02
    sharpened = measures.softmax(np.log(probs) * 4)
    assert measures.expected_calibration_error(sharpened, labels) > 0.1


def test_fit_temperature_recovers_the_temperature_that_made_logits_overconfident() -> None:
    rng = np.random.default_rng(1)
    n, classes = 5000, 10
    true_logits = rng.normal(0, 2, (n, classes))
    labels = np.array([rng.choice(classes, p=p) for p in measures.softmax(true_logits)])
    overconfident = true_logits * 3.0
    t = measures.fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert measures.nll(overconfident, labels, t) < measures.nll(overconfident, labels, 1.0)
