"""``edge bench``: the runtime loop benchmarked on the target device against the baselines a
user would otherwise pick, with the device and software it ran on (see the README's schema)."""

from edge.benchmark.measure import BenchOptions, run_benchmark
from edge.benchmark.report import compare, markdown
from edge.benchmark.schema import SCHEMA, Report, load_report

__all__ = [
    "SCHEMA",
    "BenchOptions",
    "Report",
    "compare",
    "load_report",
    "markdown",
    "run_benchmark",
]
