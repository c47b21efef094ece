"""Fixtures of the preprocessing benchmarks, and a closing table of their median ratios.

Run with `pytest bench --benchmark-only` (or `make bench`). The cases themselves live in
preprocess_demo.py, shared with the script `make run` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest
from preprocess_demo import Case, load_frame, make_cases

import edge

# Median seconds per call, by (case name, contender role), filled in by the benchmarks.
MEDIANS = pytest.StashKey[dict[tuple[str, str], float]]()
# Medians, not minimums: the figure a camera pipeline lives with on a busy 2-core device.
DEFAULT_COLUMNS = ["min", "median", "max", "iqr", "rounds"]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[MEDIANS] = {}
    if getattr(config.option, "benchmark_columns", "absent") is None:
        config.option.benchmark_columns = DEFAULT_COLUMNS


@pytest.fixture(scope="session")
def one_opencv_thread() -> Iterator[None]:
    """OpenCV on one thread, like ours: the comparison is per core."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(threads)


@pytest.fixture(scope="session")
def preprocess_frame_and_source() -> tuple[np.ndarray, str]:
    return load_frame()


@pytest.fixture(scope="session")
def preprocess_frame(preprocess_frame_and_source: tuple[np.ndarray, str]) -> np.ndarray:
    return preprocess_frame_and_source[0]


@pytest.fixture(scope="session")
def preprocess_cases(preprocess_frame: np.ndarray) -> dict[str, Case]:
    return {case.name: case for case in make_cases(preprocess_frame)}


@pytest.fixture(scope="session")
def preprocess_environment(preprocess_frame_and_source: tuple[np.ndarray, str]) -> dict[str, str]:
    """Recorded with every benchmark (extra_info), so saved results say what they measured."""
    return {
        "isa": edge.active_isa(),
        "frame": preprocess_frame_and_source[1],
        "opencv": cv2.__version__,
    }


@pytest.fixture
def record_preprocess_median(
    request: pytest.FixtureRequest,
) -> Callable[[str, str, float], None]:
    def record(case: str, role: str, seconds: float) -> None:
        request.config.stash[MEDIANS][case, role] = seconds

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    medians = config.stash.get(MEDIANS, {})
    if not medians:
        return
    terminalreporter.section("preprocess: median ratios")
    for case in dict.fromkeys(name for name, _ in medians):
        ours = medians.get((case, "ours"))
        baseline = medians.get((case, "baseline"))
        floor = medians.get((case, "floor"))
        parts = [f"{case}:"]
        if ours and baseline:
            parts.append(f"speed-up over the baseline {baseline / ours:.2f}×")
        if ours and floor:
            parts.append(f"ours / memory floor {ours / floor:.2f}×")
        terminalreporter.write_line("  ".join(parts))
    terminalreporter.write_line(f"edge.active_isa(): {edge.active_isa()}")
