"""Frame preprocessing: a camera frame in, a model's input tensor out, in one C++ pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge._native import _core

Src = Literal["bgr", "rgb", "bgra", "rgba", "gray", "nv12", "i420", "yuyv"]
Dst = Literal["rgb", "bgr", "gray"]
Layout = Literal["nhwc", "nchw"]
DType = Literal["uint8", "int8", "float32"]
ResizeMethod = Literal["area", "bilinear"]
Fit = Literal["stretch", "letterbox", "crop"]
PerChannel = float | Sequence[float] | None


class Preprocessor(_core.Preprocessor):
    """Turns raw frames into a model's input tensor; keywords are checked once, here.

    ``size`` is ``(width, height)``. The output is ``1×H×W×C`` (``nhwc``) or ``1×C×H×W``
    (``nchw``). ``mean`` and ``std`` are in pixel units: value = (pixel − mean) / std per
    channel. For ``uint8``/``int8`` outputs, ``scale`` and ``zero_point`` quantize that value:
    round(value / scale + zero_point), clamped to the type. ``resize="area"`` matches
    OpenCV's ``INTER_AREA`` and ``"bilinear"`` its ``INTER_LINEAR``. ``roi=(x, y, w, h)``
    crops the frame first; ``fit`` is ``stretch``, ``letterbox`` (border ``pad_value``) or
    ``crop`` (centre crop to the output's aspect ratio).

    Calling it is thread-safe and releases the GIL::

        >>> import numpy as np, edge
        >>> pre = edge.Preprocessor(size=(224, 224), dtype="float32", mean=127.0, std=128.0)
        >>> pre(np.zeros((480, 640, 3), np.uint8)).shape
        (1, 224, 224, 3)
    """

    def __init__(
        self,
        *,
        size: tuple[int, int],
        src: Src = "bgr",
        dst: Dst = "rgb",
        layout: Layout = "nhwc",
        dtype: DType = "uint8",
        resize: ResizeMethod = "area",
        mean: PerChannel = None,
        std: PerChannel = None,
        scale: float | None = None,
        zero_point: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
        fit: Fit = "stretch",
        pad_value: float = 0.0,
    ) -> None:
        super().__init__(
            size=size,
            src=src,
            dst=dst,
            layout=layout,
            dtype=dtype,
            resize=resize,
            mean=mean,
            std=std,
            scale=scale,
            zero_point=zero_point,
            roi=roi,
            fit=fit,
            pad_value=pad_value,
        )


def preprocess(
    frame: npt.NDArray[np.uint8],
    *,
    size: tuple[int, int],
    src: Src = "bgr",
    dst: Dst = "rgb",
    layout: Layout = "nhwc",
    dtype: DType = "uint8",
    resize: ResizeMethod = "area",
    mean: PerChannel = None,
    std: PerChannel = None,
    scale: float | None = None,
    zero_point: float | None = None,
    roi: tuple[int, int, int, int] | None = None,
    fit: Fit = "stretch",
    pad_value: float = 0.0,
    out: npt.NDArray[np.generic] | None = None,
) -> npt.NDArray[np.generic]:
    """Preprocesses one frame; see :class:`Preprocessor` (build one to process a stream)."""
    pre = Preprocessor(
        size=size,
        src=src,
        dst=dst,
        layout=layout,
        dtype=dtype,
        resize=resize,
        mean=mean,
        std=std,
        scale=scale,
        zero_point=zero_point,
        roi=roi,
        fit=fit,
        pad_value=pad_value,
    )
    return pre(frame, out)
