"""Ours against OpenCV + NumPy, 1080p BGR → 224×224 on one core (cases: preprocess_demo.py).

Every benchmark checks the output it timed, so a fast but wrong kernel fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from preprocess_demo import Case, check_output
from pytest_benchmark.fixture import BenchmarkFixture

# (case, contender role): the roles each case has (only area → int8 has a memory floor).
CONTENDERS = [
    ("area → int8 NHWC", "ours"),
    ("area → int8 NHWC", "baseline"),
    ("area → int8 NHWC", "floor"),
    ("bilinear → float32 NCHW", "ours"),
    ("bilinear → float32 NCHW", "baseline"),
]


@pytest.mark.usefixtures("one_opencv_thread")
@pytest.mark.parametrize(
    ("case_name", "role"), CONTENDERS, ids=[f"{c}: {r}" for c, r in CONTENDERS]
)
def test_preprocess_speed(
    benchmark: BenchmarkFixture,
    preprocess_cases: dict[str, Case],
    preprocess_frame: np.ndarray,
    preprocess_environment: dict[str, str],
    record_preprocess_median: Callable[[str, str, float], None],
    case_name: str,
    role: str,
) -> None:
    case = preprocess_cases[case_name]
    contender = getattr(case, role)
    benchmark.group = case_name
    benchmark.name = f"{role}: {contender.name}"
    benchmark.extra_info.update(preprocess_environment)
    contender.run()  # warm-up: plans and first-touch page faults are not timed
    output = benchmark(contender.run)
    check_output(case, role, output, preprocess_frame)
    if benchmark.stats is not None:  # None under --benchmark-disable
        record_preprocess_median(case_name, role, benchmark.stats.stats.median)
