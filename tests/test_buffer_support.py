"""Shared by the buffer tests (no tests here): flagged frames cut from real photos, and a
buffer configuration without the limits a test is not about."""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

from edge import _core
from edge.buffer import BufferConfig, RateLimit
from edge.records import Flagged

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
T0 = 1_700_000_000.0  # capture times: a fixed epoch, so runs are reproducible


@functools.cache
def photo(name: str) -> np.ndarray:
    import skimage.data

    rgb = getattr(skimage.data, name)()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def frame_image(i: int, size: tuple[int, int] = (160, 120), photo_name: str | None = None) -> Any:
    """A distinct camera frame: a crop of a real photo that moves with `i`, stamped with `i`
    (so no two frames have the same bytes)."""
    src = photo(photo_name or PHOTOS[i % len(PHOTOS)])
    h, w = src.shape[:2]
    cw, ch = w * 3 // 4, h * 3 // 4
    x = (i * 37) % (w - cw)
    y = (i * 23) % (h - ch)
    img = cv2.resize(src[y : y + ch, x : x + cw], size, interpolation=cv2.INTER_AREA)
    cv2.putText(img, str(i), (4, size[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255))
    return img


def dhash_of(img: np.ndarray) -> int:
    return int(_core.frame_stats(img, src="gray" if img.ndim == 2 else "bgr").dhash)


def flagged(
    i: int,
    *,
    image: np.ndarray | None = None,
    decision: str = "REVIEW",
    reason: str = "confidence",
    label: str = "shirt",
    confidence: float = 0.5,
    t: float | None = None,
    clock: float | None = None,
    drift: str = "ok",
    dhash: int | None = None,
    size: tuple[int, int] = (160, 120),
) -> Flagged:
    img = frame_image(i, size) if image is None else image
    return Flagged(
        image=img,
        frame=i,
        captured_at=T0 + i if t is None else t,
        # Unless a test sets it apart, the monotonic clock runs with the wall clock.
        monotonic=(T0 + i if t is None else t) if clock is None else clock,
        decision=decision,  # type: ignore[arg-type]
        reason=reason,
        label=label,
        confidence=confidence,
        top_k=[(label, confidence), ("other", (1 - confidence) / 2)],
        scores={"mahalanobis": 12.5, "knn": 0.8, "default": 3.25},
        stats={"brightness": 0.45, "contrast": 0.2, "sharpness": 310.0},
        dhash=dhash_of(img) if dhash is None else dhash,
        model="fashion-line",
        model_version="1.0.0",
        model_sha256="ab" * 32,
        drift=drift,  # type: ignore[arg-type]
        extra={"source": "test"},
    )


def open_config(**overrides: Any) -> BufferConfig:
    """No rate limits, no dedup, no free-space floor: only what a test sets."""
    base: dict[str, Any] = {
        "label_rate": RateLimit(),
        "reason_rate": RateLimit(),
        "dedup_window": 0.0,
        "min_free_bytes": 0,
    }
    base.update(overrides)
    return BufferConfig(**base)
