"""EDGE_ISA: every variant this CPU runs can be forced and then is the one that runs, and a
variant that is unknown, or that this CPU cannot run, fails `import edge` with a message
naming the value and the variants it can run (never a quiet fallback to another variant).

Each case runs a fresh interpreter, since the variant is chosen once per process. The kernels
themselves are checked against the scalar reference by the C++ tests (cpp/tests/); the
agreement of whole results is in test_preprocess.py and test_core_limits.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edge import _core

_ALL = ["scalar", "baseline", "avx2", "neon", "dotprod"]


def run_with_isa(value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import edge; print(edge.active_isa())"],
        env={**os.environ, "EDGE_ISA": value},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_scalar_and_baseline_run_everywhere_and_the_default_is_the_last() -> None:
    runnable = _core.runnable_isas()
    assert runnable[:2] == ["scalar", "baseline"]
    assert set(runnable) <= set(_ALL)
    if not os.environ.get("EDGE_ISA"):
        assert _core.active_isa() == runnable[-1]


@pytest.mark.parametrize("isa", _ALL)
def test_a_forced_variant_is_the_one_that_runs(isa: str) -> None:
    if isa not in _core.runnable_isas():
        pytest.skip(f"this CPU cannot run {isa}")
    result = run_with_isa(isa)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isa


@pytest.mark.parametrize("value", ["bogus", "AVX2", "sse2"])
def test_an_unknown_edge_isa_is_a_clear_import_error(value: str) -> None:
    result = run_with_isa(value)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: EDGE_ISA={value}: unknown variant"), last
    assert "this CPU can run: " + ", ".join(_core.runnable_isas()) in last


def test_a_variant_this_cpu_cannot_run_is_a_clear_import_error() -> None:
    missing = [isa for isa in _ALL if isa not in _core.runnable_isas()]
    assert missing, "every variant runs here: x86-64 lacks neon, AArch64 lacks avx2"
    result = run_with_isa(missing[0])
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert f"EDGE_ISA={missing[0]}: that variant is not built for this target" in last, last
    assert "this CPU can run: " + ", ".join(_core.runnable_isas()) in last
