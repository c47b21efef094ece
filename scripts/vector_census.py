"""Counts the vector instructions in each AArch64 kernel's loops, per variant.

Disassembles the cross-built kernel objects (aarch64-linux-gnu-objdump -d) and, for each
kernel function of each variant, finds its loops (a backward branch to an address inside the
function) and prints the innermost loop with the most vector instructions: how many of its
instructions touch a SIMD register (v0-v31 with an arrangement, or q/d/s registers of
vector ops), out of how many. That says whether a kernel's inner loop is vectorised at all,
which qemu timings cannot.

    cmake -S . -B build/arm -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \\
        -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 && cmake --build build/arm
    python3 scripts/vector_census.py build/arm
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

VARIANTS = ["scalar", "baseline", "neon", "dotprod"]
# Kernel entry points and the loops they call (inlined or not), by name fragment.
KERNELS = {
    "vertical (float)": r"::vertical\(",
    "vertical_q16": r"vertical_q16",
    "horizontal": r"horizontal",
    "pair_row": r"pair_row",
    "blend": r"::blend\(",
    "store": r"store",
    "matvec / dot": r"::(matvec|dot)\(",
    "int8_rows": r"int8_(rows|dot)",
}
FUNCTION = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+(\S+)\s*(.*)$")
VECTOR_OPERAND = re.compile(r"\bv\d+\.\d*[bhsd]\b|\bq\d+\b")
BRANCH = re.compile(r"^(b|b\.\w+|cbn?z|tbn?z)$")


def functions(obj: Path) -> dict[str, list[tuple[int, str, str]]]:
    text = subprocess.run(
        ["aarch64-linux-gnu-objdump", "-d", "-C", "--no-show-raw-insn", str(obj)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # --no-show-raw-insn drops the encoding; accept lines with or without it.
    insn = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{8}\s+)?(\S+)\s*(.*)$")
    out: dict[str, list[tuple[int, str, str]]] = {}
    current: list[tuple[int, str, str]] | None = None
    for line in text.splitlines():
        if m := FUNCTION.match(line):
            current = out.setdefault(m.group(2), [])
        elif current is not None and (m := insn.match(line)):
            current.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return out


def hottest_loop(body: list[tuple[int, str, str]]) -> tuple[int, int]:
    """(vector instructions, instructions) of the innermost loop with the most of them."""
    start, end = body[0][0], body[-1][0]
    loops = []
    for addr, op, args in body:
        if not BRANCH.match(op):
            continue
        target = re.search(r"\b([0-9a-f]+) <", args)
        if not target:
            continue
        to = int(target.group(1), 16)
        if start <= to < addr <= end:
            loops.append((to, addr))
    best = (0, 0)
    for lo, hi in loops:
        if any(lo <= a and b <= hi and (a, b) != (lo, hi) for a, b in loops):
            continue  # an outer loop: its inner one is where the time goes
        loop = [i for i in body if lo <= i[0] <= hi]
        vec = sum(1 for _, _, a in loop if VECTOR_OPERAND.search(a))
        best = max(best, (vec, len(loop)))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", type=Path, help="the AArch64 build directory of the core")
    args = parser.parse_args()
    objects = {v: next(args.build.rglob(f"kernels_{v}.cpp.o"), None) for v in VARIANTS}
    print(f"{'kernel':18}" + "".join(f"{v:>14}" for v in VARIANTS))
    tables = {v: functions(o) if o else {} for v, o in objects.items()}
    for kernel, pattern in KERNELS.items():
        cells = []
        for v in VARIANTS:
            best = (0, 0)
            for name, body in tables[v].items():
                if re.search(pattern, name) and body:
                    best = max(best, hottest_loop(body))
            cells.append(f"{best[0]:>6}/{best[1]:<7}" if best[1] else f"{'-':>14}")
        print(f"{kernel:18}" + "".join(f"{c:>14}" for c in cells))
    print(
        "cells: vector instructions / all instructions of the kernel's most vector innermost loop"
    )


if __name__ == "__main__":
    main()
