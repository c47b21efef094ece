"""The project's built model directories (``models/<name>``), for the tests that load them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Where the model directories are; EDGE_MODELS points the tests at a freshly built set.
MODELS = Path(os.environ.get("EDGE_MODELS", Path(__file__).resolve().parents[1] / "models"))


def built_model_dir(name: str) -> Path:
    """``MODELS/<name>``; its absence fails (never skips) the test that needs it."""
    path = MODELS / name
    if not (path / "manifest.json").is_file():
        pytest.fail(
            f"{path}/manifest.json is missing: the {name} model artifacts are not built yet "
            f"(run models/{name}/build.py with the build venv, see models/requirements-build.txt)"
        )
    return path


__all__ = ["MODELS", "built_model_dir"]
