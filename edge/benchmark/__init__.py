"""``edge bench``: the runtime loop benchmarked on the target device against the baselines a
user would otherwise pick, with the device and software it ran on (see the README's schema)."""

from edge.benchmark.report import compare, markdown
from edge.benchmark.run import SCHEMA, BenchOptions, load_report, run_benchmark

__all__ = ["SCHEMA", "BenchOptions", "compare", "load_report", "markdown", "run_benchmark"]
