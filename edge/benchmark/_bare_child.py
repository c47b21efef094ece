"""A bare runtime on one model file, for a clean memory figure: run as a script, in a process
of its own, importing only NumPy and the runtime (not edge, OpenCV or the C++ core), so its
RSS is what a user's own minimal loop would cost. Prints one JSON object on stdout.

    python _bare_child.py FILE {onnx,tflite} THREADS FRAMES WARMUP RSS_EVERY
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def rss_kb() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def onnx_runner(path: str, threads: int) -> Callable[[], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in meta.shape]
    feed = {meta.name: np.zeros(shape, np.float32)}
    return lambda: session.run(None, feed)


def tflite_runner(path: str, threads: int) -> Callable[[], object]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter

    interpreter: Any = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    tensor = np.zeros(detail["shape"], detail["dtype"])
    outputs = [d["index"] for d in interpreter.get_output_details()]

    def run() -> object:
        interpreter.set_tensor(detail["index"], tensor)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return run


def main(argv: list[str]) -> int:
    path, backend, threads, frames, warmup, every = argv
    t0 = time.perf_counter()
    run = (onnx_runner if backend == "onnx" else tflite_runner)(path, int(threads))
    load_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(int(warmup)):
        run()
    samples = []
    t0 = time.perf_counter()
    for i in range(int(frames) + 1):
        if i % int(every) == 0:
            samples.append([i, rss_kb()])
        if i < int(frames):
            run()
    seconds = time.perf_counter() - t0
    doc = {
        "backend": backend,
        "frames": int(frames),
        "fps": int(frames) / seconds,
        "load_ms": load_ms,
        "rss_samples": samples,
        "rss_end_kb": rss_kb(),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
