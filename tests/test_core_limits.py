"""The core at the edges of what it accepts, against NumPy and OpenCV references.

1×N and N×1 frames, sides and pixel counts at and past the limits (README, "Preprocessing"),
for the frame statistics, preprocessing (every source format) and the scores. A size past a
limit is refused by its shape, with a ValueError naming the argument and the limit, before a
byte is read: the refused frames are ``np.zeros``, whose pages cost nothing until touched, so
a gigapixel frame is cheap to refuse and a regression reads zeros instead of crashing.
The default variant of the hot loops runs here; the baseline one (EDGE_ISA=baseline) on a
fixed sample of the same extremes, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge
from edge import _core

MAX_SIDE = 2**20  # pixels a side of a frame
MAX_PIXELS = 2**30  # pixels of a frame in all
MAX_SCORE_LENGTH = 2**24  # classes, embedding dimensions, bank rows

SOURCES = ("bgr", "rgb", "bgra", "rgba", "gray", "nv12", "i420", "yuyv")
PLANAR = frozenset({"nv12", "i420"})
YUV_TO_BGR = {
    "nv12": cv2.COLOR_YUV2BGR_NV12,
    "i420": cv2.COLOR_YUV2BGR_I420,
    "yuyv": cv2.COLOR_YUV2BGR_YUY2,
}
STATS_SOURCES = ("gray", "bgr", "rgb", "bgra", "rgba")

# Under ASan the lazily zeroed 1 GiB frame of the pixel-limit test becomes resident (1.5 GB
# measured), past what a test may take on a shared machine.
UNDER_ASAN = "libasan" in Path("/proc/self/maps").read_text()
skip_under_asan = pytest.mark.skipif(
    UNDER_ASAN, reason="ASan makes the 1 GiB frame resident (1.5 GB measured): too much memory"
)

# Long sides worth trying: the limit, just under it, and the widths where 16- and 32-bit
# sums used to overflow (65 536 pixels of 255^2 overflow 32 bits).
EXTREME_SIDES = (MAX_SIDE, MAX_SIDE - 2, 65_536, 65_538, 131_072, 300_002)


def long_side(even: bool = False) -> st.SearchStrategy[int]:
    side = st.sampled_from(EXTREME_SIDES) | st.integers(1, MAX_SIDE)
    return side.map(lambda n: max(2, n - n % 2)) if even else side


def frame_shape(src: str, width: int, height: int) -> tuple[int, ...]:
    """The array shape of a `src` frame of width × height pixels."""
    if src in PLANAR:
        return (height * 3 // 2, width)
    if src == "gray":
        return (height, width)
    return (height, width, {"yuyv": 2, "bgra": 4, "rgba": 4}.get(src, 3))


def assert_refused(call: Any, *words: str) -> None:
    with pytest.raises(ValueError, match="too large") as info:
        call()
    for word in words:
        assert word in str(info.value)


# ------------------------------------------------------------------------ frame statistics


def luma(image: np.ndarray, src: str) -> np.ndarray:
    """BT.601 luma in the kernel's 14-bit fixed point (cv2.cvtColor's coefficients; OpenCV's
    own rounding differs on exact halves), so every statistic can be compared exactly."""
    if src == "gray":
        return image.reshape(image.shape[:2]).astype(np.float64)
    pixels = image.astype(np.int64)
    red, blue = (2, 0) if src.startswith("b") else (0, 2)
    y = 4899 * pixels[..., red] + 9617 * pixels[..., 1] + 1868 * pixels[..., blue]
    return ((y + (1 << 13)) >> 14).astype(np.float64)


def reference_dhash(gray: np.ndarray) -> int:
    """Box means over the 9x8 grid, split as the kernel splits rows and columns."""
    h, w = gray.shape
    row_cell = np.arange(h, dtype=np.int64) * 8 // h
    col_cell = np.arange(w, dtype=np.int64) * 9 // w
    sums = np.zeros((8, 9))
    np.add.at(sums, (row_cell[:, None], col_cell[None, :]), gray)
    counts = np.outer(np.bincount(row_cell, minlength=8), np.bincount(col_cell, minlength=9))
    cells = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    bits = (cells[:, :-1] > cells[:, 1:]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def assert_stats_match_numpy(image: np.ndarray, src: str) -> None:
    __tracebackhide__ = True
    s = _core.frame_stats(image, src=src)
    g = luma(image, src)
    assert s.brightness == pytest.approx(g.mean(), abs=1e-3)
    assert s.contrast == pytest.approx(g.std(), abs=1e-3)
    assert s.dark == pytest.approx((g <= 16).mean())
    assert s.bright == pytest.approx((g >= 239).mean())
    if min(g.shape) >= 3:
        laplacian = cv2.Laplacian(g, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
        assert s.sharpness == pytest.approx(laplacian.var(), rel=1e-4, abs=1e-3)
    assert s.dhash == reference_dhash(g)


_FRAME_STATS_IN_SUBPROCESS = """
import numpy as np, edge
try:
    s = edge.frame_stats(np.zeros({shape}, np.uint8), src="gray")
    print("accepted, dhash", s.dhash)
except ValueError as e:
    print("ValueError:", e)
"""


# The shapes of the hardening report: the first crashed (a signed overflow of c * W), the
# second hashed a uniform image to a non-zero dHash (y * 8 overflowed into a negative index).
@pytest.mark.parametrize(
    "shape", [(1, 300_000_000), (280_000_000, 1)], ids=["300M-wide", "280M-tall"]
)
def test_frame_stats_of_a_300M_row_or_280M_column_is_refused_not_a_segfault(
    shape: tuple[int, int],
) -> None:
    # A crash would take the test process down with it: a fresh interpreter runs it.
    result = subprocess.run(
        [sys.executable, "-c", _FRAME_STATS_IN_SUBPROCESS.format(shape=shape)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.startswith("ValueError: image is too large"), result.stdout
    assert "1048576 pixels a side" in result.stdout


@pytest.mark.parametrize("width", [132_104, 200_000, MAX_SIDE])
def test_contrast_of_rows_of_over_66051_bright_pixels_matches_numpy(width: int) -> None:
    # Half the pixels 255: past 66 051 of them (2^32 / 255^2) the squares of one row overflowed
    # a 32-bit sum, and the contrast came out 0.0 where NumPy says 127.5.
    image = np.zeros((3, width), np.uint8)
    image[:, ::2] = 255
    s = _core.frame_stats(image, src="gray")
    assert s.contrast == pytest.approx(image.std(), abs=1e-3)
    assert s.contrast == pytest.approx(127.5, abs=0.1)
    assert_stats_match_numpy(image, "gray")


@pytest.mark.parametrize("src", ["bgr", "rgba"])
def test_colour_rows_at_the_side_limit_match_numpy(src: str) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (2, MAX_SIDE, len(src)), dtype=np.uint8)
    image[:, ::3] = 255
    assert_stats_match_numpy(image, src)


@skip_under_asan
def test_frame_stats_at_the_pixel_limit_match_numpy() -> None:
    # 2^15 × 2^15 pixels, zero but for every 64th row of alternating 0/255: only those rows'
    # pages are touched (16 MiB), the rest reads the kernel's zero page.
    side = 2**15
    image = np.zeros((side, side), np.uint8)
    image[::64, ::2] = 255
    s = _core.frame_stats(image, src="gray")
    bright = np.count_nonzero(image[::64])
    mean = 255.0 * bright / image.size
    assert s.brightness == pytest.approx(mean, rel=1e-5)
    assert s.contrast == pytest.approx(np.sqrt(255.0**2 * bright / image.size - mean**2), rel=1e-5)
    assert s.bright == pytest.approx(bright / image.size, rel=1e-5)
    assert s.dark == pytest.approx(1 - bright / image.size, rel=1e-5)


@settings(max_examples=30)
@given(
    long=long_side(),
    short=st.integers(1, 3),
    tall=st.booleans(),
    src=st.sampled_from(STATS_SOURCES),
    seed=st.integers(0, 2**32 - 1),
)
def test_frame_stats_of_1xN_and_Nx1_images_match_numpy(
    long: int, short: int, tall: bool, src: str, seed: int
) -> None:
    height, width = (long, short) if tall else (short, long)
    shape = (height, width) if src == "gray" else (height, width, len(src))
    image = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    assert_stats_match_numpy(image, src)


IMAGES_PAST_THE_LIMITS = [
    pytest.param((1, MAX_SIDE + 1), id="one-row-too-wide"),
    pytest.param((MAX_SIDE + 1, 1), id="one-column-too-tall"),
    pytest.param((2**15, 2**15 + 1), id="too-many-pixels-wide"),
    pytest.param((2**15 + 1, 2**15), id="too-many-pixels-tall"),
]


@pytest.mark.parametrize("shape", IMAGES_PAST_THE_LIMITS)
@pytest.mark.parametrize("src", ["gray", "bgr", "rgba"])
def test_images_past_the_limits_are_refused_by_shape(shape: tuple[int, int], src: str) -> None:
    image = np.zeros(shape if src == "gray" else (*shape, len(src)), np.uint8)
    assert_refused(lambda: _core.frame_stats(image, src=src), "image", "1048576", "1073741824")
    assert_refused(
        lambda: _core.frame_stats_batch(image[None], src=src), "images", "1048576", "1073741824"
    )


def test_images_at_the_side_limit_are_accepted() -> None:
    for shape in [(1, MAX_SIDE), (MAX_SIDE, 1)]:
        image = np.full(shape, 7, np.uint8)
        s = _core.frame_stats(image, src="gray")
        assert (s.brightness, s.contrast) == (7.0, 0.0)
        # Cells past a one-pixel side are empty and count as black.
        assert s.dhash == reference_dhash(image.astype(np.float64))


# -------------------------------------------------------------------------- preprocessing


def uniform_frame(src: str, width: int, height: int, colour: tuple[int, int, int]) -> np.ndarray:
    """A `src` frame of one colour: (B, G, R) for packed sources, (Y, U, V) for YUV ones,
    its first value for gray."""
    a, b, c = colour
    frame = np.empty(frame_shape(src, width, height), np.uint8)
    if src == "gray":
        frame[...] = a
    elif src in ("bgr", "bgra"):
        frame[..., :3] = (a, b, c)
    elif src in ("rgb", "rgba"):
        frame[..., :3] = (c, b, a)
    elif src == "nv12":
        frame[:height] = a
        frame[height:, 0::2] = b
        frame[height:, 1::2] = c
    elif src == "i420":
        flat = frame.reshape(-1)
        quarter = width * height // 4
        flat[: width * height] = a
        flat[width * height : width * height + quarter] = b
        flat[width * height + quarter :] = c
    else:  # yuyv
        frame[..., 0] = a
        frame[:, 0::2, 1] = b
        frame[:, 1::2, 1] = c
    if src in ("bgra", "rgba"):
        frame[..., 3] = 255 - a  # alpha unlike any colour, so a leak shows
    return frame


def expected_colour(src: str, colour: tuple[int, int, int], dst: str) -> np.ndarray:
    """What every output pixel holds, in pixel units: OpenCV's decoding of a 2×2 frame."""
    small = uniform_frame(src, 2, 2, colour)
    if src == "gray":
        return np.full(1 if dst == "gray" else 3, float(colour[0]))
    if src in YUV_TO_BGR:
        bgr = cv2.cvtColor(small, YUV_TO_BGR[src])[0, 0].astype(np.float64)
    else:
        bgr = np.asarray(colour[:3], np.float64)
    if dst == "gray":
        return np.array([0.299 * bgr[2] + 0.587 * bgr[1] + 0.114 * bgr[0]])
    return bgr[::-1] if dst == "rgb" else bgr


@st.composite
def extreme_frames(draw: st.DrawFn) -> tuple[str, int, int]:
    """(src, width, height): one side long (up to the limit), the other 1 to 3 (2 for YUV)."""
    src = draw(st.sampled_from(SOURCES))
    tall = draw(st.booleans())
    even_width = src in PLANAR or src == "yuyv"
    even_height = src in PLANAR
    long = draw(long_side(even=even_width if not tall else even_height))
    short = draw(st.integers(1, 3))
    if (even_height if not tall else even_width) and short % 2:
        short += 1
    return (src, short, long) if tall else (src, long, short)


@settings(max_examples=40)
@given(
    frame_spec=extreme_frames(),
    colour=st.tuples(*[st.integers(0, 255)] * 3),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    resize=st.sampled_from(["area", "bilinear"]),
    fit=st.sampled_from(["stretch", "crop"]),
    dst=st.sampled_from(["rgb", "bgr", "gray"]),
    dtype=st.sampled_from(["uint8", "float32"]),
)
def test_preprocess_of_1xN_and_Nx1_frames_keeps_a_uniform_colour(
    frame_spec: tuple[str, int, int],
    colour: tuple[int, int, int],
    size: tuple[int, int],
    resize: str,
    fit: str,
    dst: str,
    dtype: str,
) -> None:
    src, width, height = frame_spec
    frame = uniform_frame(src, width, height, colour)
    out = edge.preprocess(frame, size=size, src=src, dst=dst, resize=resize, fit=fit, dtype=dtype)
    want = expected_colour(src, colour, dst)
    # ±1 level, the README's promise: a float sum over 2^20 source rows drifts by up to ~0.9
    # of a level at 255.
    np.testing.assert_allclose(
        out[0].astype(np.float64), np.broadcast_to(want, out[0].shape), atol=1
    )


@settings(max_examples=20)
@given(
    long=long_side(),
    tall=st.booleans(),
    out_len=st.integers(1, 9),
    src=st.sampled_from(["gray", "bgr"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_area_resize_of_1xN_and_Nx1_noise_matches_opencv(
    long: int, tall: bool, out_len: int, src: str, seed: int
) -> None:
    channels = 1 if src == "gray" else 3
    shape = (long, 1, channels) if tall else (1, long, channels)
    frame = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    size = (1, out_len) if tall else (out_len, 1)
    ours = edge.preprocess(
        frame.reshape(shape[:2]) if src == "gray" else frame,
        size=size,
        src=src,
        dst="bgr" if channels == 3 else "gray",
        dtype="float32",
    )
    want = cv2.resize(frame.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(ours[0].reshape(-1), want.reshape(-1), atol=1)


def frames_past_the_limits() -> list[Any]:
    cases = []
    for src in SOURCES:
        for name, (width, height) in {
            "too-wide": (MAX_SIDE + 2, 2),
            "too-tall": (2, MAX_SIDE + 2),
            "too-many-pixels": (2**15, 2**15 + 2),
        }.items():
            cases.append(pytest.param(src, width, height, id=f"{src}-{name}"))
    return cases


@pytest.mark.parametrize(("src", "width", "height"), frames_past_the_limits())
def test_frames_past_the_limits_are_refused_by_shape(src: str, width: int, height: int) -> None:
    frame = np.zeros(frame_shape(src, width, height), np.uint8)
    pre = edge.Preprocessor(size=(4, 3), src=src)
    assert_refused(lambda: pre(frame), "frame", f"{width}x{height}", "1048576", "1073741824")


@pytest.mark.parametrize("src", SOURCES)
def test_frames_at_the_side_limit_are_accepted(src: str) -> None:
    for width, height in [(MAX_SIDE, 2), (2, MAX_SIDE)]:
        frame = uniform_frame(src, width, height, (90, 100, 140))
        out = edge.preprocess(frame, size=(3, 3), src=src, dtype="float32")
        np.testing.assert_allclose(
            out[0], np.broadcast_to(expected_colour(src, (90, 100, 140), "rgb"), (3, 3, 3)), atol=1
        )


# ------------------------------------------------------------------------------- scores


def lazy_floats(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def test_logits_past_the_limit_are_refused_by_shape() -> None:
    n = MAX_SCORE_LENGTH + 1
    assert_refused(lambda: _core.logit_scores(lazy_floats(n)), "logits", "16777216")
    assert_refused(lambda: _core.logit_scores_batch(lazy_floats(1, n)), "logits", "16777216")
    # A broadcast view is refused before it is copied into a contiguous array.
    view = np.broadcast_to(np.float32(0), (2, n))
    assert_refused(lambda: _core.logit_scores_batch(view), "logits", "columns")


def ood_arrays(dim_in: int, dim: int, classes: int, bank: int) -> dict[str, Any]:
    return {
        "center": lazy_floats(dim_in),
        "projection": None if dim == dim_in else lazy_floats(dim, dim_in),
        "whitener": np.eye(dim, dtype=np.float32),
        "class_means": lazy_floats(classes, dim),
        "bank": lazy_floats(bank, dim),
        "k": 1,
    }


@pytest.mark.parametrize(
    ("argument", "sizes"),
    [
        ("center", (MAX_SCORE_LENGTH + 1, 1, 1, 1)),
        ("class_means", (1, 1, MAX_SCORE_LENGTH + 1, 1)),
        ("bank", (1, 1, 1, MAX_SCORE_LENGTH + 1)),
    ],
)
def test_ood_reference_past_the_limit_is_refused_by_shape(
    argument: str, sizes: tuple[int, int, int, int]
) -> None:
    assert_refused(lambda: _core.OodScorer(**ood_arrays(*sizes)), argument, "16777216")


def test_embeddings_past_the_limit_are_refused_by_shape() -> None:
    scorer = _core.OodScorer(**ood_arrays(1, 1, 1, 1))
    assert_refused(
        lambda: scorer.score_batch(lazy_floats(1, MAX_SCORE_LENGTH + 1)), "embeddings", "columns"
    )
    assert_refused(lambda: scorer.score(lazy_floats(MAX_SCORE_LENGTH + 1)), "embedding", "values")


@pytest.mark.parametrize("n", [1, 2, 65_537, MAX_SCORE_LENGTH])
def test_logit_scores_at_extreme_lengths_match_the_closed_form(n: int) -> None:
    # All logits 0 but one at 5: softmax is e^5 / (e^5 + n - 1) there, 1 / (e^5 + n - 1) elsewhere.
    logits = np.zeros(n, np.float32)
    logits[n // 2] = 5
    z = np.exp(5.0) + n - 1
    scores, probs = _core.logit_scores(logits, 1.0)
    assert scores.top == n // 2
    assert scores.msp == pytest.approx(np.exp(5.0) / z, rel=1e-5)
    assert scores.energy == pytest.approx(-np.log(z), rel=1e-5)
    entropy = np.log(z) - 5.0 * np.exp(5.0) / z
    assert scores.entropy == pytest.approx(entropy, rel=1e-4, abs=1e-6)
    assert probs[0] == pytest.approx(1 / z if n > 1 else 1.0, rel=1e-5)
    batch = _core.logit_scores_batch(logits[None], 1.0)
    assert batch["top"][0] == n // 2


def numpy_scores(arrays: dict[str, Any], embedding: np.ndarray) -> tuple[np.ndarray, float]:
    """The squared distance to every class mean, and the k-NN score."""
    e = embedding.astype(np.float64) - arrays["center"]
    if arrays["projection"] is not None:
        e = arrays["projection"].astype(np.float64) @ e
    z = arrays["whitener"].astype(np.float64) @ e
    d = ((z[None] - arrays["class_means"]) ** 2).sum(axis=1)
    sims = np.sort(arrays["bank"].astype(np.float64) @ (e / np.linalg.norm(e)))[::-1]
    return d, float(np.sqrt(max(0.0, 2 - 2 * sims[arrays["k"] - 1])))


def int8_grid(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Rows on the int8 grid the scorer stores (codes times a scale per row): kept exactly."""
    codes = rng.integers(-127, 128, (rows, cols))
    codes[:, 0] = 127  # the largest magnitude of each row sets its scale
    return (codes * rng.uniform(0.01, 1, (rows, 1))).astype(np.float32)


@settings(max_examples=12)
@given(
    dims=st.sampled_from([(1, 1), (3, 1), (65_539, 17), (1, 65_537 // 3), (2**16 + 5, 2**16 + 5)])
    | st.tuples(st.integers(1, 4096), st.integers(1, 64)),
    rows=st.sampled_from([(1, 1), (2**20, 1), (1, 2**20), (3, 5)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_embedding_scores_at_extreme_dimensions_match_numpy(
    dims: tuple[int, int], rows: tuple[int, int], seed: int
) -> None:
    dim_in, dim = dims
    dim = min(dim, dim_in)
    if dim > 4096:
        dim = dim_in = 64  # a dim × dim whitener would be gigabytes; dim_in alone stays long
    classes, bank = rows
    if max(classes, bank) * dim > 2**24:
        classes, bank = min(classes, 7), min(bank, 7)  # keep the reference within 256 MiB
    arrays = ood_inputs(np.random.default_rng(seed), dim_in, dim, classes, bank)
    scorer = _core.OodScorer(**arrays)
    embedding = np.random.default_rng(seed + 1).normal(size=dim_in).astype(np.float32)
    maha, nearest, knn = scorer.score(embedding)
    distances, want_knn = numpy_scores(arrays, embedding)
    assert maha == pytest.approx(distances.min(), rel=2e-3, abs=2e-3)
    # The nearest class, or one tied with it to float rounding.
    assert distances[nearest] == pytest.approx(distances.min(), rel=2e-3, abs=2e-3)
    assert knn == pytest.approx(want_knn, rel=2e-3, abs=2e-3)


def ood_inputs(
    rng: np.random.Generator, dim_in: int, dim: int, classes: int, bank: int
) -> dict[str, Any]:
    """A reference of these sizes whose rows sit on the scorer's int8 grid."""
    whitener = np.tril(rng.normal(size=(dim, dim)) / np.sqrt(dim)) + np.eye(dim)
    bank_rows = int8_grid(rng, bank, dim).astype(np.float64)
    return {
        "center": rng.normal(size=dim_in).astype(np.float32),
        "projection": None if dim == dim_in else int8_grid(rng, dim, dim_in),
        "whitener": whitener.astype(np.float32),
        "class_means": int8_grid(rng, classes, dim),
        "bank": (bank_rows / np.linalg.norm(bank_rows, axis=1, keepdims=True)).astype(np.float32),
        "k": 1,
    }


# ---------------------------------------------------------------------- instruction sets

# Runs in a fresh interpreter, since EDGE_ISA is read once per process.
_EXTREMES_IN_SUBPROCESS = """
import json, sys
import numpy as np
import edge
from edge import _core
cases = json.loads(open(sys.argv[1]).read())
frames = np.load(sys.argv[2])
outputs = [edge.preprocess(frames[f"arr_{i}"], **kw) for i, kw in enumerate(cases)]
ood = np.load(sys.argv[4])
scorer = _core.OodScorer(
    center=ood["center"], projection=ood["projection"], whitener=ood["whitener"],
    class_means=ood["class_means"], bank=ood["bank"], k=1)
outputs.append(np.array(scorer.score(ood["embedding"]), np.float64))
np.savez(sys.argv[3], *outputs)
print(edge.active_isa())
"""


def isa_extremes() -> list[tuple[dict[str, Any], np.ndarray]]:
    """Every source as 1×N (2×N) and N×1 (N×2) at the side limit, by area and bilinear."""
    rng = np.random.default_rng(3)
    cases = []
    for i, src in enumerate(SOURCES):
        for j, (width, height) in enumerate([(MAX_SIDE, 2), (2, MAX_SIDE)]):
            frame = rng.integers(0, 256, frame_shape(src, width, height), dtype=np.uint8)
            resize = ("area", "bilinear")[(i + j) % 2]
            kwargs = {"size": (5, 3), "src": src, "resize": resize, "dtype": "float32"}
            cases.append((kwargs, frame))
    return cases


@pytest.mark.parametrize("isa", ["scalar", "baseline"])
def test_forced_variant_agrees_with_the_default_on_extreme_shapes(tmp_path: Path, isa: str) -> None:
    cases = isa_extremes()
    # The scorer's int8 rows are multiplied by each variant's code: a long row of each.
    rng = np.random.default_rng(5)
    ood = ood_inputs(rng, 2**16 + 3, 5, 3, 4)
    embedding = rng.normal(size=2**16 + 3).astype(np.float32)
    np.savez(
        tmp_path / "ood.npz", embedding=embedding, **{k: v for k, v in ood.items() if k != "k"}
    )
    (tmp_path / "cases.json").write_text(json.dumps([kwargs for kwargs, _ in cases]))
    np.savez(tmp_path / "frames.npz", *[frame for _, frame in cases])
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_EXTREMES_IN_SUBPROCESS),
            str(tmp_path / "cases.json"),
            str(tmp_path / "frames.npz"),
            str(tmp_path / "outputs.npz"),
            str(tmp_path / "ood.npz"),
        ],
        env={**os.environ, "EDGE_ISA": isa},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == isa
    baseline = np.load(tmp_path / "outputs.npz")
    for i, (kwargs, frame) in enumerate(cases):
        default = edge.preprocess(frame, **kwargs)
        np.testing.assert_allclose(baseline[f"arr_{i}"], default, atol=1e-3, err_msg=str(kwargs))
    default_scores = _core.OodScorer(**ood).score(embedding)
    np.testing.assert_allclose(baseline[f"arr_{len(cases)}"], default_scores, rtol=1e-4)
