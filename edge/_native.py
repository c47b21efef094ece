"""Loads the compiled core, or says how to build it."""

from __future__ import annotations

try:
    from edge import _core
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "edge's C++ core (edge._core) is missing or was built for another Python: "
        f"{exc}. Build and install it with `pip install .` from the source tree "
        "(or `make install`)."
    ) from exc

__all__ = ["_core"]
