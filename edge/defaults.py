"""The bundled default of ``edge run`` with no arguments: the production-line model and the
sample video of a line.

The wheel carries both inside the package (``edge/bundled/``, found through
:mod:`importlib.resources`), copied there by the build from the source tree's top-level
``models/`` and ``samples/``. Code that imports ``edge`` from a tree that was never built
(a checkout on ``PYTHONPATH``) gets the tree's own copies.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_TREE = Path(__file__).resolve().parent.parent


def _bundled(name: str) -> Path:
    resource = files("edge") / "bundled"
    for part in name.split("/"):
        resource = resource / part
    return Path(str(resource)) if resource.is_file() or resource.is_dir() else _TREE / name


#: The production-line model directory (``fashion-line``).
BUNDLED_MODEL = _bundled("models/fashion-line")
#: The sample line video; its ground truth per frame is ``line.json`` beside it.
BUNDLED_SOURCE = _bundled("samples/line.mp4")
