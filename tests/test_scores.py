"""The gate's kernels against NumPy and OpenCV references, and their bad-input errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import _core
from edge.judge.ood import OodReference
from edge.offline.measures import softmax


@pytest.fixture
def photo_bgr(photos: dict[str, np.ndarray]) -> np.ndarray:
    return photos["astronaut"]


def luma(image: np.ndarray, src: str) -> np.ndarray:
    if src == "gray":
        return image.astype(np.float64)
    code = {"bgr": cv2.COLOR_BGR2GRAY, "rgb": cv2.COLOR_RGB2GRAY}[src]
    return cv2.cvtColor(image, code).astype(np.float64)


def reference_dhash(gray: np.ndarray) -> int:
    """Box means over the 9x8 grid that splits rows and columns as the kernel does."""
    h, w = gray.shape
    rows = np.arange(h) * 8 // h
    cols = np.arange(w) * 9 // w
    cells = np.zeros((8, 9))
    for r in range(8):
        for c in range(9):
            block = gray[rows == r][:, cols == c]
            cells[r, c] = block.mean() if block.size else 0.0
    bits = cells[:, :-1] > cells[:, 1:]
    return int(sum(1 << i for i, b in enumerate(bits.ravel()) if b))


@pytest.mark.parametrize("src", ["bgr", "rgb", "gray"])
def test_frame_stats_match_opencv_on_a_real_photo(photo_bgr: np.ndarray, src: str) -> None:
    image = {
        "bgr": photo_bgr,
        "rgb": cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2RGB),
        "gray": cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2GRAY),
    }[src]
    s = _core.frame_stats(image, src=src)
    g = luma(image, src)
    laplacian = cv2.Laplacian(g, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
    assert s.brightness == pytest.approx(g.mean(), abs=0.01)
    assert s.contrast == pytest.approx(g.std(), abs=0.01)
    assert s.sharpness == pytest.approx(laplacian.var(), rel=1e-4)
    assert s.dark == pytest.approx((g <= 16).mean())
    assert s.bright == pytest.approx((g >= 239).mean())
    assert s.dhash == reference_dhash(g)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_frame_stats_match_numpy_on_random_grey_images(h: int, w: int, seed: int) -> None:
    g = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    s = _core.frame_stats(g, src="gray", dark_level=30, bright_level=200)
    assert s.brightness == pytest.approx(g.mean(), abs=1e-3)
    assert s.contrast == pytest.approx(g.std(), abs=1e-3)
    assert s.dark == pytest.approx((g <= 30).mean())
    assert s.bright == pytest.approx((g >= 200).mean())
    if h >= 3 and w >= 3:
        lap = cv2.Laplacian(g.astype(np.float64), cv2.CV_64F, ksize=1)[1:-1, 1:-1]
        assert s.sharpness == pytest.approx(lap.var(), rel=1e-4, abs=1e-3)
    assert s.dhash == reference_dhash(g.astype(np.float64))


def test_blur_lowers_sharpness_and_darkness_raises_dark_share(photo_bgr: np.ndarray) -> None:
    sharp = _core.frame_stats(photo_bgr)
    blurred = _core.frame_stats(cv2.GaussianBlur(photo_bgr, (0, 0), 3))
    dimmed = _core.frame_stats((photo_bgr // 8).astype(np.uint8))
    assert blurred.sharpness < sharp.sharpness / 5
    assert dimmed.dark > 0.5 > sharp.dark
    assert _core.hamming(sharp.dhash, blurred.dhash) < 8


def test_frame_stats_batch_equals_single_frames(photo_bgr: np.ndarray) -> None:
    frames = np.stack([photo_bgr, photo_bgr[::-1].copy(), photo_bgr // 2])
    batch = _core.frame_stats_batch(frames)
    for i, frame in enumerate(frames):
        single = _core.frame_stats(frame)
        assert batch["brightness"][i] == single.brightness
        assert batch["sharpness"][i] == single.sharpness
        assert batch["dhash"][i] == single.dhash


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 1200),
    temperature=st.floats(0.05, 20),
    spread=st.floats(0.01, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_logit_scores_match_numpy(n: int, temperature: float, spread: float, seed: int) -> None:
    logits = (np.random.default_rng(seed).normal(size=n) * spread).astype(np.float32)
    scores, probs = _core.logit_scores(logits, temperature)
    p = softmax(logits, temperature)
    z = logits.astype(np.float64) / temperature
    energy = -temperature * (z.max() + np.log(np.exp(z - z.max()).sum()))
    entropy = -(p * np.log(np.maximum(p, 1e-300))).sum()
    assert scores.top == int(np.argmax(logits))
    assert scores.msp == pytest.approx(p.max(), rel=1e-5)
    assert scores.energy == pytest.approx(energy, rel=1e-5, abs=1e-4)
    assert scores.entropy == pytest.approx(entropy, rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(probs, p, rtol=1e-5, atol=1e-7)
    batch = _core.logit_scores_batch(logits[None], temperature)
    assert batch["msp"][0] == scores.msp
    assert batch["top"][0] == scores.top


def numpy_embedding_scores(ref: OodReference, x: np.ndarray) -> tuple[float, int, float]:
    e = x.astype(np.float64) - ref.center
    if ref.projection is not None:
        e = ref.projection.astype(np.float64) @ e
    z = ref.whitener.astype(np.float64) @ e
    d = ((z[None] - ref.class_means) ** 2).sum(axis=1)
    q = e / np.linalg.norm(e)
    sims = np.sort(ref.bank.astype(np.float64) @ q)[::-1]
    return float(d.min()), int(d.argmin()), float(np.sqrt(max(0.0, 2 - 2 * sims[ref.k - 1])))


@pytest.mark.parametrize(("dim_in", "dim"), [(64, 64), (300, 48)])
def test_embedding_scores_match_numpy(dim_in: int, dim: int) -> None:
    rng = np.random.default_rng(dim_in)
    classes = 7
    centres = rng.normal(0, 3, size=(classes, dim_in))
    labels = rng.integers(0, classes, 700)
    x = centres[labels] + rng.normal(size=(700, dim_in))
    ref = OodReference.fit(x, labels, classes=classes, dim=dim, bank_size=300, k=5)
    scorer = ref.scorer()
    probes = np.concatenate([x[:20], rng.normal(0, 6, size=(20, dim_in))]).astype(np.float32)
    batch = scorer.score_batch(probes)
    for i, probe in enumerate(probes):
        maha, nearest, knn = scorer.score(probe)
        want = numpy_embedding_scores(ref, probe)
        assert maha == pytest.approx(want[0], rel=1e-3, abs=1e-3)
        assert nearest == want[1]
        assert knn == pytest.approx(want[2], rel=1e-3, abs=1e-4)
        assert batch["mahalanobis"][i] == maha
    # Far-away probes score higher than the calibration points themselves.
    assert batch["mahalanobis"][20:].min() > np.median(batch["mahalanobis"][:20])
    assert batch["knn"][20:].min() > np.median(batch["knn"][:20])


def test_ood_reference_survives_save_and_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 40))
    ref = OodReference.fit(x, rng.integers(0, 3, 200), classes=3, dim=16, bank_size=50, k=3)
    ref.save(tmp_path / "ood.npz")
    loaded = OodReference.load(tmp_path / "ood.npz")
    probe = rng.normal(size=40).astype(np.float32)
    assert loaded.scorer().score(probe) == ref.scorer().score(probe)


def valid_reference(dim: int = 4) -> dict[str, object]:
    eye = np.eye(dim, dtype=np.float32)
    return {
        "center": np.zeros(dim, np.float32),
        "projection": None,
        "whitener": eye,
        "class_means": eye,
        "bank": eye,
        "k": 1,
    }


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"bank": np.zeros((0, 4), np.float32)}, ValueError, "bank"),
        ({"k": 5}, ValueError, "k must be"),
        ({"whitener": np.eye(3, dtype=np.float32)}, ValueError, "whitener|dim"),
        ({"class_means": np.ones((2, 3), np.float32)}, ValueError, "class_means"),
        ({"center": np.full(4, np.nan, np.float32)}, ValueError, "center contains NaN"),
        ({"projection": np.ones((4, 5), np.float32)}, ValueError, "projection"),
    ],
)
def test_bad_reference_is_a_clear_error(
    change: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        _core.OodScorer(**(valid_reference() | change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (np.array([1.0, np.nan, 2.0], np.float32), ValueError, "logits contains NaN"),
        (np.array([1.0, np.inf], np.float32), ValueError, "logits contains NaN"),
        (np.zeros((2, 3), np.float32), ValueError, "logits must have 1 dimension"),
        (np.zeros(0, np.float32), ValueError, "logits is empty"),
        (np.zeros(3, np.float64), TypeError, "logits must have dtype float32"),
        ([1.0, 2.0], TypeError, "logits must be a numpy.ndarray"),
    ],
)
def test_bad_logits_are_a_clear_error(value: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _core.logit_scores(value)  # type: ignore[arg-type]


def test_bad_temperature_embedding_and_image_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="temperature"):
        _core.logit_scores(np.zeros(3, np.float32), 0.0)
    scorer = _core.OodScorer(**valid_reference())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedding must have 4 values"):
        scorer.score(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="embedding contains NaN"):
        scorer.score(np.array([0, 0, np.nan, 0], np.float32))
    with pytest.raises(TypeError, match="image must have dtype uint8"):
        _core.frame_stats(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="must be \\(height, width, 3\\)"):
        _core.frame_stats(np.zeros((4, 4), np.uint8), src="bgr")
    with pytest.raises(ValueError, match="src must be one of"):
        _core.frame_stats(np.zeros((4, 4), np.uint8), src="nv12")
    with pytest.raises(ValueError, match="image is empty"):
        _core.frame_stats(np.zeros((0, 4), np.uint8), src="gray")
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.frame_stats(np.zeros((4, 8, 3), np.uint8)[:, ::2], src="bgr")
