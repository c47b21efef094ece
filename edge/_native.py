"""Loads the compiled core, or says how to build it."""

from __future__ import annotations

from pathlib import Path

try:
    from edge import _core
except ImportError as exc:
    if str(exc).startswith("EDGE_ISA="):
        # The core is there but refuses the variant EDGE_ISA forces: its message says which
        # variants this CPU can run, and is the whole story.
        raise ImportError(str(exc)) from None
    package = Path(__file__).resolve().parent
    if (package.parent / "pyproject.toml").is_file() and (package.parent / "cpp").is_dir():
        # The source tree's edge/ comes first on sys.path (the current directory) and has no
        # compiled core of its own: it hides the installed package.
        raise ImportError(  # pragma: no cover - exercised only on a broken install
            f"edge's C++ core is not built in the source tree at {package.parent}, and this "
            f"tree's edge/ shadows any installed edge package. Run from another directory to "
            f"use the installed package, or build the tree in place with `make install`. "
            f"({exc})"
        ) from exc
    raise ImportError(
        "edge's C++ core (edge._core) is missing or was built for another Python: "
        f"{exc}. Reinstall the wheel for this Python, or build from the source tree with "
        "`make install`."
    ) from exc

__all__ = ["_core"]
