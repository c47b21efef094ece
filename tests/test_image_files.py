"""An image directory as a source, with the files a user really has: 16-bit PNGs (scaled to
8 bits and used), a PNG whose header declares 20000×20000 (refused before decoding: the test
patches a small PNG's IHDR, so nothing large is ever allocated), files OpenCV cannot decode.
What was skipped is counted and its first reason said, in the summary and on stderr."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.runtime.capture import Capture, SourceConfig
from edge.runtime.images import MAX_PIXELS, MAX_SIDE, Unusable, header_size, read_image


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> None:
    """A valid 8×8 PNG whose IHDR (and its CRC) then says ``width``×``height``."""
    cv2.imwrite(str(path), np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def grey16(path: Path, value: int, shape: tuple[int, int] = (48, 64)) -> None:
    assert cv2.imwrite(str(path), np.full(shape, value, np.uint16))


def test_16_bit_grey_pngs_are_scaled_to_8_bits_and_used(tmp_path: Path) -> None:
    for i, value in enumerate((0, 0x8000, 0xFFFF)):
        grey16(tmp_path / f"{i}.png", value)
    capture = Capture(SourceConfig(uri=str(tmp_path))).start()
    frames = [frame.image for frame in capture]
    assert [f.dtype for f in frames] == [np.uint8] * 3
    assert [int(f.max()) for f in frames] == [0, 0x80, 0xFF]
    assert capture.skipped == 0


def test_a_16_bit_colour_png_keeps_its_colours(tmp_path: Path) -> None:
    bgr = np.zeros((16, 16, 3), np.uint16)
    bgr[..., 2] = 0xFFFF  # red
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = read_image(str(tmp_path / "red.png"))
    assert image.dtype == np.uint8
    assert image.shape == (16, 16, 3)
    assert image[..., 2].min() == 255
    assert image[..., :2].max() == 0


def test_a_png_beyond_the_frame_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    huge_png(tmp_path / "huge.png")
    with open(tmp_path / "huge.png", "rb") as f:
        assert header_size(f) == (20000, 20000)
    with pytest.raises(Unusable, match=r"20000×20000 is beyond the frame limit"):
        read_image(str(tmp_path / "huge.png"))


@pytest.mark.parametrize("size", [(MAX_SIDE + 1, 16), (16, MAX_SIDE + 1), (12000, 9000)])
def test_the_frame_limit_is_per_side_and_in_pixels(tmp_path: Path, size: tuple[int, int]) -> None:
    huge_png(tmp_path / "big.png", *size)
    with pytest.raises(Unusable, match="beyond the frame limit"):
        read_image(str(tmp_path / "big.png"))
    assert size[0] * size[1] > MAX_PIXELS or max(size) > MAX_SIDE


def test_a_jpeg_size_is_read_from_its_frame_header() -> None:
    # Through an APP segment (EXIF-like) before the frame header, as cameras write them.
    ok, encoded = cv2.imencode(".jpg", np.zeros((30, 50, 3), np.uint8))
    assert ok
    jpeg = encoded.tobytes()
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 1000) + b"\x00" * 1000
    assert header_size(io.BytesIO(jpeg)) == (50, 30)
    assert header_size(io.BytesIO(jpeg[:2] + app1 + jpeg[2:])) == (50, 30)
    assert header_size(io.BytesIO(b"not an image at all")) is None


def test_skipped_files_are_counted_with_the_first_reason(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    grey16(images / "a.png", 0x4000)
    huge_png(images / "b.png")
    (images / "c.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(images / "d.png"), np.full((48, 64, 3), 90, np.uint8))
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--source", "images", "--no-metrics",
         "--json", "s.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 2
    first = "images/b.png: 20000×20000 is beyond the frame limit (16384 a side, 100 Mpx)"
    assert summary["skipped"] == {"files": 2, "first": first}
    said = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert said == [f"edge run: 2 files of images skipped, the first {first}"]
    assert f"skipped 2 files (the first: {first})" in done.stdout


def test_a_directory_of_only_unusable_images_fails_at_start(tmp_path: Path) -> None:
    huge_png(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    with pytest.raises(SourceError, match=r"no usable image: 2 skipped, the first .*a\.png: "):
        Capture(SourceConfig(uri=str(tmp_path)))
