"""Shared fixtures of the test suite: Hypothesis profiles, real photos, frame encoders."""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# For the whole suite. The kernel tests push whole frames through OpenCV references, so an
# example costs milliseconds: a deadline would only measure machine noise. "dev" keeps
# Hypothesis's 100 examples (the preprocess tests take ~10 s on 2 cores); "ci" replays a fixed
# sequence so that a red CI run can be reproduced; "thorough" is for hunting bugs
# (HYPOTHESIS_PROFILE=thorough).
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Real photos from scikit-image's wheel (no download). Smooth content is the common case of a
# camera; random noise, the worst case for resampling parity, is made by the tests themselves.
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket")

FrameEncoder = Callable[[np.ndarray, str], np.ndarray]


class Photos(dict[str, np.ndarray]):
    """Photos by name; the repr names them, so a failing example does not print megapixels."""

    def __repr__(self) -> str:
        return f"Photos({', '.join(self)})"


@pytest.fixture(scope="session")
def photos() -> Photos:
    """The photos of PHOTO_NAMES as BGR uint8 arrays, as a camera driver hands them over."""
    skimage_data = pytest.importorskip(
        "skimage.data", reason="real-photo tests need scikit-image (pip install scikit-image)"
    )
    return Photos(
        {
            name: cv2.cvtColor(getattr(skimage_data, name)(), cv2.COLOR_RGB2BGR)
            for name in PHOTO_NAMES
        }
    )


def _i420_planes(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = bgr.shape[:2]
    flat = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).ravel()
    chroma = (h // 2, w // 2)
    u_start, v_start = h * w, h * w + chroma[0] * chroma[1]
    return (
        flat[:u_start].reshape(h, w),
        flat[u_start:v_start].reshape(chroma),
        flat[v_start:].reshape(chroma),
    )


def encode_frame(bgr: np.ndarray, src: str) -> np.ndarray:
    """`bgr` (H×W×3 uint8; H, W even for the YUV formats) in the memory layout of `src`.

    The alpha of bgra/rgba is a pattern unrelated to the colour, so a kernel that leaks
    alpha into its output cannot pass a parity test by luck.
    """
    if src == "bgr":
        return np.ascontiguousarray(bgr)
    if src == "rgb":
        return np.ascontiguousarray(bgr[..., ::-1])
    if src in ("bgra", "rgba"):
        alpha = (bgr[..., 1] ^ 0x5A)[..., None]
        colour = bgr if src == "bgra" else bgr[..., ::-1]
        return np.ascontiguousarray(np.concatenate([colour, alpha], axis=2))
    if src == "gray":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if src == "i420":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    if src == "nv12":
        luma, u, v = _i420_planes(bgr)
        interleaved_uv = np.stack([u, v], axis=2).reshape(u.shape[0], -1)
        return np.ascontiguousarray(np.vstack([luma, interleaved_uv]))
    if src == "yuyv":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2)
    raise ValueError(f"no encoder for src={src!r}")


@pytest.fixture(scope="session")
def encode() -> FrameEncoder:
    """encode_frame, for tests (session scope, so Hypothesis tests may use it)."""
    return encode_frame
