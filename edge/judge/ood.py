"""The out-of-distribution reference: fitted once on calibration embeddings, scored per frame.

Two scores from the embedding, both "larger means further from the training data":

- ``mahalanobis``: squared Mahalanobis distance to the nearest class mean under one shared,
  shrunk covariance (Lee et al., NeurIPS 2018). The covariance is whitened here, once, so a
  frame costs one triangular product and a nearest-mean search in C++.
- ``knn``: Euclidean distance of the L2-normalised embedding to its k-th nearest neighbour in
  a subsampled bank of calibration embeddings (Sun et al., ICML 2022).

Large embeddings (EfficientNet-Lite0's 1280) are first projected on their leading principal
components, which keeps the per-frame cost a small fraction of inference. The projection, the
class means and the bank are stored by the scorer as int8 rows with a scale each (reading them
is what a frame costs); they are fitted on that grid, so the reference here and the scorer's
answers agree to float rounding.

Without labels there is one class-agnostic mean (see :meth:`OodReference.fit`).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from edge._native import _core

Floats = npt.NDArray[np.float32]

#: Default size of the space the scores are measured in (principal components kept).
DEFAULT_DIM = 256
DEFAULT_BANK_SIZE = 2048
DEFAULT_K = 1  # best on Fashion-MNIST vs MNIST with a bank of 2048 (k=1..50 tried)
#: The arrays of an ``.npz`` reference (``projection`` only when the embedding is projected).
_NDIM = {"center": 1, "projection": 2, "whitener": 2, "class_means": 2, "bank": 2, "k": 0}
_ARRAYS = tuple(_NDIM)


def on_int8_grid(rows: npt.ArrayLike) -> Floats:
    """Each row rounded to 255 levels spread over its largest magnitude, as the scorer
    stores it (``Int8Rows::quantize`` in ``cpp/core/scores.cpp``)."""
    x = np.asarray(rows, dtype=np.float32)
    scale = np.abs(x).max(axis=1, keepdims=True) / np.float32(127)
    scale[scale == 0] = 1
    grid: Floats = (np.round(x / scale) * scale).astype(np.float32)
    return grid


def ledoit_wolf_covariance(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Covariance of centred rows ``x`` shrunk towards a scaled identity (Ledoit & Wolf, 2004).

    The sample covariance of a few thousand embeddings in a few hundred dimensions is
    ill-conditioned; shrinkage makes it invertible and its inverse trustworthy.
    """
    n, d = x.shape
    sample = x.T @ x / n
    mu = float(np.trace(sample)) / d
    target = mu * np.eye(d)
    delta = float(((sample - target) ** 2).sum()) / d
    # Variance of the sample covariance's entries, estimated from the rows themselves.
    x2 = x**2
    beta = float((x2.T @ x2).sum() / n - (sample**2).sum()) / (d * n)
    shrinkage = 0.0 if delta == 0 else min(1.0, max(0.0, beta / delta))
    shrunk: npt.NDArray[np.float64] = shrinkage * target + (1.0 - shrinkage) * sample
    return shrunk


@dataclass(frozen=True)
class OodReference:
    """What "in distribution" looks like to the embedding scores (see module docs)."""

    center: Floats  # (dim_in,)
    projection: Floats | None  # (dim, dim_in), or None to score in the embedding space itself
    whitener: Floats  # (dim, dim) lower-triangular: z = whitener @ e
    class_means: Floats  # (classes, dim), whitened
    bank: Floats  # (bank_size, dim), unit rows
    k: int

    @classmethod
    def fit(
        cls,
        embeddings: npt.ArrayLike,
        labels: npt.ArrayLike | None,
        *,
        classes: int,
        dim: int = DEFAULT_DIM,
        bank_size: int = DEFAULT_BANK_SIZE,
        k: int = DEFAULT_K,
        seed: int = 0,
    ) -> OodReference:
        """Fits the reference on in-distribution embeddings ``(n, dim_in)`` and their labels.

        Without labels the Mahalanobis score has one class-agnostic mean and covariance: the
        model's own top classes are no substitute, as unlabelled data rarely shows every class
        and a pseudo-class made of a few photos' views only describes those photos.
        """
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"embeddings must be (n, dim) with n >= 2; got shape {x.shape}")
        y = np.zeros(len(x), np.int64) if labels is None else np.asarray(labels)
        if y.shape != (len(x),):
            raise ValueError(f"labels must have one entry per embedding; got shape {y.shape}")
        if labels is not None:
            missing = sorted(set(range(classes)) - {int(v) for v in np.unique(y)})
            if missing:
                raise ValueError(f"calibration data has no example of classes {missing}")
        center = x.mean(axis=0)
        x = x - center
        projection = None
        if dim < x.shape[1]:
            # Leading right singular vectors: the directions the data varies most along.
            _, _, vt = np.linalg.svd(x, full_matrices=False)
            projection = on_int8_grid(vt[:dim])
            x = x @ projection.T.astype(np.float64)
        means = np.stack([x[y == c].mean(axis=0) for c in range(int(y.max()) + 1)])
        covariance = ledoit_wolf_covariance(x - means[y])
        whitener = np.tril(np.linalg.inv(np.linalg.cholesky(covariance))).astype(np.float32)
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(x), size=min(bank_size, len(x)), replace=False)
        bank = x[np.sort(picked)]
        bank /= np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
        return cls(
            center=center.astype(np.float32),
            projection=projection,
            whitener=whitener,
            class_means=on_int8_grid(means @ whitener.T.astype(np.float64)),
            bank=on_int8_grid(bank),
            k=min(k, len(bank)),
        )

    def to_bytes(self) -> bytes:
        """The reference as an ``.npz`` file's bytes."""
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "center": self.center,
            "whitener": self.whitener,
            "class_means": self.class_means,
            "bank": self.bank,
            "k": np.array(self.k),
        }
        if self.projection is not None:
            arrays["projection"] = self.projection
        buffer = io.BytesIO()
        # Typed loosely: NumPy's stub would match a key named like its own keywords.
        np.savez(buffer, **cast(dict[str, Any], arrays))
        return buffer.getvalue()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> OodReference:
        """The reference saved at ``path`` (a file outside any model directory; a model's
        own is read through its manifest by :func:`~edge.judge.calibration.load_calibration`)."""
        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: not a readable OOD reference ({exc})") from exc
        try:
            return cls.from_bytes(content)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def from_bytes(cls, content: bytes) -> OodReference:
        """The reference in an ``.npz`` file's bytes (as :meth:`to_bytes` makes them).

        ValueError for one that is not an ``.npz`` of these arrays, or whose values could not
        score a frame (NaN or infinity, ``k`` not between 1 and the bank's size).
        """
        try:
            # allow_pickle=False (the default, said here on purpose): data, never code.
            with np.load(io.BytesIO(content), allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files if name in _ARRAYS}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a readable OOD reference ({exc})") from exc
        missing = sorted(set(_ARRAYS) - {"projection"} - set(arrays))
        if missing:
            raise ValueError(f"not an OOD reference: no array {', '.join(missing)}")
        for name, a in arrays.items():
            if a.ndim != _NDIM[name]:
                raise ValueError(f"{name} must have {_NDIM[name]} dimension(s); got {a.shape}")
            if a.dtype.kind not in "fiu" or not np.isfinite(a).all():
                raise ValueError(f"{name} must hold finite numbers")
        k = arrays["k"]
        bank = arrays["bank"]
        if k.dtype.kind not in "iu" or not 1 <= int(k) <= len(bank):
            raise ValueError(f"k must be an integer from 1 to the bank's {len(bank)} rows; got {k}")
        return cls(
            center=arrays["center"].astype(np.float32),
            projection=on_int8_grid(arrays["projection"]) if "projection" in arrays else None,
            whitener=arrays["whitener"].astype(np.float32),
            class_means=on_int8_grid(arrays["class_means"]),
            bank=on_int8_grid(bank),
            k=int(k),
        )

    def scorer(self) -> _core.OodScorer:
        """The per-frame scorer (C++, thread-safe, releases the GIL)."""
        return _core.OodScorer(
            center=self.center,
            projection=self.projection,
            whitener=self.whitener,
            class_means=self.class_means,
            bank=self.bank,
            k=self.k,
        )
