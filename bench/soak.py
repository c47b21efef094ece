"""Soak: many frames through the real loop; its RSS after warm-up must not grow.

Two processes of their own, so neither figure carries the other's allocations:

1. ``edge bench`` on the model (the loop of ``edge run``), RSS sampled every ``--every`` frames
   after warm-up; the least-squares slope in KiB per 1 000 frames is the leak figure;
2. a bare runtime (NumPy and the runtime only, see ``edge/benchmark/_bare_child.py``) running
   the same model file the same number of times: what edge's loop adds on top of it is the
   difference of their steady RSS (median of the samples after warm-up).

    python bench/soak.py [--model models/fashion-line] [--frames 20000] [--json PATH]

Exit status 1 when the slope exceeds ``--max-slope`` (KiB / 1 000 frames).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import edge.benchmark
from edge.benchmark.measure import rss_slope_kb_per_1000
from edge.defaults import BUNDLED_MODEL

BARE_CHILD = Path(edge.benchmark.__file__).parent / "_bare_child.py"


def loop_process(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak.json"
        every = max(1, args.frames // 200)
        command = [sys.executable, "-m", "edge.benchmark", "--model", str(args.model)]
        command += ["--synthetic", args.synthetic, "--frames", str(args.frames)]
        command += ["--warmup", str(args.warmup), "--threads", str(args.threads)]
        command += ["--backend", args.backend, "--rounds", "0", "--json", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        doc: dict[str, Any] = json.loads(out.read_text())
    samples = doc["memory"]["rss_samples"]
    return {
        "fps": doc["loop"]["fps"],
        "file": doc["model"]["file"],
        "backend": doc["model"]["backend"],
        "model_path": str(Path(args.model) / doc["model"]["file"]),
        "every": every,
        "samples": samples,
        "slope_kb_per_1000_frames": rss_slope_kb_per_1000([tuple(s) for s in samples]),
        "steady_rss_kb": float(np.median([kb for _, kb in samples])),
        "first_rss_kb": samples[0][1],
        "last_rss_kb": samples[-1][1],
        "peak_rss_kb": doc["memory"]["peak_rss_kb"],
    }


def bare_process(args: argparse.Namespace, model_file: str, backend: str) -> dict[str, Any]:
    every = max(1, args.frames // 200)
    command = [sys.executable, str(BARE_CHILD), model_file, backend, str(args.threads)]
    command += [str(args.frames), str(args.warmup), str(every)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    doc: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    samples = doc["rss_samples"]
    doc["slope_kb_per_1000_frames"] = rss_slope_kb_per_1000([tuple(s) for s in samples])
    doc["steady_rss_kb"] = float(np.median([kb for _, kb in samples]))
    del doc["rss_samples"]
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--synthetic", default="1920x1080", help="frame size WxH")
    parser.add_argument("--frames", type=int, default=20_000)
    # The loop's RSS settles over its first ~15 000 frames (allocator pools and caches fill:
    # +3.6 MiB at 320x240, in steps, then flat for the next 45 000); a leak shows after that.
    parser.add_argument("--warmup", type=int, default=15_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "tflite"])
    parser.add_argument(
        "--max-slope", type=float, default=64.0, help="KiB / 1000 frames allowed (noise)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    loop = loop_process(args)
    bare = bare_process(args, loop["model_path"], loop["backend"])
    figures = {
        "model": str(args.model),
        "backend": loop["backend"],
        "frames": args.frames,
        "warmup": args.warmup,
        "frame_size": args.synthetic,
        "loop": {k: v for k, v in loop.items() if k != "samples"},
        "bare_runtime": bare,
        "loop_over_bare_rss_kb": loop["steady_rss_kb"] - bare["steady_rss_kb"],
        "loop_rss_samples": loop["samples"],
    }
    slope = loop["slope_kb_per_1000_frames"]
    print(f"{args.model.name} ({loop['backend']}), {args.frames} frames of {args.synthetic}")
    print(
        f"loop:  {loop['fps']:.0f} fps, RSS {loop['first_rss_kb'] / 1024:.1f} → "
        f"{loop['last_rss_kb'] / 1024:.1f} MiB after warm-up, slope {slope:+.2f} KiB / 1000 "
        f"frames (allowed {args.max_slope:g})"
    )
    print(
        f"bare:  {bare['fps']:.0f} fps, RSS {bare['steady_rss_kb'] / 1024:.1f} MiB, "
        f"slope {bare['slope_kb_per_1000_frames']:+.2f} KiB / 1000 frames"
    )
    print(
        f"edge's loop on top of the bare runtime: {figures['loop_over_bare_rss_kb'] / 1024:.1f} MiB"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if slope is not None and slope <= args.max_slope else 1


if __name__ == "__main__":
    sys.exit(main())
