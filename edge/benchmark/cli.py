"""The ``edge bench`` subcommand: :func:`configure` adds its arguments to ``edge``'s parser.

Also runnable alone, ``python -m edge.benchmark ...``, with the same exit codes as ``edge``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.cli_support import add_backend_argument, check_writable, quiet_video_logs, write_json
from edge.errors import UsageError


def cmd_bench(args: argparse.Namespace) -> int:
    import msgspec

    from edge.benchmark.measure import (
        DEFAULT_SOURCE,
        BenchOptions,
        run_benchmark,
        synthetic_uri,
        tqdm_progress,
    )
    from edge.benchmark.report import compare, markdown
    from edge.benchmark.schema import load_report

    if args.compare is not None:
        given = [f"--{k}" for k in ("model", "source", "synthetic", "json") if getattr(args, k)]
        if given:
            raise UsageError(f"--compare takes two JSON files and no {', '.join(given)}")
        check_writable(args.markdown)
        a_path, b_path = args.compare
        names = (Path(a_path).stem, Path(b_path).stem)
        if names[0] == names[1]:  # board-a/out.json, board-b/out.json: the winner must differ
            names = ("A", "B")
        text = compare(load_report(a_path), load_report(b_path), names=names)
        print(text, end="")
        if args.markdown is not None:
            args.markdown.write_text(text)
        return 0
    if args.model is None:
        raise UsageError("give --model DIR (or --compare A.json B.json)")
    if args.source is not None and args.synthetic is not None:
        raise UsageError("give --source or --synthetic, not both")
    source = args.source or (synthetic_uri(args.synthetic) if args.synthetic else DEFAULT_SOURCE)
    options = BenchOptions(
        model=args.model,
        source=source,
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        backend=args.backend,
        rounds=args.rounds,
    )
    options.check()  # before the model loads: a typo costs no time
    check_writable(args.json, args.markdown)  # and an output it cannot write, no run
    quiet_video_logs()
    report = run_benchmark(options, progress=tqdm_progress)
    text = markdown(report)
    print(text, end="")
    if args.json is not None:
        write_json(args.json, msgspec.to_builtins(report))
    if args.markdown is not None:
        args.markdown.write_text(text)
    return 0


def configure(b: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``edge bench`` to its parser."""
    b.description = (
        "Runs the real loop of `edge run` on the given frames and reports per-stage latency, "
        "throughput, CPU and memory, with the baselines a user would otherwise pick (OpenCV + "
        "NumPy preprocessing, NumPy scores, a bare runtime loop) measured in the same run. "
        "--compare shows two JSON results side by side."
    )
    b.add_argument("--model", type=Path, help="model directory")
    b.add_argument("--source", help="video file, image directory or any `edge run --source`")
    b.add_argument(
        "--synthetic", metavar="WxH", help="synthetic frames of this size (default 1920x1080)"
    )
    b.add_argument("--frames", type=int, default=300, help="frames measured (default 300)")
    b.add_argument("--warmup", type=int, default=30, help="frames run first, not measured")
    b.add_argument("--threads", type=int, default=1, help="the runtime's threads (default 1)")
    add_backend_argument(b)
    b.add_argument(
        "--rounds", type=int, default=200, help="calls of each kernel baseline (0: skip them)"
    )
    b.add_argument("--json", type=Path, help="write the results here")
    b.add_argument("--markdown", type=Path, help="write the Markdown report here")
    b.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.json", "B.json"),
        help="print two results side by side: B/A, which way is better and which won",
    )
    b.set_defaults(func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge.benchmark``: ``edge bench``, with the ``edge`` command's exit codes."""
    from edge.cli import main as edge_main

    return edge_main(["bench", *(sys.argv[1:] if argv is None else argv)])
