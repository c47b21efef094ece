"""Parity of edge.preprocess with OpenCV/NumPy reference pipelines.

The reference follows the documented pipeline literally: decode the frame to BGR with
cv2.cvtColor, crop the ROI, apply the fit, cv2.resize, convert the colour, normalise and
quantize with NumPy. It resizes a float32 copy of the frame, so it is the exact answer the
kernel approximates; one test also compares against OpenCV's own uint8 pipeline.

Every run checks the default variant of the hot loops everywhere and the baseline variant
(EDGE_ISA=baseline, in a subprocess) on a fixed sample of every option; for the whole file on
the baseline variant, run it with EDGE_ISA=baseline set.
"""

from __future__ import annotations

import ctypes
import json
import math
import mmap
import os
import platform
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import cycle, product
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import edge

FrameEncoder = Callable[[np.ndarray, str], np.ndarray]

SOURCES = ("bgr", "rgb", "bgra", "rgba", "gray", "nv12", "i420", "yuyv")
YUV_SOURCES = frozenset({"nv12", "i420", "yuyv"})
DSTS = ("rgb", "bgr", "gray")
LAYOUTS = ("nhwc", "nchw")
DTYPES = ("uint8", "int8", "float32")
RESIZES = ("area", "bilinear")
FITS = ("stretch", "crop", "letterbox")

CV_INTERPOLATION = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR}
YUV_TO_BGR = {
    "nv12": cv2.COLOR_YUV2BGR_NV12,
    "i420": cv2.COLOR_YUV2BGR_I420,
    "yuyv": cv2.COLOR_YUV2BGR_YUY2,
}
# Where blue, green and red sit in a packed frame of each colour source.
BGR_CHANNELS = {"bgr": [0, 1, 2], "bgra": [0, 1, 2], "rgb": [2, 1, 0], "rgba": [2, 1, 0]}
INTEGER_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}

# The kernel's vertical filter runs in 16-bit fixed point for up to 16 taps; each tap may
# lose 1/256 of a grey level to truncation and ~1/256 to its rounded-down weight, so
# 16 × 2/256 ≈ 0.125 levels at worst. The documented bound is 0.15 levels.
FLOAT_TOLERANCE_LEVELS = 0.15
# Integer outputs round the same value the float path computes. The strategies keep one
# quantization step (|std × scale|) at 0.2 grey levels or more, so the 0.15-level kernel error
# moves a value by less than one step: after rounding, by at most 1.
MIN_QUANTIZATION_STEP_LEVELS = 0.2
INTEGER_TOLERANCE = 1


# --------------------------------------------------------------------------- the reference


def c_lround(x: float) -> int:
    """C's lround: half away from zero (Python's round() rounds half to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def fit_geometry(
    roi_w: int, roi_h: int, out_w: int, out_h: int, fit: str
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(x, y, w, h) of the part of the ROI that is resized, and where it lands in the output."""
    source = (0, 0, roi_w, roi_h)
    target = (0, 0, out_w, out_h)
    if fit == "crop":
        if roi_w * out_h > roi_h * out_w:
            crop_w = min(max(c_lround(roi_h * out_w / out_h), 1), roi_w)
            source = ((roi_w - crop_w) // 2, 0, crop_w, roi_h)
        else:
            crop_h = min(max(c_lround(roi_w * out_h / out_w), 1), roi_h)
            source = (0, (roi_h - crop_h) // 2, roi_w, crop_h)
    elif fit == "letterbox":
        s = min(out_w / roi_w, out_h / roi_h)
        inner_w = min(max(c_lround(roi_w * s), 1), out_w)
        inner_h = min(max(c_lround(roi_h * s), 1), out_h)
        target = ((out_w - inner_w) // 2, (out_h - inner_h) // 2, inner_w, inner_h)
    return source, target


def frame_size(frame: np.ndarray, src: str) -> tuple[int, int]:
    """(width, height) of the picture a frame of `src` holds."""
    rows = frame.shape[0] * 2 // 3 if src in ("nv12", "i420") else frame.shape[0]
    return frame.shape[1], rows


def decode(frame: np.ndarray, src: str) -> np.ndarray:
    """The frame as H×W×3 BGR (H×W×1 for gray) uint8, the way OpenCV decodes it."""
    if src in YUV_SOURCES:
        return cv2.cvtColor(np.ascontiguousarray(frame), YUV_TO_BGR[src])
    if src == "gray":
        return frame.reshape(frame.shape[0], frame.shape[1], 1)
    return np.ascontiguousarray(frame[..., BGR_CHANNELS[src]])


def convert_colour(bgr: np.ndarray, dst: str) -> np.ndarray:
    """A resized BGR (or one-channel) image in the channel order of `dst`, H×W×C."""
    if bgr.shape[2] == 1:
        return bgr if dst == "gray" else np.repeat(bgr, 3, axis=2)
    if dst == "gray":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[..., None]
    return bgr[..., ::-1] if dst == "rgb" else bgr


@dataclass(frozen=True)
class Spec:
    """The keywords of one edge.preprocess call."""

    size: tuple[int, int]
    src: str = "bgr"
    dst: str = "rgb"
    layout: str = "nhwc"
    dtype: str = "uint8"
    resize: str = "area"
    fit: str = "stretch"
    roi: tuple[int, int, int, int] | None = None
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None
    scale: float | None = None
    zero_point: float | None = None
    pad_value: float = 0.0

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def channels(self) -> int:
        return 1 if self.dst == "gray" else 3


def reference_pixels(frame: np.ndarray, spec: Spec, pixel_dtype: type = np.float32) -> np.ndarray:
    """The output picture in pixel units, H×W×C, before normalisation.

    With pixel_dtype=np.float32 nothing is rounded on the way (the exact answer); with
    np.uint8 it is OpenCV's own uint8 pipeline, which rounds after the resize and again
    after a colour conversion.
    """
    image = decode(frame, spec.src).astype(pixel_dtype)
    width, height = frame_size(frame, spec.src)
    roi_x, roi_y, roi_w, roi_h = spec.roi or (0, 0, width, height)
    out_w, out_h = spec.size
    (sx, sy, sw, sh), (dx, dy, dw, dh) = fit_geometry(roi_w, roi_h, out_w, out_h, spec.fit)
    part = np.ascontiguousarray(image[roi_y + sy : roi_y + sy + sh, roi_x + sx : roi_x + sx + sw])
    resized = cv2.resize(part, (dw, dh), interpolation=CV_INTERPOLATION[spec.resize])
    resized = resized.reshape(dh, dw, image.shape[2])
    canvas = np.full((out_h, out_w, spec.channels), spec.pad_value, np.float64)
    canvas[dy : dy + dh, dx : dx + dw] = convert_colour(resized, spec.dst)
    return canvas


def per_channel(value: float | tuple[float, ...] | None, default: float) -> np.ndarray:
    return np.asarray(default if value is None else value, np.float64)


def to_layout(nhwc: np.ndarray, layout: str) -> np.ndarray:
    return nhwc[None] if layout == "nhwc" else nhwc.transpose(2, 0, 1)[None]


def reference_output(frame: np.ndarray, spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The expected tensor (float64, in the output's layout) and the tolerance of each value."""
    pixels = reference_pixels(frame, spec)
    std = per_channel(spec.std, 1.0)
    value = (pixels - per_channel(spec.mean, 0.0)) / std
    if spec.dtype == "float32":
        # 1e-5 relative covers float32 arithmetic on large values (a small std).
        tolerance = FLOAT_TOLERANCE_LEVELS / np.abs(std) + 1e-5 * np.abs(value)
        expected = value
    else:
        scale = 1.0 if spec.scale is None else spec.scale
        zero_point = 0.0 if spec.zero_point is None else spec.zero_point
        lo, hi = INTEGER_RANGE[spec.dtype]
        expected = np.clip(np.rint(value / scale + zero_point), lo, hi)  # rint: half to even
        tolerance = np.full_like(expected, INTEGER_TOLERANCE)
    tolerance = np.broadcast_to(tolerance, expected.shape)
    return to_layout(expected, spec.layout), to_layout(tolerance, spec.layout)


def assert_within(ours: np.ndarray, expected: np.ndarray, tolerance: np.ndarray | float) -> None:
    """Elementwise |ours − expected| ≤ tolerance, with a message that locates the worst value."""
    __tracebackhide__ = True  # the failure is the caller's line, not this helper's
    assert ours.shape == expected.shape
    excess = np.abs(ours.astype(np.float64) - expected) - tolerance
    if excess.max(initial=-np.inf) > 0:
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        allowed = np.broadcast_to(tolerance, expected.shape)[worst]
        pytest.fail(
            f"{np.count_nonzero(excess > 0)} of {excess.size} values off by more than the "
            f"tolerance; worst at {tuple(int(i) for i in worst)}: ours {ours[worst]}, "
            f"reference {expected[worst]:.4f}, tolerance {allowed:.4f}"
        )


def assert_matches_reference(frame: np.ndarray, spec: Spec, ours: np.ndarray | None = None) -> None:
    """`ours` (by default edge.preprocess's answer) is the reference's, within tolerance."""
    __tracebackhide__ = True
    if ours is None:
        ours = edge.preprocess(frame, **spec.kwargs())
    assert ours.dtype == np.dtype(spec.dtype)
    expected, tolerance = reference_output(frame, spec)
    assert_within(ours, expected, tolerance)


# ------------------------------------------------------------------------------- frames


def raw_shape(src: str, width: int, height: int) -> tuple[int, ...]:
    """The array shape of a width×height frame of `src`."""
    if src in ("nv12", "i420"):
        return (height * 3 // 2, width)
    if src == "gray":
        return (height, width)
    return (height, width, {"yuyv": 2, "bgra": 4, "rgba": 4}.get(src, 3))


def noise_frame(src: str, width: int, height: int, seed: int) -> np.ndarray:
    """Uniform random bytes: the worst case for resampling parity (every pixel an edge).

    Random bytes are a valid frame of every format, YUV included (chroma noise and all).
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, raw_shape(src, width, height), dtype=np.uint8)


def photo_frame(
    photo: np.ndarray, encode: FrameEncoder, src: str, width: int, height: int, seed: int
) -> np.ndarray:
    """A width×height window of a real photo (scaled up first if the photo is smaller)."""
    ph, pw = photo.shape[:2]
    if pw < width or ph < height:
        grow = max(width / pw, height / ph)
        size = (max(width, math.ceil(pw * grow)), max(height, math.ceil(ph * grow)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
        ph, pw = photo.shape[:2]
    rng = np.random.default_rng(seed)
    x = int(rng.integers(0, pw - width + 1))
    y = int(rng.integers(0, ph - height + 1))
    return encode(photo[y : y + height, x : x + width], src)


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Case:
    """A frame to make (format, size, seed) and the keywords to process it with."""

    width: int
    height: int
    seed: int
    spec: Spec


def channel_values(values: st.SearchStrategy[float], channels: int) -> st.SearchStrategy[Any]:
    """None, one number for every channel, or one per output channel."""
    return st.one_of(st.none(), values, st.tuples(*[values] * channels) if channels > 1 else values)


# Frames up to 240 pixels a side and outputs up to 160: ratios from 1/160 to 240, filters from
# one tap to well past the 16 of the fixed-point path, at a few ms an example.
MAX_FRAME_SIDE = 240
MAX_OUTPUT_SIDE = 160


def output_side(draw: st.DrawFn, source_side: int) -> int:
    """Any output side, or one a simple ratio (×2, ×3/2, ÷3, ...) away from the source's.

    Simple ratios put output pixels exactly on source pixel edges, where floating-point
    rounding decides which source pixel a filter takes: the cases most worth testing.
    """
    if draw(st.booleans()):
        return draw(st.integers(1, MAX_OUTPUT_SIDE))
    numerator, denominator = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return min(max(source_side * numerator // denominator, 1), MAX_OUTPUT_SIDE)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    src = draw(st.sampled_from(SOURCES))
    if src in YUV_SOURCES:  # 4:2:0 and 4:2:2 need even sides
        width = 2 * draw(st.integers(1, MAX_FRAME_SIDE // 2))
        height = 2 * draw(st.integers(1, MAX_FRAME_SIDE // 2))
    else:
        width = draw(st.integers(1, MAX_FRAME_SIDE))
        height = draw(st.integers(1, MAX_FRAME_SIDE))
    roi = None
    roi_w, roi_h = width, height
    if draw(st.booleans()):
        roi_w = draw(st.integers(1, width))
        roi_h = draw(st.integers(1, height))
        roi = (
            draw(st.integers(0, width - roi_w)),
            draw(st.integers(0, height - roi_h)),
            roi_w,
            roi_h,
        )
    dst = draw(st.sampled_from(DSTS))
    dtype = draw(st.sampled_from(DTYPES))
    channels = 1 if dst == "gray" else 3
    mean = draw(channel_values(st.floats(0, 255), channels))
    # A negative std is a plain division too; its size stays ≥ 0.25 so that the quantization
    # step below can stay ≥ MIN_QUANTIZATION_STEP_LEVELS.
    signed_std = st.builds(
        lambda size, negative: -size if negative else size, st.floats(0.25, 128), st.booleans()
    )
    std = draw(channel_values(signed_std, channels))
    scale = zero_point = None
    if dtype != "float32":
        smallest_std = float(np.min(np.abs(per_channel(std, 1.0))))
        min_scale = MIN_QUANTIZATION_STEP_LEVELS / smallest_std
        scale = draw(st.none() | st.floats(min_scale, max(4.0, 2 * min_scale)))
        zero_point = draw(st.none() | st.integers(-128, 255) | st.floats(-128, 255))
    spec = Spec(
        size=(output_side(draw, roi_w), output_side(draw, roi_h)),
        src=src,
        dst=dst,
        layout=draw(st.sampled_from(LAYOUTS)),
        dtype=dtype,
        resize=draw(st.sampled_from(RESIZES)),
        fit=draw(st.sampled_from(FITS)),
        roi=roi,
        mean=mean,
        std=std,
        scale=scale,
        zero_point=zero_point,
        pad_value=draw(st.floats(-64, 320)),  # any pixel value, even one no pixel can have
    )
    return Case(width, height, draw(st.integers(0, 2**32 - 1)), spec)


# -------------------------------------------------------------------------- parity tests


@given(case=cases())
def test_matches_reference_on_random_noise(case: Case) -> None:
    frame = noise_frame(case.spec.src, case.width, case.height, case.seed)
    assert_matches_reference(frame, case.spec)


@given(case=cases(), data=st.data())
def test_matches_reference_on_photos(
    photos: dict[str, np.ndarray], encode: FrameEncoder, case: Case, data: st.DataObject
) -> None:
    photo = photos[data.draw(st.sampled_from(sorted(photos)), label="photo")]
    frame = photo_frame(photo, encode, case.spec.src, case.width, case.height, case.seed)
    assert_matches_reference(frame, case.spec)


@pytest.mark.parametrize(("src", "resize", "fit"), list(product(SOURCES, RESIZES, FITS)))
def test_every_source_resize_and_fit(src: str, resize: str, fit: str) -> None:
    # Down on one axis, up on the other, odd sizes, an ROI off the origin: the awkward case.
    frame = noise_frame(src, 96, 58, seed=zlib.crc32(f"{src}/{resize}/{fit}".encode()))
    spec = Spec(size=(37, 71), src=src, resize=resize, fit=fit, roi=(5, 3, 83, 51), pad_value=114)
    assert_matches_reference(frame, spec)


NORMALISATIONS = {
    "none": {},
    "scalar": {"mean": 127.0, "std": 128.0},
    "per_channel": {"mean": (123.7, 116.3, 103.5), "std": (58.4, 57.1, 57.4)},
}
# An int8 model whose input has scale 1/128 and zero point -1: with mean 127, std 128 that is
# q = pixel − 128, the whole int8 range.
QUANTIZATIONS = {"none": {}, "int8_model_input": {"scale": 1 / 128, "zero_point": -1}}
OUTPUT_COMBINATIONS = [
    (dtype, layout, dst, normalisation, quantization)
    for dtype, layout, dst, normalisation, quantization in product(
        DTYPES, LAYOUTS, DSTS, NORMALISATIONS, QUANTIZATIONS
    )
    if dtype != "float32" or quantization == "none"  # float32 with scale is an error
]


def normalisation_params(normalisation: str, quantization: str, dst: str) -> dict[str, Any]:
    params = NORMALISATIONS[normalisation] | QUANTIZATIONS[quantization]
    if dst == "gray":  # one value per output channel: the grey one
        params = {k: v[0] if isinstance(v, tuple) else v for k, v in params.items()}
    return params


@pytest.mark.parametrize(
    ("dtype", "layout", "dst", "normalisation", "quantization"), OUTPUT_COMBINATIONS
)
def test_every_dtype_layout_and_normalisation(
    dtype: str, layout: str, dst: str, normalisation: str, quantization: str
) -> None:
    params = normalisation_params(normalisation, quantization, dst)
    spec = Spec(size=(41, 29), dst=dst, layout=layout, dtype=dtype, **params)
    assert_matches_reference(noise_frame("bgr", 130, 70, seed=7), spec)


EXTREME_SIZES = [
    pytest.param((1920, 1080), (3, 3), id="1080p-to-3x3"),
    pytest.param((1920, 1080), (1, 1), id="1080p-to-1x1"),
    pytest.param((1, 1), (1, 1), id="1x1-to-1x1"),
    pytest.param((1, 1), (224, 224), id="1x1-to-224"),
    pytest.param((2, 2), (301, 3), id="2x2-to-301x3"),
    pytest.param((1000, 3), (5, 400), id="flat-to-tall"),
    pytest.param((640, 480), (1, 300), id="to-one-column"),
    pytest.param((4, 1080), (640, 2), id="column-to-flat"),
    pytest.param((333, 333), (333, 333), id="identity"),
    pytest.param((640, 480), (320, 240), id="exact-half"),
]


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize(("frame_wh", "size"), EXTREME_SIZES)
def test_extreme_ratios(
    frame_wh: tuple[int, int], size: tuple[int, int], resize: str, dtype: str
) -> None:
    frame = noise_frame("bgr", *frame_wh, seed=frame_wh[0] * 7 + size[1])
    assert_matches_reference(frame, Spec(size=size, resize=resize, dtype=dtype))


def opencv_uint8_tolerance(src: str, dst: str) -> int:
    # cv2's uint8 pipeline rounds after its resize, and for grey again after cvtColor; the
    # kernel rounds once, at the end. Two roundings of up to 0.5 plus the kernel's 0.15 can
    # add up past 1.5, so grey from colour gets ±2 (on these photos it stays within 1).
    # YUV decoding is the same integer arithmetic in both (the kernel uses OpenCV's
    # fixed-point BT.601 constants), so it adds no rounding of its own: ±1.
    return 2 if dst == "gray" and src != "gray" else 1


# (photo, window of it as (width, height), output size): down, odd, up and to a single pixel.
PHOTO_WINDOWS = [
    ("coffee", (600, 400), (224, 224)),
    ("chelsea", (450, 300), (97, 131)),
    ("astronaut", (300, 200), (640, 360)),
    ("rocket", (640, 426), (1, 1)),
]


def assert_equals_opencv_uint8_pipeline(frame: np.ndarray, spec: Spec) -> None:
    expected = reference_pixels(frame, spec, pixel_dtype=np.uint8)
    ours = edge.preprocess(frame, **spec.kwargs())
    assert_within(ours, expected[None], opencv_uint8_tolerance(spec.src, spec.dst))


@pytest.mark.parametrize("dst", DSTS)
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("src", SOURCES)
def test_uint8_equals_opencv_uint8_pipeline_on_photos(
    photos: dict[str, np.ndarray], encode: FrameEncoder, src: str, resize: str, dst: str
) -> None:
    """The documented promise, literally: cv2.cvtColor + cv2.resize on uint8."""
    for name, window, size in PHOTO_WINDOWS:
        frame = photo_frame(photos[name], encode, src, *window, seed=0)
        assert_equals_opencv_uint8_pipeline(frame, Spec(size=size, src=src, dst=dst, resize=resize))


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("src", SOURCES)
def test_uint8_equals_opencv_uint8_pipeline_on_noise(src: str, resize: str) -> None:
    for frame_wh, size in [((200, 150), (64, 48)), ((64, 48), (150, 113)), ((90, 40), (30, 120))]:
        frame = noise_frame(src, *frame_wh, seed=frame_wh[1])
        assert_equals_opencv_uint8_pipeline(
            frame, Spec(size=size, src=src, dst="bgr", resize=resize)
        )


def test_area_upscale_picks_the_same_source_pixel_as_opencv() -> None:
    # Regression: upscaling 6 → 34 puts output pixel 17 exactly on source position 3.0.
    # OpenCV derives its taps from 1 / (34 / 6), which lands just below 3 and takes pixel 2;
    # a kernel that uses 6 / 34 lands on 3 and takes pixel 3, a whole grey step away.
    frame = np.array([[0, 50, 100, 150, 200, 250]], np.uint8)
    ours = edge.preprocess(frame, size=(34, 1), src="gray", dst="gray")
    expected = cv2.resize(frame, (34, 1), interpolation=cv2.INTER_AREA)
    assert_within(ours[0, :, :, 0], expected.astype(np.float64), 1)


# ------------------------------------------------------------------- reads inside the frame


def before_guard_page(frame: np.ndarray) -> np.ndarray:
    """A copy of `frame` whose last byte is followed by a page that may not be read.

    The kernels load several bytes at once; a load reaching past the frame's last pixel
    crashes here, even in builds without AddressSanitizer.
    """
    page = mmap.PAGESIZE
    pages = -(-frame.nbytes // page) + 1
    memory = mmap.mmap(-1, pages * page)
    start = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    no_access = 0  # PROT_NONE, which the mmap module does not name
    if libc.mprotect(start + (pages - 1) * page, page, no_access) != 0:
        pytest.skip(f"mprotect failed: {os.strerror(ctypes.get_errno())}")
    offset = (pages - 1) * page - frame.nbytes
    guarded = np.frombuffer(memory, np.uint8, frame.nbytes, offset).reshape(frame.shape)
    guarded[...] = frame
    return guarded


# Odd widths, one to four bytes a pixel, ROIs that end at the frame's last pixel, down- and
# upscaling (where consecutive output rows share source rows).
@pytest.mark.parametrize("size", [(9, 5), (40, 31), (130, 90)])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("src", ["gray", "bgr", "bgra", "yuyv"])
def test_reads_stay_inside_the_frame(src: str, resize: str, size: tuple[int, int]) -> None:
    width, height = (67, 41) if src != "yuyv" else (66, 41)
    frame = before_guard_page(noise_frame(src, width, height, seed=width + size[0]))
    for roi in [None, (width - 31, height - 17, 31, 17), (width - 2, height - 2, 2, 2)]:
        assert_matches_reference(frame, Spec(size=size, src=src, resize=resize, roi=roi))


# A frame of the output size whose values map to themselves is copied (a uint8 model whose
# input quantization undoes its normalisation, fed its own input size); any other mapping of
# the same frame is computed. Both give the exact bytes.
@pytest.mark.parametrize("resize", RESIZES)
def test_a_frame_of_the_output_size_keeps_its_bytes_or_maps_them(resize: str) -> None:
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (31, 45, 3), np.uint8)
    frame = before_guard_page(frame)
    same: dict[str, Any] = {"size": (45, 31), "resize": resize, "fit": "crop"}
    quantized = {"mean": 127.0, "std": 128.0, "scale": 0.0078125019, "zero_point": 127.0}
    for keywords in [{"src": "bgr", "dst": "bgr"}, {"src": "rgb", "dst": "rgb", **quantized}]:
        assert np.array_equal(edge.preprocess(frame, **same, **keywords)[0], frame), keywords
    grey = np.ascontiguousarray(frame[..., 0])
    assert np.array_equal(edge.preprocess(grey, src="gray", dst="gray", **same)[0, ..., 0], grey)
    roi = edge.preprocess(frame, src="bgr", dst="bgr", size=(20, 10), roi=(25, 21, 20, 10))
    assert np.array_equal(roi[0], frame[21:, 25:])
    # Not copies: colours swapped, a mean off by one, the planes of NCHW.
    assert np.array_equal(edge.preprocess(frame, src="bgr", **same)[0], frame[..., ::-1])
    shifted = edge.preprocess(frame, src="bgr", dst="bgr", mean=1.0, **same)[0]
    assert np.array_equal(shifted, np.maximum(frame.astype(int) - 1, 0))
    planes = edge.preprocess(frame, src="bgr", dst="bgr", layout="nchw", **same)[0]
    assert np.array_equal(planes, frame.transpose(2, 0, 1))


# ------------------------------------------------------------------------------ geometry


def test_letterbox_geometry_by_hand() -> None:
    # 640×480 into 224×224: s = 0.35, the picture is 224×168, 28 rows of border above and below.
    frame = np.full((480, 640, 3), 200, np.uint8)
    out = edge.preprocess(frame, size=(224, 224), fit="letterbox", pad_value=114)
    assert (out[0, :28] == 114).all()
    assert (out[0, 28:196] == 200).all()
    assert (out[0, 196:] == 114).all()


def test_crop_takes_the_centre() -> None:
    # 640×480 to a square: the centre 480×480, columns 80..559; the sides are painted apart.
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, :80] = 0
    frame[:, 560:] = 255
    out = edge.preprocess(frame, size=(48, 48), fit="crop")
    assert (out == 90).all()


def test_roi_selects_the_window() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[20:40, 30:70] = (10, 20, 30)  # BGR
    out = edge.preprocess(frame, size=(40, 20), roi=(30, 20, 40, 20))
    assert (out[0] == (30, 20, 10)).all()  # RGB out


# ------------------------------------------------------------------------- calling forms


@pytest.mark.parametrize(("dtype", "layout", "dst"), list(product(DTYPES, LAYOUTS, DSTS)))
def test_shape_and_dtype_properties(dtype: str, layout: str, dst: str) -> None:
    pre = edge.Preprocessor(size=(7, 5), dtype=dtype, layout=layout, dst=dst)
    channels = 1 if dst == "gray" else 3
    expected_shape = (1, 5, 7, channels) if layout == "nhwc" else (1, channels, 5, 7)
    assert pre.shape == expected_shape
    assert pre.dtype == np.dtype(dtype)
    result = pre(noise_frame("bgr", 20, 12, seed=1))
    assert (result.shape, result.dtype) == (expected_shape, np.dtype(dtype))


@pytest.mark.parametrize(("dtype", "layout"), list(product(DTYPES, LAYOUTS)))
def test_out_is_written_in_place_and_returned(dtype: str, layout: str) -> None:
    frame = noise_frame("bgr", 64, 48, seed=3)
    pre = edge.Preprocessor(size=(32, 24), dtype=dtype, layout=layout, fit="letterbox")
    out = np.full(pre.shape, 77, pre.dtype)  # 77 nowhere in the answer's border or picture
    assert pre(frame, out) is out
    np.testing.assert_array_equal(out, pre(frame))
    again = np.full(pre.shape, 13, pre.dtype)
    assert (
        edge.preprocess(
            frame, size=(32, 24), dtype=dtype, layout=layout, fit="letterbox", out=again
        )
        is again
    )
    np.testing.assert_array_equal(again, out)


# Row-strided views: the frame sits inside a wider and taller buffer, rows far apart.
STRIDED_SOURCES = [src for src in SOURCES if src != "i420"]  # i420 must be contiguous


@pytest.mark.parametrize("src", STRIDED_SOURCES)
def test_row_strided_view_equals_its_contiguous_copy(src: str) -> None:
    width, height = 90, 60
    inner = noise_frame(src, width, height, seed=11)
    big = np.zeros((inner.shape[0] + 9, inner.shape[1] + 50, *inner.shape[2:]), np.uint8)
    view = big[4 : 4 + inner.shape[0], 17 : 17 + inner.shape[1]]
    view[...] = inner
    assert not view.flags.c_contiguous
    pre = edge.Preprocessor(size=(33, 47), src=src, roi=(3, 2, 80, 50), dtype="float32")
    np.testing.assert_array_equal(pre(view), pre(np.ascontiguousarray(view)))


def test_gray_frame_with_channel_axis_equals_plain_gray() -> None:
    frame = noise_frame("gray", 50, 40, seed=5)
    pre = edge.Preprocessor(size=(20, 30), src="gray", dst="gray")
    np.testing.assert_array_equal(pre(frame.reshape(40, 50, 1)), pre(frame))


def test_gray_frame_from_a_new_axis_view_is_accepted() -> None:
    # frame[..., None] has stride 0 on its length-1 channel axis: still one packed byte per
    # pixel, so it is a valid gray frame (no copy should be needed).
    frame = noise_frame("gray", 50, 40, seed=5)
    pre = edge.Preprocessor(size=(20, 30), src="gray", dst="gray")
    np.testing.assert_array_equal(pre(frame[..., None]), pre(frame))


def test_preprocessor_handles_many_frame_sizes_in_turn() -> None:
    # More distinct sizes than the kernel keeps plans for, revisited out of order.
    pre = edge.Preprocessor(size=(31, 17), dtype="float32", mean=100, std=50)
    sizes = [(64, 48), (1, 1), (320, 240), (17, 31), (99, 3), (64, 48), (2, 200), (320, 240)]
    for width, height in sizes:
        frame = noise_frame("bgr", width, height, seed=width * height)
        assert_matches_reference(
            frame, Spec(size=(31, 17), dtype="float32", mean=100, std=50), ours=pre(frame)
        )


# --------------------------------------------------------------------- instruction sets


def best_isa_of_this_cpu() -> str:
    """The variant the core should pick, from what the CPU says of itself (not from the core)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo to tell which instruction sets the CPU has")
    if platform.machine() in ("aarch64", "arm64"):
        return "dotprod" if " asimddp" in flags else "neon"
    return "avx2" if " avx2" in flags and " fma" in flags else "baseline"


def test_active_isa_is_the_best_the_cpu_allows() -> None:
    if os.environ.get("EDGE_ISA"):
        assert edge.active_isa() == os.environ["EDGE_ISA"]
    else:
        assert edge.active_isa() == best_isa_of_this_cpu()


def isa_cases() -> list[tuple[Spec, int, int]]:
    """Every source, resize, fit, dst, dtype and layout at least once, with (width, height)."""
    outputs = cycle(product(DTYPES, LAYOUTS, DSTS))
    normalised = cycle([{}, {"mean": 127.0, "std": 64.0}])
    sizes = cycle([(45, 23), (131, 97), (60, 150)])  # down, up, down across and up along
    cases_ = []
    for (src, resize, fit), (dtype, layout, dst), params, size in zip(
        product(SOURCES, RESIZES, FITS), outputs, normalised, sizes, strict=False
    ):
        spec = Spec(
            size=size,
            src=src,
            resize=resize,
            fit=fit,
            dtype=dtype,
            layout=layout,
            dst=dst,
            roi=(1, 2, 75, 70),
            pad_value=30,
            **params,
        )
        cases_.append((spec, 90, 80))
    # Long filters take the float path of the vertical pass, short ones the fixed-point one.
    cases_.append((Spec(size=(9, 7), dtype="float32"), 1280, 720))
    return cases_


# Runs in a fresh interpreter, since EDGE_ISA is read once per process.
_PREPROCESS_IN_SUBPROCESS = """
import json, sys
import numpy as np
import edge
kwargs = json.loads(open(sys.argv[1]).read())
frames = np.load(sys.argv[2])
np.savez(sys.argv[3], *[edge.preprocess(frames[f"arr_{i}"], **kw) for i, kw in enumerate(kwargs)])
print(edge.active_isa())
"""


@pytest.mark.parametrize("isa", ["scalar", "baseline"])
def test_forced_variant_matches_references_and_default_variant(tmp_path: Path, isa: str) -> None:
    specs_and_frames = [
        (spec, noise_frame(spec.src, width, height, seed=i))
        for i, (spec, width, height) in enumerate(isa_cases())
    ]
    (tmp_path / "kwargs.json").write_text(
        json.dumps([spec.kwargs() for spec, _ in specs_and_frames])
    )
    np.savez(tmp_path / "frames.npz", *[frame for _, frame in specs_and_frames])
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _PREPROCESS_IN_SUBPROCESS,
            str(tmp_path / "kwargs.json"),
            str(tmp_path / "frames.npz"),
            str(tmp_path / "outputs.npz"),
        ],
        env={**os.environ, "EDGE_ISA": isa},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isa
    baseline_outputs = np.load(tmp_path / "outputs.npz")
    for i, (spec, frame) in enumerate(specs_and_frames):
        from_baseline = baseline_outputs[f"arr_{i}"]
        # The variants differ only in the order of float sums and FMA contraction.
        default = edge.preprocess(frame, **spec.kwargs())
        assert_within(
            from_baseline, default.astype(np.float64), 1e-4 if default.dtype == np.float32 else 1
        )
        assert_matches_reference(frame, spec, ours=from_baseline)
