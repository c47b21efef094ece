"""LiteRT backend (``pip install ai-edge-litert``; ``tflite-runtime`` as a fallback).

The preprocessor writes the input straight into the interpreter's own input tensor through
the numpy view ``interpreter.tensor(index)()``. LiteRT refuses to ``invoke()`` while any such
view is alive (it counts references to its internal buffers), so the view lives only while
the input is written, and is dropped before ``invoke()`` — also when writing it fails, where
the traceback would otherwise keep it alive and wedge the interpreter for every later frame.
Integer outputs are dequantized to float32 with the scale/zero-point of the output tensor.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edge.errors import BackendUnavailable, ModelError
from edge.model.backends import Backend, Fill, Outputs, Session, as_float32, check_threads
from edge.model.manifest import ModelFile

#: The message for the known failure of tflite-runtime 2.14 (its last release) under NumPy 2.
NUMPY2_MESSAGE = "tflite-runtime needs numpy<2; install ai-edge-litert instead"

_INPUT_DTYPES = (np.uint8, np.int8, np.float32)


def import_interpreter() -> tuple[Any, str]:
    """LiteRT's ``Interpreter`` class and the name of the package it came from.

    ``ai_edge_litert`` first; ``tflite_runtime`` (the older package some ARM boards ship) as
    the fallback; neither is :class:`BackendUnavailable` naming the pip packages.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as litert_error:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise BackendUnavailable(
                f"the tflite backend needs LiteRT, which cannot be imported here "
                f"({litert_error}); install it with `pip install ai-edge-litert` (or "
                "`pip install tflite-runtime` on boards that only have that), or pick "
                "backend='onnx'"
            ) from litert_error
        return Interpreter, "tflite-runtime"
    return Interpreter, "ai-edge-litert"


class TFLiteBackend(Backend):
    """LiteRT: ``threads`` is the interpreter's ``num_threads`` (None: its default)."""

    name: ClassVar[str] = "tflite"
    package: ClassVar[str] = "ai-edge-litert"

    def import_runtime(self) -> object:
        return import_interpreter()

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
        check_threads(threads)
        if providers is not None or optimization is not None:
            raise ValueError(
                "providers and optimization are ONNX Runtime settings; the tflite backend "
                "takes neither (use backend='onnx' for them)"
            )
        interpreter_class, package = import_interpreter()
        try:
            interpreter = interpreter_class(model_content=content, num_threads=threads)
            interpreter.allocate_tensors()
        except SystemError as exc:
            if package == "tflite-runtime" and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
                raise BackendUnavailable(
                    f"{NUMPY2_MESSAGE} (`pip install ai-edge-litert`): tflite-runtime "
                    f"cannot create an interpreter under NumPy {np.__version__} ({exc})"
                ) from exc
            raise _unreadable(where, package, exc) from exc
        # The runtime raises ValueError/RuntimeError for a file it cannot parse or prepare.
        except (ValueError, RuntimeError) as exc:
            raise _unreadable(where, package, exc) from exc
        return TFLiteSession(interpreter, file, where=where, n_classes=n_classes, package=package)


def _unreadable(where: str, package: str, exc: BaseException) -> ModelError:
    return ModelError(
        f"{where}: {package} cannot load this model ({exc}); the file matches its sha256, so "
        "the model directory was built with a broken or incompatible file: rebuild it (or "
        "upgrade the runtime if the model uses newer ops)"
    )


class TFLiteSession(Session):
    """An interpreter with tensors allocated once; input written in place, outputs copied."""

    backend: ClassVar[str] = "tflite"

    def __init__(
        self, interpreter: Any, file: ModelFile, *, where: str, n_classes: int, package: str
    ) -> None:
        self.interpreter = interpreter
        self.package = package
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        if file.input not in inputs or len(inputs) != 1:
            raise ModelError(
                f"{where}: the manifest names input {file.input!r}, the model's inputs are "
                f"{sorted(inputs)}; edge runs models with one image input: fix the manifest"
            )
        detail = inputs[file.input]
        dtype = np.dtype(detail["dtype"])
        if dtype not in _INPUT_DTYPES:
            raise ModelError(
                f"{where}: input {file.input!r} is {dtype}; edge feeds uint8, int8 or float32"
            )
        self.input_shape = tuple(int(d) for d in detail["shape"])
        self.input_dtype = dtype
        self.input_quantization = _quantization(detail, where)
        self._input: Callable[[], npt.NDArray[np.generic]] = interpreter.tensor(detail["index"])

        outputs = {d["name"]: d for d in interpreter.get_output_details()}
        self._outputs: list[tuple[Callable[[], npt.NDArray[np.generic]], Any]] = []
        for key in ("logits", "embedding"):
            name = file.outputs.get(key)
            if name not in outputs:
                raise ModelError(
                    f"{where}: the manifest names output {key}={name!r}, the model's outputs "
                    f"are {sorted(outputs)}: fix outputs in the manifest"
                )
            out = outputs[name]
            shape = tuple(int(d) for d in out["shape"])
            if len(shape) != 2 or shape[0] != 1:
                raise ModelError(f"{where}: output {name!r} has shape {shape}; expected (1, n)")
            if key == "logits" and shape[1] != n_classes:
                raise ModelError(
                    f"{where}: output {name!r} has {shape[1]} classes but the manifest has "
                    f"{n_classes} labels: the labels do not belong to this model"
                )
            self._outputs.append((interpreter.tensor(out["index"]), _quantization(out, where)))

    def run(self, fill: Fill) -> Outputs:
        view = self._input()
        try:
            fill(view)
        except BaseException as exc:
            # The failed frames of `fill` still reference the view: clear them, or every
            # later invoke() would refuse to run while the exception is kept somewhere.
            del view
            traceback.clear_frames(exc.__traceback__)
            raise
        del view
        # Releases the GIL; the input view is gone, so LiteRT's reference check passes.
        self.interpreter.invoke()
        # Each view is consumed into a fresh float32 array and dropped on the spot.
        (logits_view, logits_q), (embedding_view, embedding_q) = self._outputs
        return as_float32(logits_view(), logits_q), as_float32(embedding_view(), embedding_q)


def _quantization(detail: dict[str, Any], where: str) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of an integer tensor; None for a float tensor."""
    if np.dtype(detail["dtype"]).kind not in "iu":
        return None
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale > 0:
        raise ModelError(
            f"{where}: tensor {detail['name']!r} is {np.dtype(detail['dtype'])} without a "
            "scale/zero-point, so its values mean nothing as numbers; rebuild the model "
            "with full-integer quantization (or float inputs/outputs)"
        )
    return float(scale), int(zero_point)


__all__ = ["NUMPY2_MESSAGE", "TFLiteBackend", "TFLiteSession", "import_interpreter"]
