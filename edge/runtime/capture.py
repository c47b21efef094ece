"""Frame capture: one thread per source, a bounded queue, reconnects with backoff.

A live source (camera, stream) keeps only the latest frames: when processing falls behind,
the oldest frame is dropped and counted, so the loop never works through a backlog of the
past. A file is read without dropping (unless paced in real time), and ends.
"""

from __future__ import annotations

import glob
import math
import os
import queue
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import cv2
import msgspec
import numpy as np
import numpy.typing as npt

from edge.config import Section, at_least, positive, require
from edge.defaults import BUNDLED_SOURCE
from edge.errors import SourceError
from edge.runtime.images import Unusable, read_image
from edge.upload.target import redact_uri

Image = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
_SYNTHETIC = re.compile(r"synthetic:(\d+)x(\d+)")
#: The port a stream URL without one connects to.
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
#: Cameras and network streams: live sources, read through OpenCV, never a path to check.
LIVE_PREFIXES = ("/dev/", "rtsp://", "rtsps://", "http://", "https://")
# OpenCV reads FFmpeg's options from the environment at open time: serialise the opens.
_FFMPEG_OPTIONS_LOCK = threading.Lock()


class SourceConfig(Section):
    """Where frames come from (``[source]``)."""

    #: Camera index ("0"), device ("/dev/video0"), video file, rtsp:// or http(s):// stream,
    #: image directory or glob, or "synthetic:WxH" (a moving test pattern).
    uri: str = str(BUNDLED_SOURCE)
    #: Pace a file at its frame rate and drop frames like a live source would.
    realtime: bool = False
    #: Frames held between capture and processing; a live source keeps only the latest.
    queue: int = 2
    #: Watchdog: no frame for this many seconds → reconnect.
    timeout: float = 5.0
    #: Reconnect backoff: first delay, cap (seconds), doubled per failure, with ±25% jitter.
    backoff: float = 0.5
    backoff_max: float = 30.0
    #: Frames per second of a synthetic source or an image directory.
    fps: float = 15.0
    #: FFmpeg options for streams, e.g. {rtsp_transport = "tcp"}.
    options: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        at_least("source.queue", self.queue, 1)
        positive("source.timeout", self.timeout)
        positive("source.backoff", self.backoff)
        require(
            self.backoff <= self.backoff_max < math.inf,
            "source.backoff_max",
            f"must be ≥ backoff ({self.backoff:g}) and finite",
            self.backoff_max,
        )
        positive("source.fps", self.fps)


@dataclass(frozen=True, slots=True)
class Frame:
    id: int  # counted from 0 over the whole run, across reconnects
    t: float  # capture time, seconds since the Unix epoch: for the record, never for durations
    # time.monotonic() at capture: windows and rate limits are measured on it, since the wall
    # clock steps (NTP, a device that boots in 1970) and would stretch or freeze them.
    monotonic: float
    clock: float  # time.perf_counter() at capture: latencies are measured from here
    image: Image  # H×W×3 BGR or H×W grey; never written to after capture
    decode: float  # seconds spent reading and decoding it


class Reader(Protocol):
    """An opened source. ``read`` returns None at the end of a file or when a live source
    failed (then the capture reconnects)."""

    live: bool
    fps: float | None

    def read(self) -> Image | None: ...

    def close(self) -> None: ...


class VideoReader:
    """A camera, video file or network stream through OpenCV (FFmpeg or V4L2)."""

    def __init__(self, uri: str, config: SourceConfig, *, diagnose: bool = True) -> None:
        target: str | int = int(uri) if uri.isdigit() else uri
        self.live = isinstance(target, int) or uri.startswith(LIVE_PREFIXES)
        timeout_ms = int(config.timeout * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC]
        params.append(timeout_ms)
        backend = (
            cv2.CAP_ANY if isinstance(target, int) or uri.startswith("/dev/") else cv2.CAP_FFMPEG
        )
        with _FFMPEG_OPTIONS_LOCK:
            previous = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            if config.options:
                options = "|".join(f"{k};{v}" for k, v in config.options.items())
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
            try:
                self._cap = cv2.VideoCapture(target, backend, params)
            finally:
                if previous is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = previous
        if not self._cap.isOpened():
            self._cap.release()
            why = _why_not_opened(target, config) if diagnose else "cannot open it"
            raise SourceError(f"source {shown(uri)!r}: {why}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None
        # FFmpeg opens a truncated or mislabelled file and fails only at the first frame:
        # read it now, so that a file with nothing to show fails at start, in one line.
        self._first: Image | None = None
        if not self.live:
            self._first = self._read()
            if self._first is None:
                self._cap.release()
                raise SourceError(
                    f"source {shown(uri)!r}: not a video (no frame could be decoded; "
                    "is the file truncated?)"
                )

    def _read(self) -> Image | None:
        ok, image = self._cap.read()
        return image if ok else None  # type: ignore[return-value] # 8-bit capture

    def read(self) -> Image | None:
        if self._first is not None:
            image, self._first = self._first, None
            return image
        return self._read()

    def close(self) -> None:
        self._cap.release()


class ImageDirReader:
    """Every image of a directory or glob, in name order. A file the loop cannot take (not
    decodable, beyond the frame limit, float samples) is skipped, counted, and the first
    reason kept; 16-bit images are scaled to 8 bits. A source none of whose files is usable
    fails at start, like a video without a frame."""

    live = False

    def __init__(self, uri: str, config: SourceConfig) -> None:
        directory = Path(uri).is_dir()
        pattern = str(Path(uri) / "*") if directory else uri
        found = sorted(p for p in glob.glob(pattern) if Path(p).is_file())
        self.paths = [p for p in found if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not self.paths:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            if not found:
                what = "the directory is empty" if directory else "the pattern matches no file"
            else:
                what = f"{len(found)} file{'s' * (len(found) > 1)}, no image ({kinds})"
            raise SourceError(f"source {uri!r}: no images: {what}")
        self.fps: float | None = config.fps
        self.skipped = 0
        #: "path: why" of the first file skipped.
        self.first_skipped: str | None = None
        self._next = iter(self.paths)
        self._first = self._read()
        if self._first is None:
            raise SourceError(
                f"source {uri!r}: no usable image: {self.skipped} skipped, the first "
                f"{self.first_skipped}"
            )

    def _read(self) -> Image | None:
        for path in self._next:
            try:
                return read_image(path)
            except Unusable as exc:
                self.skipped += 1
                if self.first_skipped is None:
                    self.first_skipped = f"{path}: {exc}"
        return None

    def read(self) -> Image | None:
        if self._first is not None:
            image, self._first = self._first, None
            return image
        return self._read()

    def close(self) -> None:
        pass


class SyntheticReader:
    """A test pattern of a given size: a few prepared frames in turn, so that reading costs
    nothing and benchmarks measure the rest of the loop."""

    live = False

    def __init__(self, width: int, height: int, config: SourceConfig) -> None:
        if not (16 <= width <= 16384 and 16 <= height <= 16384):
            raise SourceError(
                f"source 'synthetic:{width}x{height}': the size is out of range "
                "(16 to 16384 pixels a side)"
            )
        self.fps: float | None = config.fps
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        frames = []
        for i in range(4):
            phase = i * np.pi / 2
            base = 128 + 60 * np.sin(x / 37.0 + phase) * np.cos(y / 23.0 - phase)
            bar = (np.abs(x - (0.2 + 0.2 * i) * width) < width / 20) * 60.0
            frame = np.clip(base + bar, 0, 255).astype(np.uint8)
            image = np.stack([frame, np.roll(frame, 7, axis=1), np.roll(frame, 13, axis=0)], -1)
            image.flags.writeable = False
            frames.append(image)
        self._frames = frames
        self._i = 0

    def read(self) -> Image | None:
        image = self._frames[self._i % len(self._frames)]
        self._i += 1
        return image

    def close(self) -> None:
        pass


def open_reader(uri: str, config: SourceConfig, *, diagnose: bool = True) -> Reader:
    """The reader for a source URI; :class:`SourceError` saying why when it cannot be opened
    (``diagnose=False``: without probing a stream's address for the reason)."""
    if uri.startswith("synthetic:"):
        synthetic = _SYNTHETIC.fullmatch(uri)
        if not synthetic:
            raise SourceError(f"source {uri!r}: synthetic: needs WxH, e.g. synthetic:640x480")
        return SyntheticReader(int(synthetic[1]), int(synthetic[2]), config)
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    if uri.isdigit() or uri.startswith("/dev/"):
        _check_camera(uri)
    elif not uri.startswith(LIVE_PREFIXES):
        if Path(uri).is_dir() or glob.has_magic(uri):
            return ImageDirReader(uri, config)
        if not Path(uri).exists():
            raise SourceError(f"source {uri!r}: no such file or directory")
        if not Path(uri).is_file():
            raise SourceError(f"source {uri!r}: not a video file, an image directory or a camera")
        if Path(uri).stat().st_size == 0:
            raise SourceError(f"source {uri!r}: not a video (the file is empty)")
    return VideoReader(uri, config, diagnose=diagnose)


def shown(uri: str) -> str:
    """A source URI as messages and summaries show it: without ``user:password@`` and with
    query values (a stream's token) masked."""
    return redact_uri(uri) if "://" in uri else uri


def _cameras() -> str:
    found = sorted(glob.glob("/dev/video*"))
    return f"cameras here: {', '.join(found)}" if found else "this machine has no /dev/video*"


def _check_camera(uri: str) -> None:
    """A camera that is not there, said before OpenCV probes its backends for it."""
    if not sys.platform.startswith("linux"):
        return  # camera indices map to devices only on Linux (V4L2)
    device = f"/dev/video{uri}" if uri.isdigit() else uri
    if not os.path.exists(device):
        what = f"no camera at index {uri} (no {device})" if uri.isdigit() else "no such device"
        raise SourceError(f"source {uri!r}: {what}; {_cameras()}")


def _why_not_opened(target: str | int, config: SourceConfig) -> str:
    """Why OpenCV could not open a source, as far as can be told from here."""
    if isinstance(target, int) or target.startswith("/dev/"):
        return "cannot open the camera (in use by another program, or no permission?)"
    if not target.startswith(LIVE_PREFIXES):
        return "not a video (FFmpeg cannot read the file)"
    parts = urlsplit(target)
    listening = any("listen" in f"{k}={v}" for k, v in config.options.items())
    if listening or not parts.hostname:
        return "cannot open the stream"
    # OpenCV says nothing of why; one TCP connection to the same address tells the cases a
    # person can act on apart.
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    where = f"{parts.hostname}:{port}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=min(config.timeout, 5.0)):
            pass
    except ConnectionRefusedError:
        return f"connection refused by {where} (is the camera or server running?)"
    except socket.gaierror:
        return f"unknown host {parts.hostname!r}"
    except TimeoutError:
        return f"no answer from {where} within {min(config.timeout, 5.0):g} s"
    except OSError as exc:
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"{where} answered but sent no video (wrong path or credentials?)"


class Capture:
    """Reads a source on its own thread into a bounded queue of :class:`Frame`."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self.last_frame = time.monotonic()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=config.queue)
        self._stop = threading.Event()
        self._reader = open_reader(config.uri, config)  # fails here, at start, not later
        self.live = self._reader.live
        self._thread = threading.Thread(target=self._run, name="edge-capture", daemon=True)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def skipped(self) -> int:
        """Files of an image directory that were not frames (see :class:`ImageDirReader`)."""
        return int(getattr(self._reader, "skipped", 0))

    @property
    def first_skipped(self) -> str | None:
        """The first of them and why: "path: reason"."""
        first: str | None = getattr(self._reader, "first_skipped", None)
        return first

    def start(self) -> Capture:
        self.connected = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading; frames already queued are still handed out, then the end."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def close(self) -> None:
        """Release a source that was opened but never started (a run that could not begin)."""
        if self._thread.ident is None:
            self._reader.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            yield frame

    def _run(self) -> None:
        reader: Reader | None = self._reader
        drops = self.live or self.config.realtime
        pace = self.config.realtime and not self.live
        failures = 0
        start = time.perf_counter()
        try:
            while not self._stop.is_set():
                if reader is None:
                    reader = self._reconnect(failures)
                    failures += 1
                    continue
                t0 = time.perf_counter()
                image = reader.read()
                now = time.perf_counter()
                if image is None:
                    if not reader.live:
                        break  # the end of a file or directory
                    reader.close()
                    reader, self.connected = None, False
                    continue
                failures = 0
                if pace and reader.fps:
                    ahead = start + self.frames / reader.fps - now
                    if ahead > 0 and self._stop.wait(ahead):
                        break
                mono = time.monotonic()
                frame = Frame(self.frames, time.time(), mono, time.perf_counter(), image, now - t0)
                self.frames += 1
                self.last_frame = mono
                self._put(frame, drops)
        finally:
            if reader is not None:
                reader.close()
            self._put_end()

    def _reconnect(self, failures: int) -> Reader | None:
        delay = min(self.config.backoff_max, self.config.backoff * 2.0**failures)
        if self._stop.wait(delay * random.uniform(0.75, 1.25)):
            return None
        self.reconnects += 1
        try:
            # No probe for the reason: nobody reads it, and a host that is down would make
            # each attempt wait out a second timeout.
            reader = open_reader(self.config.uri, self.config, diagnose=False)
        except SourceError:
            return None
        self.connected = True
        return reader

    def _put(self, frame: Frame, drops: bool) -> None:
        if drops:
            while True:
                try:
                    self._queue.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _put_end(self) -> None:
        # At the end of a file every queued frame is still processed; after stop() the frames
        # not yet taken are given up to make room, so that the end gets through at once.
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
