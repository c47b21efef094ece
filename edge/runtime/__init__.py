"""``edge run``: capture, the per-frame analysis, the policy and the loop that ties them."""

from edge.runtime.analyze import Analyzer, Result
from edge.runtime.capture import Capture, Frame, open_reader
from edge.runtime.decision import Policy, Verdict
from edge.runtime.loop import Runner, open_runner

__all__ = [
    "Analyzer",
    "Capture",
    "Frame",
    "Policy",
    "Result",
    "Runner",
    "Verdict",
    "open_reader",
    "open_runner",
]
