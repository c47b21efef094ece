"""``edge run``: the model on a camera, stream, video or images, with the buffer and uploader."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from edge.cli_support import add_backend_argument, check_writable, quiet_video_logs, write_json


def configure(r: argparse.ArgumentParser) -> None:
    r.add_argument("--config", type=Path, help="TOML config; the flags below override it")
    r.add_argument(
        "--source",
        help="camera index, /dev/videoN, file, rtsp:// or http(s):// "
        "URL, image directory or glob, synthetic:WxH (default: the bundled sample video)",
    )
    r.add_argument("--model", help="model directory (default: the bundled fashion-line model)")
    add_backend_argument(r, default=None)
    r.add_argument("--threads", type=int, help="the runtime's threads")
    r.add_argument("--data-dir", help="where the buffer and local outbox live (./edge-data)")
    r.add_argument(
        "--upload",
        metavar="URI",
        help="s3://bucket/prefix, https://host/path or file:///dir (default: DATA_DIR/outbox)",
    )
    r.add_argument("--device", help="this device's id in records and uploads (the hostname)")
    r.add_argument("--results", help="one JSON line per frame to this file ('-': stdout)")
    r.add_argument("--json", type=Path, help="write the summary here")
    r.add_argument("--max-frames", type=int, help="stop after this many frames")
    r.add_argument("--realtime", action="store_true", help="pace a file at its frame rate")
    r.add_argument("--metrics-port", type=int, help="Prometheus port (0: any free one)")
    r.add_argument("--no-metrics", action="store_true", help="no Prometheus endpoint")
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.buffer import Buffer
    from edge.runtime.config import load_config
    from edge.runtime.console import StatusLine, summary_table
    from edge.runtime.loop import open_runner
    from edge.upload import Uploader, default_target, open_target

    overrides = {
        "source.uri": args.source,
        "source.realtime": args.realtime or None,
        "model.path": args.model,
        "model.backend": args.backend,
        "model.threads": args.threads,
        "data_dir": args.data_dir,
        "upload.target": args.upload,
        "device": args.device,
        "results": args.results,
        "max_frames": args.max_frames,
        "metrics.port": args.metrics_port,
        "metrics.enabled": False if args.no_metrics else None,
    }
    config = load_config(args.config, overrides)
    check_writable(args.json)
    quiet_video_logs()
    status = StatusLine()
    # The model and the source open first: a run that cannot start writes nothing.
    runner = open_runner(config, on_status=status)
    buffer: Buffer | None = None
    try:
        # The port too: a second run on a busy port stops here, before it writes anything.
        port = runner.serve_metrics()
        buffer = Buffer(config.data_dir, device=config.device, config=config.buffer)
        target = open_target(config.upload.target or default_target(config.data_dir), config.upload)
        uploader = Uploader(
            buffer, target, config.upload, state_dir=Path(config.data_dir) / "upload"
        )
    except BaseException:
        runner.close()
        if buffer is not None:
            buffer.close()
        raise
    if buffer.rebuilt is not None:
        print(f"edge run: {buffer.rebuilt}", file=sys.stderr)
    runner.attach(buffer, uploader)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    if runner.calibration is None:
        print(
            f"edge run: warning: {config.model.path} is not calibrated: no gate, and "
            "confidence is the raw softmax (run `edge calibrate`)",
            file=sys.stderr,
        )
    if port is not None:
        host = config.metrics.host
        print(f"edge run: metrics on http://{host}:{port}/metrics", file=sys.stderr)
    try:
        summary = runner.run()
    finally:
        status.close()
    skipped = summary["skipped"]
    if skipped["files"]:
        print(
            f"edge run: {skipped['files']} files of {config.source.uri} skipped, the first "
            f"{skipped['first']}",
            file=sys.stderr,
        )
    # The file first: a reader of stdout that went away (`| head`) must not cost it.
    write_json(args.json, summary)
    print(summary_table(summary))
    return 0
