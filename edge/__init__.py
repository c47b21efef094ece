"""edge: an inference runtime for cameras on constrained devices."""

from edge._native import _core
from edge.errors import BackendUnavailable, DataError, ModelError
from edge.model import Model, Prediction, load_model
from edge.model.manifest import InputSpec, Manifest, ModelFile
from edge.model.preprocess import Preprocessor, preprocess

FrameStats = _core.FrameStats
frame_stats = _core.frame_stats

__version__ = "0.1.0"


def active_isa() -> str:
    """The variant of the C++ hot loops in use: ``"scalar"`` (the plain reference),
    ``"baseline"``, ``"avx2"``, ``"neon"`` or ``"dotprod"``; ``EDGE_ISA`` forces one."""
    return _core.active_isa()


__all__ = [
    "BackendUnavailable",
    "DataError",
    "FrameStats",
    "InputSpec",
    "Manifest",
    "Model",
    "ModelError",
    "ModelFile",
    "Prediction",
    "Preprocessor",
    "__version__",
    "active_isa",
    "frame_stats",
    "load_model",
    "preprocess",
]
