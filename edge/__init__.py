"""edge: an inference runtime for cameras on constrained devices."""

from edge._native import _core
from edge._preprocess import Preprocessor, preprocess

__version__ = "0.1.0"


def active_isa() -> str:
    """The variant of the C++ hot loops in use: ``"avx2"`` or ``"baseline"``."""
    return _core.active_isa()


__all__ = ["Preprocessor", "__version__", "active_isa", "preprocess"]
