"""``edge upload``: send the buffer's records to the fleet's store, once or every interval."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec

from edge.cli_support import check_writable, write_json
from edge.errors import UsageError
from edge.records import Outbox
from edge.upload.config import UploadConfig, default_target
from edge.upload.registry import open_target
from edge.upload.target import StoreError
from edge.upload.uploader import Uploader

#: Where ``edge upload`` keeps the journal of the batch in flight, inside the data directory.
STATE_DIR = "upload"


def configure(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``edge upload`` to its parser."""
    p.description = (
        "Send the buffer's flagged frames (image, JSON sidecar, a Label Studio manifest per "
        "batch) to the target; a record is deleted locally only once the store confirmed it."
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="drain the buffer now and exit; without it, upload every interval until stopped",
    )
    p.add_argument(
        "--upload",
        metavar="URI",
        help="s3://bucket/prefix, https://host/path or file:///dir (default: DATA_DIR/outbox)",
    )
    p.add_argument(
        "--data-dir", type=Path, default=Path("edge-data"), help="as given to `edge run`"
    )
    p.add_argument("--json", type=Path, help="write the counts here")
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow plain http:// to a host other than loopback (a lab network only: frames "
        "and credentials go in clear); upload.allow_insecure_http for `edge run`",
    )
    p.set_defaults(func=cmd_upload)


@contextmanager
def open_outbox(data_dir: Path) -> Iterator[Outbox]:
    """The buffer of ``data_dir``, opened for draining. Imported here so that this module
    does not depend on the buffer at import time."""
    from edge.buffer import Buffer

    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: no such directory (where `edge run` keeps data)")
    # The device id only names frames the buffer writes; this process writes none.
    buffer = Buffer(data_dir, device="edge-upload")
    if buffer.rebuilt is not None:
        print(f"edge upload: {buffer.rebuilt}", file=sys.stderr)
    try:
        yield buffer
    finally:
        buffer.close()


def cmd_upload(args: argparse.Namespace, config: UploadConfig | None = None) -> int:
    """``edge upload``. ``config`` is the ``[upload]`` section when the caller has one."""
    config = config or UploadConfig()
    if getattr(args, "allow_insecure_http", False):
        config = msgspec.structs.replace(config, allow_insecure_http=True)
    check_writable(args.json)  # the counts of an upload are not to be lost after it
    uri = args.upload or config.target or default_target(args.data_dir)
    target = open_target(uri, config)
    try:
        with open_outbox(args.data_dir) as outbox:
            uploader = Uploader(outbox, target, config, state_dir=args.data_dir / STATE_DIR)
            if args.once:
                return _once(uploader, args.json)
            return _periodic(uploader, config, args.json)
    finally:
        target.close()


def _once(uploader: Uploader, json_path: Path | None) -> int:
    error: str | None = None
    try:
        report = uploader.upload_once().as_dict()
    except StoreError as exc:
        error = str(exc)  # already redacted by the target
        report = {}
    counters = uploader.counters()
    doc = _document(uploader, counters, report, error)
    write_json(json_path, doc)  # first: a reader of stdout that went away must not cost it
    if error is None:
        print(
            f"uploaded {report['records']} records ({report['objects']} objects, "
            f"{report['bytes']} bytes, {report['manifests']} manifests) to "
            f"{uploader.target.uri}; backlog {counters['backlog']}"
            + (f"; {report['unreadable']} unreadable" if report["unreadable"] else "")
        )
    else:
        print(
            f"edge upload: the store failed: {error}; {counters['uploaded_records']} records "
            "uploaded before that, the rest stay in the buffer",
            file=sys.stderr,
        )
    # An unreachable store is not bad input (2) and not a bug (a traceback): plain failure.
    return 0 if error is None else 1


def _periodic(uploader: Uploader, config: UploadConfig, json_path: Path | None) -> int:
    done = threading.Event()
    with _on_signals(lambda: done.set()):
        uploader.start()
        try:
            window = f" within {config.window}" if config.window else ""
            print(
                f"uploading to {uploader.target.uri} every {config.interval:g} s{window}; "
                "Ctrl-C stops"
            )
            done.wait()
        finally:
            uploader.stop()
    counters = uploader.counters()
    print(f"uploaded {counters['uploaded_records']} records; backlog {counters['backlog']}")
    # Failures that were recovered from are history (in the counters), not the outcome.
    failing = counters["consecutive_failures"] > 0
    write_json(
        json_path, _document(uploader, counters, {}, counters["last_error"] if failing else None)
    )
    return 0


@contextmanager
def _on_signals(handler: Callable[[], None]) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        handler()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _document(
    uploader: Uploader, counters: dict[str, Any], report: dict[str, int], error: str | None
) -> dict[str, Any]:
    return {
        "ok": error is None,
        "target": uploader.target.uri,
        **report,
        "error": error,
        "counters": counters,
    }


__all__ = ["cmd_upload", "configure", "open_outbox"]
