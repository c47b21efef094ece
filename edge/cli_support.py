"""What the subcommands of ``edge`` share: their JSON output, the ``--backend`` choice, progress
bars and quiet video logs. Light to import: ``edge --help`` loads this and nothing heavier."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from edge.errors import UsageError
from edge.model.backends import BACKEND_CHOICES

T = TypeVar("T")


def add_backend_argument(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument(
        "--backend", default=default, choices=BACKEND_CHOICES, help="runtime (default: auto)"
    )


def check_writable(*paths: Path | None) -> None:
    """Refuses an output path before the work that would fill it, not after: a directory, a
    file that cannot be written, or a parent that cannot be written or created (the nearest
    one that exists is not a writable directory)."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{path}: is a directory, not a file to write")
        if path.exists():
            if not os.access(path, os.W_OK):
                raise UsageError(f"{path}: cannot write the file (permission or read-only disk)")
            continue
        # write_json creates missing parents: the first one that exists must take them.
        parent = path.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"{path}: cannot create it: {parent} is not a directory")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"{path}: cannot write into {parent} (permission or read-only disk)")


def write_json(path: Path | None, doc: dict[str, Any]) -> None:
    """Writes the one JSON object of a ``--json PATH`` option (NumPy scalars as floats)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=float) + "\n")


def progress(label: str) -> Callable[[Iterable[T]], Iterable[T]]:
    """A progress bar on stderr for long loops (quiet when stderr is not a terminal)."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterable[T]:
        bar: Iterable[T] = tqdm(
            items, desc=label, unit="img", leave=False, disable=None, file=sys.stderr
        )
        return bar

    return wrap


def quiet_video_logs() -> None:
    """FFmpeg and OpenCV log every broken stream and unreadable file on stderr; ``edge run``
    reports those itself, in one line, and counts reconnects. Set the variables to see them."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
