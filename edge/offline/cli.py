"""``edge calibrate`` and ``edge eval``: fit a model's calibration, and judge it on data."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from edge.cli_support import add_backend_argument, check_writable, progress, write_json
from edge.errors import ModelError, UsageError


def configure_calibrate(c: argparse.ArgumentParser) -> None:
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
    add_backend_argument(c)
    c.add_argument("--json", type=Path, help="write the figures here")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from edge.model import load_model
    from edge.offline.calibrate import calibrate, save_calibration
    from edge.offline.data import load_dataset

    check_writable(args.json)
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
    for key, value in calibration.figures.items():
        print(f"{key:>20}: {value:.4g}")
    print(f"{'temperature':>20}: {calibration.temperature:.4g}")
    if not calibration.labelled:
        print("no labels: temperature and review threshold not fitted (T = 1, no review)")
    print(f"calibration written to {Path(args.model) / 'calibration.json'}")
    write_json(args.json, calibration.to_json())
    return 0


def configure_eval(e: argparse.ArgumentParser) -> None:
    e.add_argument("--model", required=True, type=Path, help="model directory (calibrated)")
    e.add_argument("--id", required=True, type=Path, help="in-distribution .npz (labels optional)")
    e.add_argument("--ood", action="append", default=[], metavar="NAME=PATH.npz")
    e.add_argument("--corrupt", action="store_true", help="add corrupted copies of the ID set")
    add_backend_argument(e)
    e.add_argument("--json", type=Path, help="write the figures here")
    e.add_argument("--report", type=Path, help="write an HTML report with pictures here")
    e.set_defaults(func=cmd_eval)


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
    from edge.offline.data import load_dataset
    from edge.offline.eval_report import render
    from edge.offline.evaluate import evaluate

    ood_paths = parse_ood(args.ood)
    check_writable(args.json)
    check_writable(args.report)
    model = load_model(args.model, backend=args.backend)
    loaded = load_calibration(model.manifest)
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
