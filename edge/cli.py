"""The ``edge`` command.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr saying what and where),
1 an internal failure (with its traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from edge.benchmark.cli import register as register_bench
from edge.buffer.cli import register as register_buffer
from edge.errors import INPUT_ERRORS, ModelError, UsageError
from edge.offline.data import load_dataset
from edge.upload.cli import register as register_upload

T = TypeVar("T")


def progress(label: str) -> Callable[[Iterable[T]], Iterable[T]]:
    """A progress bar on stderr for long loops (quiet when stderr is not a terminal)."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterable[T]:
        return tqdm(items, desc=label, unit="img", leave=False, disable=None, file=sys.stderr)

    return wrap


def write_json(path: Path | None, doc: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=float) + "\n")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from edge.model import load_model
    from edge.offline.calibrate import calibrate, save_calibration

    model = load_model(args.model, backend=args.backend)
    data = load_dataset(args.data, classes=len(model.labels))
    calibration, reference = calibrate(
        model,
        data,
        target_tpr=args.target_tpr,
        target_accuracy=args.target_accuracy,
        progress=progress("calibrate"),
    )
    save_calibration(model, calibration, reference, data)
    doc = calibration.to_json()
    for key, value in calibration.figures.items():
        print(f"{key:>20}: {value:.4g}")
    print(f"{'temperature':>20}: {calibration.temperature:.4g}")
    if not calibration.labelled:
        print("no labels: temperature and review threshold not fitted (T = 1, no review)")
    print(f"calibration written to {Path(args.model) / 'calibration.json'}")
    write_json(args.json, doc)
    return 0


def parse_ood(values: Sequence[str]) -> dict[str, Path]:
    sets = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--ood takes NAME=PATH.npz; got {v!r}")
        sets[name] = Path(path)
    return sets


def cmd_eval(args: argparse.Namespace) -> int:
    from edge.judge.calibration import load_calibration
    from edge.model import load_model
    from edge.offline.eval_report import render
    from edge.offline.evaluate import evaluate

    ood_paths = parse_ood(args.ood)
    model = load_model(args.model, backend=args.backend)
    loaded = load_calibration(model.manifest.directory)
    if loaded is None:
        raise ModelError(f"{args.model}: not calibrated; run `edge calibrate` on it first")
    classes = len(model.labels)
    id_set = load_dataset(args.id, classes=classes)
    ood_sets = {name: load_dataset(p) for name, p in ood_paths.items()}
    result = evaluate(
        model, *loaded, id_set, ood_sets, corrupt=args.corrupt, progress=progress("eval")
    )
    f = result.figures
    s = f["selective"]
    if f["labelled"]:
        print(f"accuracy {f['accuracy']:.4f}  ECE {f['ece_raw']:.4f} -> {f['ece_calibrated']:.4f}")
        print(f"accepted frames' accuracy {s['accuracy']:.4f}")
    else:
        print(f"no labels: {', '.join(f['skipped']['figures'])} skipped")
    print(
        f"accepted {s['accept_rate']:.3f}, review {s['review_rate']:.3f}, "
        f"rejected {s['reject_rate']:.3f}"
    )
    for name, methods in f["ood"].items():
        for method, v in methods.items():
            print(f"{name:>12} {method:>12}: AUROC {v['auroc']:.4f}  FPR95 {v['fpr95']:.4f}")
    for name, rows in f.get("corruptions", {}).items():
        cells = "  ".join(f"s{r['severity']}: rejected {r['rejected']:.2f}" for r in rows)
        print(f"{name:>12}: {cells}")
    write_json(args.json, f)
    if args.report is not None:
        args.report.write_text(render(result))
        print(f"report written to {args.report}")
    return 0


def quiet_video_logs() -> None:
    """FFmpeg and OpenCV log every broken stream and unreadable file on stderr; ``edge run``
    reports those itself, in one line, and counts reconnects. Set the variables to see them."""
    import os

    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from edge.buffer import Buffer
    from edge.config import load_config
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
    quiet_video_logs()
    status = StatusLine()
    buffer = Buffer(config.data_dir, device=config.device, config=config.buffer)
    try:
        target = open_target(config.upload.target or default_target(config.data_dir), config.upload)
        uploader = Uploader(
            buffer, target, config.upload, state_dir=Path(config.data_dir) / "upload"
        )
        runner = open_runner(config, flagged=buffer, uploader=uploader, on_status=status)
    except BaseException:
        buffer.close()
        raise
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    if runner.calibration is None:
        print(
            f"edge run: warning: {config.model.path} is not calibrated: no gate, and "
            "confidence is the raw softmax (run `edge calibrate`)",
            file=sys.stderr,
        )
    port = runner.serve_metrics()
    if port is not None:
        host = config.metrics.host
        print(f"edge run: metrics on http://{host}:{port}/metrics", file=sys.stderr)
    try:
        summary = runner.run()
    finally:
        status.close()
    print(summary_table(summary))
    write_json(args.json, summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def backend(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", default="auto", choices=["auto", "onnx", "tflite"])

    c = sub.add_parser("calibrate", help="fit temperature, OOD reference and thresholds")
    c.add_argument("--model", required=True, type=Path, help="model directory")
    c.add_argument(
        "--data", required=True, type=Path, help=".npz with images, optional labels and groups"
    )
    c.add_argument("--target-tpr", type=float, default=0.95, help="share of ID frames to accept")
    c.add_argument(
        "--target-accuracy",
        type=float,
        default=0.97,
        help="accuracy the accepted frames must reach; less confident ones go to review",
    )
    backend(c)
    c.add_argument("--json", type=Path, help="write the figures here")
    c.set_defaults(func=cmd_calibrate)

    r = sub.add_parser("run", help="run the model on a camera, stream, video or images")
    r.add_argument("--config", type=Path, help="TOML config; the flags below override it")
    r.add_argument(
        "--source",
        help="camera index, /dev/videoN, file, rtsp:// or http(s):// "
        "URL, image directory or glob, synthetic:WxH",
    )
    r.add_argument("--model", help="model directory")
    r.add_argument("--backend", choices=["auto", "onnx", "tflite"])
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

    register_buffer(sub)
    register_upload(sub)
    register_bench(sub)

    e = sub.add_parser("eval", help="accuracy, calibration, OOD detection, corruptions")
    e.add_argument("--model", required=True, type=Path, help="model directory (calibrated)")
    e.add_argument("--id", required=True, type=Path, help="in-distribution .npz (labels optional)")
    e.add_argument("--ood", action="append", default=[], metavar="NAME=PATH.npz")
    e.add_argument("--corrupt", action="store_true", help="add corrupted copies of the ID set")
    backend(e)
    e.add_argument("--json", type=Path, help="write the figures here")
    e.add_argument("--report", type=Path, help="write an HTML report with pictures here")
    e.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except INPUT_ERRORS as exc:
        print(f"edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print(f"edge {args.command}: internal error (the traceback above)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
