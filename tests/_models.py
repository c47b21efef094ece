"""The project's built model directories (``models/<name>``), for the tests that load them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def copy_model(tmp_path: Path, name: str = "fashion-line") -> Path:
    """A private copy of ``MODELS/<name>`` under ``tmp_path``, free to damage."""
    return Path(shutil.copytree(built_model_dir(name), tmp_path / name))


def edit_manifest(directory: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Applies ``change`` to the parsed manifest of ``directory`` and writes it back."""
    edit_json(directory / "manifest.json", change)


def rehash(directory: Path, *names: str) -> None:
    """Makes the manifest agree with whatever the files ``names`` now hold: a release built
    that way, so only the check under test can refuse it."""

    def update(doc: dict[str, Any]) -> None:
        for name in names:
            digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
            doc["files"][name]["sha256"] = digest

    edit_manifest(directory, update)


def edit_json(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Applies ``change`` to the JSON document at ``path`` and writes it back."""
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


__all__ = ["MODELS", "built_model_dir", "copy_model", "edit_json", "edit_manifest", "rehash"]
