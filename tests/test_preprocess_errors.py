"""Bad input to edge.preprocess: the right exception, naming the argument, and never a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import edge

SIZE = (8, 6)


def frame_of(shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.int64).astype(dtype).reshape(shape)


BGR = frame_of((12, 16, 3))


# ------------------------------------------------------------------ frames, per call

# (src, frame, exception, a word the message must contain)
BAD_FRAMES = [
    pytest.param("bgr", BGR.tolist(), TypeError, "frame", id="list"),
    pytest.param("bgr", None, TypeError, "frame", id="none"),
    pytest.param("bgr", BGR.tobytes(), TypeError, "frame", id="bytes"),
    pytest.param("bgr", BGR.astype(np.float32), TypeError, "frame", id="float32"),
    pytest.param("bgr", BGR.astype(np.uint16), TypeError, "frame", id="uint16"),
    pytest.param("bgr", BGR.astype(np.int8), TypeError, "frame", id="int8"),
    pytest.param("bgr", BGR > 3, TypeError, "frame", id="bool"),
    pytest.param("bgr", np.zeros((0, 16, 3), np.uint8), ValueError, "frame", id="no-rows"),
    pytest.param("bgr", np.zeros((12, 0, 3), np.uint8), ValueError, "frame", id="no-columns"),
    pytest.param("gray", np.zeros((0,), np.uint8), ValueError, "frame", id="empty-1d"),
    pytest.param("bgr", np.uint8(7), TypeError, "frame", id="numpy-scalar"),
    pytest.param("bgr", np.array(7, np.uint8), ValueError, "frame", id="0d-array"),
    pytest.param("bgr", BGR[..., 0], ValueError, "frame", id="bgr-2d"),
    pytest.param("bgr", BGR[None], ValueError, "frame", id="bgr-4d"),
    pytest.param("bgr", frame_of((12, 16, 4)), ValueError, "frame", id="bgr-4-channels"),
    pytest.param("rgb", frame_of((12, 16, 1)), ValueError, "frame", id="rgb-1-channel"),
    pytest.param("bgra", BGR, ValueError, "frame", id="bgra-3-channels"),
    pytest.param("rgba", frame_of((12, 16, 2)), ValueError, "frame", id="rgba-2-channels"),
    pytest.param("gray", BGR, ValueError, "frame", id="gray-3-channels"),
    pytest.param("gray", frame_of((2, 12, 16, 1)), ValueError, "frame", id="gray-4d"),
    pytest.param("yuyv", BGR, ValueError, "frame", id="yuyv-3-channels"),
    pytest.param("yuyv", frame_of((12, 15, 2)), ValueError, "frame", id="yuyv-odd-width"),
    pytest.param("nv12", frame_of((18, 16, 1)), ValueError, "frame", id="nv12-3d"),
    pytest.param("nv12", frame_of((17, 16)), ValueError, "frame", id="nv12-rows-not-3-halves"),
    pytest.param("nv12", frame_of((18, 15)), ValueError, "frame", id="nv12-odd-width"),
    pytest.param("i420", frame_of((18, 15)), ValueError, "frame", id="i420-odd-width"),
    pytest.param("i420", frame_of((16, 16)), ValueError, "frame", id="i420-rows-not-3-halves"),
    pytest.param("i420", frame_of((18, 32))[:, :16], ValueError, "frame", id="i420-row-strided"),
    # Pixels not packed within a row.
    pytest.param("bgr", frame_of((12, 32, 3))[:, ::2], ValueError, "frame", id="column-step"),
    pytest.param("bgr", BGR[..., ::-1], ValueError, "frame", id="reversed-channels"),
    pytest.param("bgr", BGR[:, ::-1], ValueError, "frame", id="reversed-columns"),
    pytest.param("bgr", BGR[::-1], ValueError, "frame", id="reversed-rows"),
    pytest.param("bgr", BGR.transpose(1, 0, 2), ValueError, "frame", id="transposed"),
    pytest.param("bgr", np.asfortranarray(BGR), ValueError, "frame", id="fortran-order"),
    pytest.param("gray", frame_of((12, 16)).T, ValueError, "frame", id="gray-transposed"),
    pytest.param("gray", frame_of((12, 32))[:, ::2], ValueError, "frame", id="gray-column-step"),
    pytest.param("nv12", frame_of((18, 32))[:, ::2], ValueError, "frame", id="nv12-column-step"),
]


@pytest.mark.parametrize(("src", "frame", "error", "word"), BAD_FRAMES)
def test_bad_frame_is_rejected(src: str, frame: Any, error: type[Exception], word: str) -> None:
    with pytest.raises(error, match=word):
        edge.preprocess(frame, size=SIZE, src=src)


@pytest.mark.parametrize(
    "roi",
    [
        pytest.param((0, 0, 17, 12), id="too-wide"),
        pytest.param((0, 0, 16, 13), id="too-tall"),
        pytest.param((16, 0, 1, 1), id="x-past-the-edge"),
        pytest.param((0, 12, 1, 1), id="y-past-the-edge"),
        pytest.param((10, 5, 7, 7), id="overhangs-the-corner"),
    ],
)
def test_roi_outside_the_frame_is_rejected_per_call(roi: tuple[int, int, int, int]) -> None:
    pre = edge.Preprocessor(size=SIZE, roi=roi)  # valid on its own: the frame decides
    with pytest.raises(ValueError, match="roi"):
        pre(BGR)


# ---------------------------------------------------------------------------------- out

OUT_SHAPE = (1, SIZE[1], SIZE[0], 3)

# (out, exception); the preprocessor makes uint8 NHWC.
BAD_OUTS = [
    pytest.param(np.zeros(OUT_SHAPE).tolist(), TypeError, id="list"),
    pytest.param(np.zeros(OUT_SHAPE, np.float32), TypeError, id="float32"),
    pytest.param(np.zeros(OUT_SHAPE, np.int8), TypeError, id="int8"),
    pytest.param(
        np.zeros((1, SIZE[0], SIZE[1], 3), np.uint8), ValueError, id="width-height-swapped"
    ),
    pytest.param(np.zeros((1, 3, SIZE[1], SIZE[0]), np.uint8), ValueError, id="nchw-shape"),
    pytest.param(np.zeros(OUT_SHAPE[1:], np.uint8), ValueError, id="no-batch-axis"),
    pytest.param(
        np.zeros((1, SIZE[1], SIZE[0] * 2, 3), np.uint8)[:, :, ::2], ValueError, id="strided"
    ),
    pytest.param(np.zeros(OUT_SHAPE, np.uint8, order="F"), ValueError, id="fortran-order"),
]


@pytest.mark.parametrize(("out", "error"), BAD_OUTS)
def test_bad_out_is_rejected(out: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="out"):
        edge.preprocess(BGR, size=SIZE, out=out)


def test_read_only_out_is_rejected() -> None:
    out = np.zeros(OUT_SHAPE, np.uint8)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        edge.preprocess(BGR, size=SIZE, out=out)


def test_rejected_out_is_left_untouched() -> None:
    out = np.full((1, 3, SIZE[1], SIZE[0]), 42, np.uint8)
    with pytest.raises(ValueError, match="out"):
        edge.preprocess(BGR, size=SIZE, out=out)
    assert (out == 42).all()


# ----------------------------------------------------------------- keywords, at construction

CHOICES = {
    "src": ("bgr", "rgb", "bgra", "rgba", "gray", "nv12", "i420", "yuyv"),
    "dst": ("rgb", "bgr", "gray"),
    "layout": ("nhwc", "nchw"),
    "dtype": ("uint8", "int8", "float32"),
    "resize": ("area", "bilinear"),
    "fit": ("stretch", "letterbox", "crop"),
}


@pytest.mark.parametrize("keyword", CHOICES)
def test_unknown_choice_lists_the_choices(keyword: str) -> None:
    with pytest.raises(ValueError, match=keyword) as caught:
        edge.Preprocessor(size=SIZE, **{keyword: "xyz"})
    message = str(caught.value)
    assert all(repr(choice) in message for choice in CHOICES[keyword]), message


@pytest.mark.parametrize("keyword", CHOICES)
@pytest.mark.parametrize("value", [3, None, b"bgr", ["bgr"]], ids=["int", "none", "bytes", "list"])
def test_choice_of_wrong_type_is_a_type_error(keyword: str, value: Any) -> None:
    with pytest.raises(TypeError, match=keyword):
        edge.Preprocessor(size=SIZE, **{keyword: value})


# (keywords, exception, a word the message must contain)
BAD_KEYWORDS = [
    pytest.param({"size": (0, 6)}, ValueError, "size", id="size-zero-width"),
    pytest.param({"size": (8, 0)}, ValueError, "size", id="size-zero-height"),
    pytest.param({"size": (-8, 6)}, ValueError, "size", id="size-negative"),
    pytest.param({"size": (8,)}, ValueError, "size", id="size-one-value"),
    pytest.param({"size": (8, 6, 3)}, ValueError, "size", id="size-three-values"),
    pytest.param({"size": (2**15 + 1, 6)}, ValueError, "size", id="size-too-large"),
    pytest.param({"size": 224}, TypeError, "size", id="size-int"),
    pytest.param({"size": "224x224"}, TypeError, "size", id="size-str"),
    pytest.param({"size": (8.5, 6)}, TypeError, "size", id="size-float"),
    pytest.param({"size": None}, TypeError, "size", id="size-none"),
    pytest.param({"size": (2**31, 6)}, TypeError, "size", id="size-beyond-int"),
    pytest.param({"std": 0}, ValueError, "std", id="std-zero"),
    pytest.param({"std": (1, 0, 1)}, ValueError, "std", id="std-one-channel-zero"),
    pytest.param({"std": float("nan")}, ValueError, "std", id="std-nan"),
    pytest.param({"std": float("inf")}, ValueError, "std", id="std-inf"),
    pytest.param({"std": (1, 2)}, ValueError, "std", id="std-two-values"),
    pytest.param({"std": "1"}, TypeError, "std", id="std-str"),
    pytest.param({"mean": (1, 2)}, ValueError, "mean", id="mean-two-values"),
    pytest.param({"mean": (1, 2, 3, 4)}, ValueError, "mean", id="mean-four-values"),
    pytest.param({"mean": (1, 2, 3), "dst": "gray"}, ValueError, "mean", id="mean-three-for-gray"),
    pytest.param({"mean": float("nan")}, ValueError, "mean", id="mean-nan"),
    pytest.param({"mean": ("a", 2, 3)}, TypeError, "mean", id="mean-str-value"),
    pytest.param({"dtype": "float32", "scale": 0.5}, ValueError, "scale", id="float32-scale"),
    pytest.param({"dtype": "float32", "zero_point": 3}, ValueError, "zero_point", id="float32-zp"),
    pytest.param({"dtype": "int8", "scale": 0}, ValueError, "scale", id="scale-zero"),
    pytest.param({"dtype": "int8", "scale": -0.5}, ValueError, "scale", id="scale-negative"),
    pytest.param({"dtype": "int8", "scale": float("nan")}, ValueError, "scale", id="scale-nan"),
    pytest.param(
        {"dtype": "int8", "zero_point": float("inf")}, ValueError, "zero_point", id="zp-inf"
    ),
    pytest.param({"dtype": "int8", "scale": "0.5"}, TypeError, "scale", id="scale-str"),
    pytest.param({"dtype": "int8", "zero_point": "3"}, TypeError, "zero_point", id="zp-str"),
    pytest.param({"pad_value": float("nan")}, ValueError, "pad_value", id="pad-nan"),
    pytest.param({"pad_value": "grey"}, TypeError, "pad_value", id="pad-str"),
    pytest.param({"roi": (-1, 0, 4, 4)}, ValueError, "roi", id="roi-negative-x"),
    pytest.param({"roi": (0, -1, 4, 4)}, ValueError, "roi", id="roi-negative-y"),
    pytest.param({"roi": (0, 0, 0, 4)}, ValueError, "roi", id="roi-zero-width"),
    pytest.param({"roi": (0, 0, 4, 0)}, ValueError, "roi", id="roi-zero-height"),
    pytest.param({"roi": (0, 0, 4)}, ValueError, "roi", id="roi-three-values"),
    pytest.param({"roi": (0.5, 0, 4, 4)}, TypeError, "roi", id="roi-float"),
    pytest.param({"roi": "all"}, TypeError, "roi", id="roi-str"),
    pytest.param({"sise": SIZE}, TypeError, "sise", id="misspelt-keyword"),
]


@pytest.mark.parametrize(("keywords", "error", "word"), BAD_KEYWORDS)
def test_bad_keyword_is_rejected_at_construction(
    keywords: dict[str, Any], error: type[Exception], word: str
) -> None:
    keywords = {"size": SIZE} | keywords
    with pytest.raises(error, match=word):
        edge.Preprocessor(**keywords)
    with pytest.raises(error, match=word):  # the one-shot function says the same
        edge.preprocess(BGR, **keywords)


# -------------------------------------------------------------- crashes, in a subprocess

# ROI corners past INT_MAX: x + width overflows a C int. A crash here would take the test
# process down with it, so each runs in a fresh interpreter.
_OVERFLOWING_ROI = """
import numpy as np, edge
try:
    edge.preprocess(np.zeros((12, 16, 3), np.uint8), size=(8, 6), roi={roi})
except ValueError as e:
    assert "roi" in str(e), e
    print("ValueError")
"""
INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    "roi",
    [(INT_MAX, 0, 1, 1), (0, INT_MAX, 1, 1), (1, 0, INT_MAX, 1), (0, 1, 1, INT_MAX)],
    ids=["x", "y", "width", "height"],
)
def test_roi_that_overflows_int_is_rejected_not_read_out_of_bounds(
    roi: tuple[int, int, int, int],
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OVERFLOWING_ROI.format(roi=roi))],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[:2000]}"
    assert result.stdout.strip() == "ValueError"


# ------------------------------------------------------------------------------- fuzzing

# Mostly sensible values, so that most calls get as far as the kernel; then, in some calls,
# one or two keywords replaced by a wrong value or a value of the wrong type.
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.sampled_from(choices) for name, choices in CHOICES.items()},
    "size": st.tuples(st.integers(1, 40), st.integers(1, 40)),
    "mean": st.none()
    | st.floats(-300, 300)
    | st.lists(st.floats(-300, 300), min_size=3, max_size=3),
    "std": st.none()
    | st.floats(0.01, 300)
    | st.lists(st.floats(-300, -0.01), min_size=1, max_size=3),
    "scale": st.none() | st.floats(0.001, 10),
    "zero_point": st.none() | st.floats(-300, 300),
    "pad_value": st.floats(-300, 300),
    "roi": st.none() | st.tuples(*[st.integers(0, 6)] * 2, *[st.integers(1, 12)] * 2),
}
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.sampled_from(["xyz", "", 3, None, b"rgb", ("rgb",)]) for name in CHOICES},
    "size": st.sampled_from(
        [(0, 4), (-1, 4), (8,), (8, 6, 1), 8, "8x6", (8.0, 6), None, (2**15 + 1, 4), (2**31, 4)]
    ),
    "mean": st.sampled_from(
        [float("nan"), float("inf"), (), (1, 2), (1, 2, 3, 4), "a", ("a", 1, 2)]
    ),
    "std": st.sampled_from([0, -0.0, float("nan"), float("-inf"), (1, 0, 1), (), "s", [None]]),
    "scale": st.sampled_from([0, -1, float("nan"), float("inf"), "x", [1]]),
    "zero_point": st.sampled_from([float("nan"), float("-inf"), "x", [1]]),
    "pad_value": st.sampled_from([float("nan"), float("inf"), "x", None]),
    "roi": st.sampled_from(
        [(-1, 0, 2, 2), (0, 0, 0, 2), (0, 0, 2), (0.5, 0, 1, 1), "all", (0, 0, 99, 99)]
    ),
}
FRAME_DTYPES = [np.uint8] * 12 + [np.int8, np.uint16, np.float32, np.bool_]
VIEWS = ["as-is"] * 6 + ["step", "reverse", "transpose", "fortran", "crop", "new-axis", "read-only"]


def view_of(array: np.ndarray, view: str, axis: int) -> np.ndarray:
    """`array` seen through one kind of view: strided, reversed, transposed, ..."""
    every = (slice(None),) * min(axis, max(array.ndim - 1, 0))
    if array.ndim == 0 or view == "as-is":
        return array
    if view == "step":
        return array[(*every, slice(None, None, 2))]
    if view == "reverse":
        return array[(*every, slice(None, None, -1))]
    if view == "transpose":
        return array.T
    if view == "fortran":
        return np.asfortranarray(array)
    if view == "crop":
        return array[(*every, slice(1, None))]
    if view == "new-axis":
        return array[..., None]
    array.flags.writeable = False  # "read-only": a frame is only read, so this must work
    return array


def expected_shape(size: tuple[int, int], layout: str, dst: str) -> tuple[int, ...]:
    width, height = size
    channels = 1 if dst == "gray" else 3
    return (1, height, width, channels) if layout == "nhwc" else (1, channels, height, width)


@st.composite
def calls(draw: st.DrawFn) -> tuple[Any, dict[str, Any], bool]:
    """(frame, keywords, whether to pass a matching `out`) for one edge.Preprocessor call."""
    keywords = {
        name: draw(GOOD_VALUES[name]) for name in draw(st.sets(st.sampled_from(list(GOOD_VALUES))))
    }
    if draw(st.integers(0, 2)) == 0:
        for name in draw(st.sets(st.sampled_from(list(BAD_VALUES)), min_size=1, max_size=2)):
            keywords[name] = draw(BAD_VALUES[name])
    keywords.setdefault("size", SIZE)
    src = keywords.get("src", "bgr")
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from([None, 3, "frame", [[1, 2], [3, 4]]])), keywords, False
    if draw(st.integers(0, 3)) == 0 or src not in CHOICES["src"]:  # any shape at all
        shape = tuple(draw(st.lists(st.integers(0, 14), max_size=4)))
    else:  # the right kind of shape for src, of any size (odd ones too)
        height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
        planar = (height * 3 // 2, width)
        shape = {
            "gray": (height, width),
            "nv12": planar,
            "i420": planar,
            "yuyv": (height, width, 2),
            "bgra": (height, width, 4),
            "rgba": (height, width, 4),
        }.get(src, (height, width, 3))
    array = frame_of(shape, draw(st.sampled_from(FRAME_DTYPES)))
    frame = view_of(array, draw(st.sampled_from(VIEWS)), draw(st.integers(0, 3)))
    return frame, keywords, draw(st.booleans())


@given(call=calls())
def test_random_input_returns_the_right_array_or_raises_value_or_type_error(
    call: tuple[Any, dict[str, Any], bool],
) -> None:
    frame, keywords, with_out = call
    try:
        pre = edge.Preprocessor(**keywords)
    except (ValueError, TypeError):
        event("rejected at construction")
        return
    settings_ = {"layout": "nhwc", "dst": "rgb", "dtype": "uint8"} | keywords
    shape = expected_shape(keywords["size"], settings_["layout"], settings_["dst"])
    assert (pre.shape, pre.dtype) == (shape, np.dtype(settings_["dtype"]))
    out = np.empty(shape, pre.dtype) if with_out else None
    try:
        result = pre(frame, out)
    except (ValueError, TypeError):
        event("rejected per call")
        return
    event("processed")
    assert isinstance(result, np.ndarray)
    assert (result.shape, result.dtype) == (shape, pre.dtype)
    if out is not None:
        assert result is out
