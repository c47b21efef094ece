"""Data files for calibration and evaluation: ``.npz`` with ``images`` and optional ``labels``
and ``groups``.

``images`` is uint8, N×H×W (grey) or N×H×W×C; ``labels`` is integer, N. ``groups`` is integer,
N: images of one group come from one source (views of one photo, frames of one clip), and a
calibration that splits the data keeps each group on one side, so near-copies of a measured
image are never in the reference it is measured against. Everything a user can get wrong about
such a file is one :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import DataError


@dataclass(frozen=True)
class Dataset:
    path: Path
    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64] | None
    sha256: str
    groups: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def src(self) -> str:
        """The pixel format of the images for the preprocessor (colour files are BGR)."""
        return "gray" if self.images.ndim == 3 else {3: "bgr", 4: "bgra"}[self.images.shape[3]]


def load_dataset(path: str | Path, *, classes: int | None = None) -> Dataset:
    """Reads and checks a data file; ``classes`` bounds the labels when given."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    digest = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p}: not a readable .npz file ({exc})") from exc
    if "images" not in arrays:
        raise DataError(f"{p}: has no 'images' array (keys: {sorted(arrays)})")
    images, labels, groups = arrays["images"], arrays.get("labels"), arrays.get("groups")
    if images.dtype != np.uint8:
        raise DataError(f"{p}: images must be uint8; got {images.dtype}")
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] in (1, 3, 4))):
        raise DataError(
            f"{p}: images must be N×H×W (grey) or N×H×W×C with C in 1, 3, 4; "
            f"got shape {images.shape}"
        )
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{p}: images is empty (shape {images.shape})")
    if labels is not None:
        labels = _one_integer_per_image(p, "labels", labels, len(images))
        if classes is not None and (labels.min() < 0 or labels.max() >= classes):
            bad = labels[(labels < 0) | (labels >= classes)][0]
            raise DataError(f"{p}: label {bad} is out of range for a model of {classes} classes")
    if groups is not None:
        groups = _one_integer_per_image(p, "groups", groups, len(images))
    return Dataset(p, np.ascontiguousarray(images), labels, digest.hexdigest(), groups)


def _one_integer_per_image(
    path: Path, name: str, values: npt.NDArray[Any], n: int
) -> npt.NDArray[np.int64]:
    if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
        raise DataError(
            f"{path}: {name} must be {n} integers, one per image; "
            f"got {values.dtype} of shape {values.shape}"
        )
    return values.astype(np.int64)
