"""ONNX Runtime backend (``pip install onnxruntime``), imported only when a model is opened.

Per frame nothing is allocated: the input buffer is one numpy array, wrapped once in an
``OrtValue`` that shares its memory and bound with IOBinding, so the preprocessor writes the
tensor where ONNX Runtime reads it. The outputs are bound to preallocated buffers too; only
the two small output rows are copied out, so a result outlives the next call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edge.errors import BackendUnavailable, ModelError
from edge.model.backends import Backend, Fill, Outputs, Session, as_float32, check_threads
from edge.model.backends.onnx_proto import ProtoError, external_tensors
from edge.model.manifest import ModelFile

#: Graph optimisation levels by name → the GraphOptimizationLevel member they mean.
OPTIMIZATION_LEVELS: Mapping[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",  # onnxruntime ≥ 1.22 only
    "all": "ORT_ENABLE_ALL",
}
DEFAULT_OPTIMIZATION = "all"

_DTYPES: Mapping[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, or :class:`BackendUnavailable` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable(
            f"the onnx backend needs ONNX Runtime, which cannot be imported here ({exc}); "
            "install it with `pip install onnxruntime` (or pick backend='tflite')"
        ) from exc
    module: ModuleType = onnxruntime
    return module


def resolve_providers(ort: ModuleType, requested: Sequence[str] | None) -> list[str]:
    """Execution provider names as onnxruntime spells them; CPU when none are requested.

    ``"cpu"`` or ``"CPU"`` is accepted for ``CPUExecutionProvider`` (and likewise for the
    others). A provider this onnxruntime build does not have is a ValueError that lists the
    ones it has.
    """
    available: list[str] = list(ort.get_available_providers())
    if requested is None:
        return ["CPUExecutionProvider"]
    if isinstance(requested, str):
        raise TypeError(f"providers must be a list of names, e.g. [{requested!r}]")
    by_key = {p.lower(): p for p in available}
    by_key.update({p.lower().removesuffix("executionprovider"): p for p in available})
    resolved = []
    for name in requested:
        provider = by_key.get(str(name).lower())
        if provider is None:
            raise ValueError(
                f"execution provider {name!r} is not available in this onnxruntime build; "
                f"available: {', '.join(available)}. Other providers come with other builds "
                "(e.g. `pip install onnxruntime-gpu` for CUDAExecutionProvider, "
                "`pip install onnxruntime-openvino` for OpenVINOExecutionProvider)"
            )
        resolved.append(provider)
    if not resolved:
        raise ValueError(f"providers must name at least one of: {', '.join(available)}")
    return resolved


def _optimization_level(ort: ModuleType, name: str | None) -> Any:
    levels = {
        k: v for k, v in OPTIMIZATION_LEVELS.items() if hasattr(ort.GraphOptimizationLevel, v)
    }
    key = DEFAULT_OPTIMIZATION if name is None else name
    if key not in levels:
        raise ValueError(f"unknown graph optimisation {name!r}; choose one of {', '.join(levels)}")
    return getattr(ort.GraphOptimizationLevel, levels[key])


class OnnxBackend(Backend):
    """ONNX Runtime: ``threads`` intra-op threads (None: its default), inter-op 1."""

    name: ClassVar[str] = "onnx"
    package: ClassVar[str] = "onnxruntime"

    def import_runtime(self) -> object:
        return import_onnxruntime()

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
        ort = import_onnxruntime()
        refuse_external_data(content, where)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        # One frame at a time through a sequential graph: inter-op threads would only idle.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = _optimization_level(ort, optimization)
        chosen = resolve_providers(ort, providers)
        try:
            session = ort.InferenceSession(content, sess_options=options, providers=chosen)
        # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...) from C++;
        # whatever it is, the file matched its sha256, so the model itself is unusable.
        except Exception as exc:
            raise ModelError(
                f"{where}: onnxruntime cannot load this model ({exc}); the file matches its "
                "sha256, so the model directory was built with a broken or incompatible file: "
                "rebuild it (or upgrade onnxruntime if the model needs a newer opset)"
            ) from exc
        return OnnxSession(ort, session, file, where=where, n_classes=n_classes)


def refuse_external_data(content: bytes, where: str) -> None:
    """A ModelError if the ONNX model ``content`` keeps tensor data in other files.

    ONNX Runtime would open those files by name — for a model given as bytes, relative to
    the current directory — and no sha256 in the manifest covers them, so such a model is
    refused; a model is only run from the bytes that were hashed.
    """
    try:
        external = external_tensors(content)
    except ProtoError as exc:
        raise ModelError(
            f"{where}: not an ONNX model ({exc}); the file matches its sha256, so the model "
            "directory was built with a broken file: rebuild it"
        ) from exc
    if external:
        name, location = external[0]
        more = f" and {len(external) - 1} more" if len(external) > 1 else ""
        raise ModelError(
            f"{where}: tensor {name!r}{more} keeps its data in an external file "
            f"({location or 'unnamed'!r}), which no sha256 covers, so edge will not load it; "
            "re-save the model with its weights inside (onnx.save_model(model, path, "
            "save_as_external_data=False)) and list the new file's sha256"
        )


class OnnxSession(Session):
    """An ``InferenceSession`` with its input and outputs bound to buffers allocated once."""

    backend: ClassVar[str] = "onnx"

    def __init__(
        self, ort: ModuleType, session: Any, file: ModelFile, *, where: str, n_classes: int
    ) -> None:
        self.session = session
        self.providers: list[str] = list(session.get_providers())
        inputs = {i.name: i for i in session.get_inputs()}
        if file.input not in inputs or len(inputs) != 1:
            raise ModelError(
                f"{where}: the manifest names input {file.input!r}, the model's inputs are "
                f"{sorted(inputs)}; edge runs models with one image input: fix the manifest"
            )
        meta = inputs[file.input]
        if meta.type != "tensor(float)":
            raise ModelError(
                f"{where}: input {meta.name!r} is {meta.type}; the onnx backend takes float32 "
                "inputs (int8 ONNX models are QDQ with a float input): rebuild the model"
            )
        self.input_shape = _static_shape(meta.shape, where, f"input {meta.name!r}")
        self.input_dtype = np.dtype(np.float32)
        self.input_quantization = None
        # The one input buffer: the OrtValue shares its memory (no copy on CPU).
        self._input: npt.NDArray[np.float32] = np.zeros(self.input_shape, np.float32)
        self._binding = session.io_binding()
        self._input_value = ort.OrtValue.ortvalue_from_numpy(self._input, "cpu", 0)
        self._binding.bind_ortvalue_input(meta.name, self._input_value)

        outputs = {o.name: o for o in session.get_outputs()}
        self._outputs: list[npt.NDArray[np.generic]] = []
        self._output_values: list[Any] = []  # keeps the bound OrtValues alive
        for key in ("logits", "embedding"):
            name = file.outputs.get(key)
            if name not in outputs:
                raise ModelError(
                    f"{where}: the manifest names output {key}={name!r}, the model's outputs "
                    f"are {sorted(outputs)}: fix outputs in the manifest"
                )
            o = outputs[name]
            dtype = _DTYPES.get(o.type)
            if dtype is None or not np.issubdtype(dtype, np.floating):
                raise ModelError(f"{where}: output {name!r} is {o.type}; expected float")
            shape = _static_shape(o.shape, where, f"output {name!r}")
            if len(shape) != 2:
                raise ModelError(f"{where}: output {name!r} has shape {shape}; expected (1, n)")
            if key == "logits" and shape[1] != n_classes:
                raise ModelError(
                    f"{where}: output {name!r} has {shape[1]} classes but the manifest has "
                    f"{n_classes} labels: the labels do not belong to this model"
                )
            buffer = np.zeros(shape, dtype)
            value = ort.OrtValue.ortvalue_from_numpy(buffer, "cpu", 0)
            self._binding.bind_ortvalue_output(name, value)
            self._outputs.append(buffer)
            self._output_values.append(value)

    def run(self, fill: Fill) -> Outputs:
        fill(self._input)
        # Releases the GIL; reads self._input and writes the bound output buffers in place.
        self.session.run_with_iobinding(self._binding)
        logits, embedding = self._outputs
        return as_float32(logits, None), as_float32(embedding, None)


def _static_shape(shape: Sequence[Any], where: str, what: str) -> tuple[int, ...]:
    """The shape with a symbolic batch dimension set to 1; other dimensions must be fixed."""
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(1)  # the batch: edge runs one frame at a time
        else:
            raise ModelError(
                f"{where}: {what} has shape {list(shape)}; edge needs every dimension but "
                "the batch fixed: re-export the model with a static input size"
            )
    if not dims or dims[0] != 1:
        raise ModelError(f"{where}: {what} has shape {list(shape)}; expected a batch of 1")
    return tuple(dims)


__all__ = [
    "OPTIMIZATION_LEVELS",
    "OnnxBackend",
    "OnnxSession",
    "import_onnxruntime",
    "refuse_external_data",
]
