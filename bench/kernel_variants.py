"""Each kernel variant this CPU runs, side by side: median time per call and speed-up over the
scalar reference, with each variant's answers checked against scalar's.

The variant is chosen once per process (EDGE_ISA), so every variant runs in a child
interpreter of its own, on the same inputs, in the same run.

    .venv/bin/python bench/kernel_variants.py      (also the last step of `make bench`)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from edge import _core

CHILD = r"""
import json, statistics, sys, time
import numpy as np
import edge
from edge import _core

rng = np.random.default_rng(0)
frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
dim, classes, bank = 1280, 1000, 2048
ood = dict(
    center=np.zeros(dim, np.float32),
    projection=rng.normal(size=(256, dim)).astype(np.float32),
    whitener=np.eye(256, dtype=np.float32),
    class_means=rng.normal(size=(classes, 256)).astype(np.float32),
    bank=(lambda b: b / np.linalg.norm(b, axis=1, keepdims=True))(
        rng.normal(size=(bank, 256))).astype(np.float32),
    k=5,
)
scorer = _core.OodScorer(**ood)
embedding = rng.normal(size=dim).astype(np.float32)
cases = {
    "area 1280x720 -> 224 (vertical_q16, horizontal, store)":
        lambda: edge.preprocess(frame, size=(224, 224), resize="area", dtype="uint8"),
    "area 1280x720 -> 9x7 float (vertical, horizontal)":
        lambda: edge.preprocess(frame, size=(9, 7), resize="area", dtype="float32"),
    "bilinear 1280x720 -> 224 (pair_row, blend, store)":
        lambda: edge.preprocess(frame, size=(224, 224), resize="bilinear", dtype="float32"),
    "OOD score 1280-d (int8_rows, matvec)": lambda: np.array(scorer.score(embedding)),
}
out = {"isa": edge.active_isa(), "median": {}, "result": {}}
for name, fn in cases.items():
    fn()
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    out["median"][name] = statistics.median(times)
    out["result"][name] = np.asarray(result, np.float64).ravel()[:: 97].tolist()
print(json.dumps(out))
"""


def run(isa: str, rounds: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rounds)],
        env={**os.environ, "EDGE_ISA": isa},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    rounds = int(os.environ.get("EDGE_BENCH_ROUNDS", "30"))
    runs = {isa: run(isa, rounds) for isa in _core.runnable_isas()}
    ref = runs["scalar"]
    names = list(ref["median"])
    isas = list(runs)
    print(f"median ms per call ({rounds} rounds), speed-up over scalar in brackets")
    print(f"{'case':58}" + "".join(f"{i:>18}" for i in isas))
    for name in names:
        cells = []
        for isa in isas:
            m = runs[isa]["median"][name]
            # Checked against scalar: integers within 1, floats within 1e-3 relative.
            got, want = np.array(runs[isa]["result"][name]), np.array(ref["result"][name])
            assert np.allclose(got, want, rtol=1e-3, atol=1.0), (isa, name)
            cells.append(f"{m * 1e3:8.2f} ({ref['median'][name] / m:4.1f}x)")
        print(f"{name:58}" + "".join(f"{c:>18}" for c in cells))
    print("every variant agrees with scalar (integers within 1, floats within 1e-3)")


if __name__ == "__main__":
    main()
