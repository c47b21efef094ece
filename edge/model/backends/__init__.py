"""Runtime backends: one module per runtime, and a registry that imports them by name.

A backend module never imports its runtime at import time: ``get_backend("tflite")`` works on
a board without LiteRT, and only :meth:`Backend.open` raises
:class:`~edge.errors.BackendUnavailable` (naming the pip package) when the runtime is missing.

A backend opens one model file as a :class:`Session`: the runtime's input buffer, allocated
once, and a :meth:`Session.run` that lets the caller write the input straight into that buffer
(the preprocessor does), invokes the runtime and returns the two outputs as fresh float32
arrays.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal, get_args

import numpy as np
import numpy.typing as npt

from edge.errors import BackendUnavailable
from edge.model.manifest import ModelFile

#: Writes one input tensor into the buffer it is given (exact shape and dtype of the input).
Fill = Callable[[npt.NDArray[np.generic]], object]
Outputs = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]

# name → (module, class); imported on first use so a missing runtime costs nothing.
_REGISTRY: dict[str, tuple[str, str]] = {
    "onnx": ("edge.model.backends.onnx", "OnnxBackend"),
    "tflite": ("edge.model.backends.tflite", "TFLiteBackend"),
}
BACKEND_NAMES: tuple[str, ...] = tuple(_REGISTRY)
#: What a user may ask for: a backend by name, or ``auto`` (the first one installed).
BackendChoice = Literal["auto", "onnx", "tflite"]
BACKEND_CHOICES: tuple[str, ...] = get_args(BackendChoice)
# One list of names: the registry and the choices offered to users must not drift apart.
assert ("auto", *BACKEND_NAMES) == BACKEND_CHOICES


class Session(abc.ABC):
    """One model file opened by a runtime. Not thread-safe: one caller at a time.

    ``input_shape``/``input_dtype`` are the model input exactly as the runtime takes it;
    ``input_quantization`` is ``(scale, zero_point)`` for an integer input, else None.
    """

    backend: ClassVar[str]
    input_shape: tuple[int, ...]
    input_dtype: np.dtype[np.generic]
    input_quantization: tuple[float, int] | None

    @abc.abstractmethod
    def run(self, fill: Fill) -> Outputs:
        """Calls ``fill(buffer)`` on the runtime's input buffer, runs the model once.

        Returns ``(logits, embedding)`` as float32 1-d arrays the session will not touch
        again (the next call cannot overwrite them). ``fill`` must not keep the buffer.
        """


class Backend(abc.ABC):
    """A runtime plug-in: knows whether its runtime is installed and opens model files."""

    name: ClassVar[str]
    #: What to ``pip install`` to get the runtime.
    package: ClassVar[str]

    @abc.abstractmethod
    def import_runtime(self) -> object:
        """Imports the runtime (once) or raises :class:`BackendUnavailable` saying what to
        install."""

    def available(self) -> bool:
        """Whether the runtime can be imported here."""
        try:
            self.import_runtime()
        except BackendUnavailable:
            return False
        return True

    @abc.abstractmethod
    def open(
        self,
        content: bytes,
        file: ModelFile,
        *,
        where: str,
        n_classes: int,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        optimization: str | None = None,
    ) -> Session:
        """Opens a model file (its verified bytes) as a :class:`Session`.

        ``where`` names the file in messages; ``n_classes`` is the number of labels the
        logits must have. ``providers`` and ``optimization`` are ONNX Runtime settings; other
        backends reject them.
        """


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (``"onnx"`` or ``"tflite"``); its runtime is not imported.

    ``"auto"`` is resolved by :func:`edge.load_model`, which knows the model directory.
    """
    try:
        module_name, class_name = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)} "
            "(or 'auto' when loading a model)"
        ) from None
    backend: Backend = getattr(importlib.import_module(module_name), class_name)()
    return backend


def available_backends() -> list[str]:
    """The names of the backends whose runtime is installed here."""
    return [name for name in BACKEND_NAMES if get_backend(name).available()]


def check_threads(threads: int | None) -> None:
    """``threads`` must be None (the runtime's default) or a positive int."""
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")


def as_float32(
    values: npt.NDArray[np.generic], quantization: tuple[float, int] | None
) -> npt.NDArray[np.float32]:
    """An output row as a fresh float32 1-d array, dequantized if ``quantization`` is given."""
    flat = values.reshape(-1)
    if quantization is None:
        return flat.astype(np.float32, copy=True)
    scale, zero_point = quantization
    out = flat.astype(np.float32)  # always a copy: integer → float
    out -= np.float32(zero_point)
    out *= np.float32(scale)
    return out


__all__ = [
    "BACKEND_CHOICES",
    "BACKEND_NAMES",
    "Backend",
    "BackendChoice",
    "Fill",
    "Outputs",
    "Session",
    "available_backends",
    "get_backend",
]
