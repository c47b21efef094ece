"""Image files of a directory source: their size read from the header before decoding, and
their samples brought to the 8 bits the loop works in.

A PNG or JPEG whose header declares a frame beyond :data:`MAX_SIDE` or :data:`MAX_PIXELS` is
refused before a byte of it is decoded: a 20000×20000 PNG would cost 1.2 GB (2.4 GB at 16 bit)
to decode into a frame that no model input needs. Other formats are checked after decoding.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

#: The largest frame side the loop takes, as for a synthetic source.
MAX_SIDE = 16384
#: The largest frame in pixels: 100 Mpx is 300 MB as 8-bit BGR.
MAX_PIXELS = 100_000_000

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (SOF0..SOF15), except DHT (C4), JPG (C8) and DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers without a length: TEM, RST0..7, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xD9)}


class Unusable(ValueError):
    """An image file the loop skips; the message says why, in a few words."""


def header_size(f: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame segment; None for other
    formats, and for a header too damaged to say (the decoder then has its say)."""
    head = f.read(24)
    if head.startswith(_PNG) and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if not head.startswith(b"\xff\xd8"):
        return None
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            return None  # not at a marker: damaged
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _STANDALONE:
            continue
        length = f.read(2)
        if len(length) < 2:
            return None
        (n,) = struct.unpack(">H", length)
        if code in _SOF:
            body = f.read(5)
            if len(body) < 5:
                return None
            height, width = struct.unpack(">HH", body[1:5])
            return width, height
        if code == 0xDA:  # start of scan before any frame header: damaged
            return None
        f.seek(n - 2, 1)


def check_size(width: int, height: int) -> None:
    """Unusable when a frame of ``width``×``height`` is beyond the loop's limits."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise Unusable(
            f"{width}×{height} is beyond the frame limit ({MAX_SIDE} a side, "
            f"{MAX_PIXELS // 1_000_000} Mpx)"
        )
    if width < 1 or height < 1:
        raise Unusable(f"{width}×{height}: an empty frame")


def to_8bit(image: npt.NDArray[Any]) -> Image:
    """Grey or BGR, 8 bits a sample. 16-bit samples are scaled (the top 8 bits, as OpenCV
    converts them): a 16-bit grey camera frame is still a frame. An alpha channel is
    dropped, and grey with alpha becomes grey."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise Unusable(f"{image.dtype} samples (8 or 16-bit integers expected)")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1 or channels == 2:
            image = image[..., 0]
        elif channels >= 3:
            image = image[..., :3]
    if image.ndim not in (2, 3):
        raise Unusable(f"an array of {image.ndim} dimensions, not an image")
    return np.ascontiguousarray(image)


def read_image(path: str) -> Image:
    """The image at ``path`` as the loop takes it; :class:`Unusable` saying why not."""
    try:
        with open(path, "rb") as f:
            size = header_size(f)
    except OSError as exc:
        raise Unusable(exc.strerror or str(exc)) from None
    if size is not None:
        check_size(*size)
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise Unusable("OpenCV cannot decode it (damaged, or not an image)")
    check_size(image.shape[1], image.shape[0])
    return to_8bit(image)


__all__ = ["MAX_PIXELS", "MAX_SIDE", "Unusable", "check_size", "header_size", "read_image"]
