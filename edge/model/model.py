"""Loading a model directory and running frames through it.

``load_model`` parses the manifest, checks every listed file against its sha256 (and that no
unlisted model file sits in the directory), picks the file for the backend and precision,
hands the runtime the very bytes it hashed, and builds the :class:`~edge.Preprocessor` that
writes the model's input tensor straight into the runtime's input buffer::

    model = edge.load_model("models/fashion-line", backend="tflite", threads=2)
    pred = model.predict(gray_frame, src="gray")   # raw uint8 H×W frame in
    pred.label, pred.top_k(3), pred.embedding      # float32 logits/embedding out
    model.name, model.manifest.version, model.sha256   # what produced the score
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

from edge.config import Section, within
from edge.defaults import BUNDLED_MODEL
from edge.errors import BackendUnavailable, ModelError
from edge.model.backends import (
    BACKEND_NAMES,
    Backend,
    BackendChoice,
    Outputs,
    Session,
    get_backend,
)
from edge.model.manifest import InputSpec, Manifest, ModelFile
from edge.model.preprocess import DType, Preprocessor, Src

_TASK = "classification"


#: The most threads a model's runtime is given.
MAX_THREADS = 64


class ModelConfig(Section):
    """The model ``edge run`` loads (``[model]``)."""

    #: The model directory (default: the bundled production-line model).
    path: str = str(BUNDLED_MODEL)
    backend: BackendChoice = "auto"
    #: Threads of the runtime's own pool; None lets the runtime choose.
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.threads is not None:
            # A pool of thousands of threads only exhausts memory on a board of four cores.
            within("model.threads", self.threads, 1, MAX_THREADS)


@dataclass(frozen=True, eq=False)
class Prediction:
    """One frame's result: float32 ``logits`` (num_classes,) and ``embedding`` (dim,).

    The arrays belong to this object (read-only copies): later calls of the model never
    overwrite them. ``probabilities()`` and ``top_k()`` use a plain softmax — uncalibrated.
    """

    logits: npt.NDArray[np.float32]
    embedding: npt.NDArray[np.float32]
    labels: tuple[str, ...] = field(repr=False)

    @property
    def class_id(self) -> int:
        """Index of the highest logit."""
        return int(np.argmax(self.logits))

    @property
    def label(self) -> str:
        """Label of the highest logit."""
        return self.labels[self.class_id]

    def probabilities(self) -> npt.NDArray[np.float32]:
        """Softmax of the logits (temperature 1, not calibrated)."""
        z = np.exp(self.logits - self.logits.max())
        p: npt.NDArray[np.float32] = (z / z.sum()).astype(np.float32)
        return p

    def top_k(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely ``(label, probability)`` pairs, most likely first."""
        p = self.probabilities()
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.labels[i], float(p[i])) for i in order]

    def __repr__(self) -> str:
        return (
            f"Prediction(label={self.label!r}, logits={self.logits.shape}, "
            f"embedding={self.embedding.shape})"
        )


class Model:
    """A loaded model: its manifest, the file in use on one backend, and its preprocessor.

    Thread safety: a Model owns one input buffer in its runtime, so concurrent calls of
    :meth:`predict`/:meth:`run` are serialised by a lock (safe, not parallel). To use
    several cores on several streams, load one Model per thread (or set ``threads``).
    """

    def __init__(
        self, manifest: Manifest, file: ModelFile, backend: Backend, session: Session
    ) -> None:
        """Made by :func:`load_model`, which verifies the directory first."""
        self.manifest = manifest
        self.file = file
        self._backend = backend
        self._session = session
        self._lock = threading.Lock()
        self._preprocessors: dict[str, Preprocessor] = {}
        self._preprocessor("bgr")  # also checks the manifest's input spec against the runtime

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def labels(self) -> tuple[str, ...]:
        return self.manifest.labels

    @property
    def input(self) -> InputSpec:
        return self.manifest.input

    @property
    def backend(self) -> str:
        """The backend running the model: ``"onnx"`` or ``"tflite"``."""
        return self._backend.name

    @property
    def sha256(self) -> str:
        """sha256 of the model file in use (verified at load): the model's identity."""
        return self.file.sha256

    @property
    def path(self) -> Path:
        return self.manifest.directory / self.file.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The runtime's input tensor shape: what :meth:`run` takes."""
        return self._session.input_shape

    @property
    def input_dtype(self) -> np.dtype[np.generic]:
        """The runtime's input tensor dtype: what :meth:`run` takes."""
        return self._session.input_dtype

    @property
    def input_quantization(self) -> tuple[float, int] | None:
        """``(scale, zero_point)`` of an integer input tensor, else None: how
        :attr:`preprocessor` turns normalised pixels into :attr:`input_dtype`."""
        return self._session.input_quantization

    @property
    def preprocessor(self) -> Preprocessor:
        """The preprocessor for BGR frames; :meth:`preprocessor_for` for other sources."""
        return self._preprocessors["bgr"]

    def preprocessor_for(self, src: Src) -> Preprocessor:
        """The preprocessor that turns frames of format ``src`` into this model's input."""
        with self._lock:
            return self._preprocessor(src)

    def predict(self, image: npt.NDArray[np.uint8], src: Src = "bgr") -> Prediction:
        """Preprocesses a raw uint8 frame (H×W grey with ``src="gray"``, H×W×C otherwise)
        into the runtime's input buffer and runs the model."""
        with self._lock:
            pre = self._preprocessor(src)
            return self._prediction(self._session.run(lambda buffer: pre(image, buffer)))

    def run(self, tensor: npt.NDArray[np.generic]) -> Prediction:
        """Runs an already preprocessed tensor (shape :attr:`input_shape`, dtype
        :attr:`input_dtype`, as :attr:`preprocessor` makes it)."""
        if (
            not isinstance(tensor, np.ndarray)
            or tensor.shape != self.input_shape
            or tensor.dtype != self.input_dtype
        ):
            got = (
                f"{tensor.shape} {tensor.dtype}"
                if isinstance(tensor, np.ndarray)
                else type(tensor).__name__
            )
            raise ValueError(
                f"{self.name} ({self.backend}) takes a {self.input_shape} {self.input_dtype} "
                f"tensor ({self.file.layout}, as model.preprocessor makes it), got {got}; "
                "use model.predict() for raw frames"
            )
        with self._lock:
            return self._prediction(
                self._session.run(lambda buffer: np.copyto(buffer, tensor, casting="no"))
            )

    def __repr__(self) -> str:
        return (
            f"<Model {self.name} {self.manifest.version}: {self.file.name} on {self.backend}, "
            f"input {self.input_shape} {self.input_dtype}>"
        )

    def _prediction(self, outputs: Outputs) -> Prediction:
        logits, embedding = outputs
        logits.flags.writeable = False
        embedding.flags.writeable = False
        return Prediction(logits=logits, embedding=embedding, labels=self.labels)

    def _preprocessor(self, src: Src) -> Preprocessor:
        pre = self._preprocessors.get(src)
        if pre is None:
            pre = self._make_preprocessor(src)
            self._preprocessors[src] = pre
        return pre

    def _make_preprocessor(self, src: Src) -> Preprocessor:
        spec, session = self.input, self._session
        dtype = session.input_dtype.name
        if dtype not in ("uint8", "int8", "float32"):
            raise ModelError(f"{self.path}: input dtype {dtype} is not one edge can feed")
        scale, zero_point = session.input_quantization or (None, None)
        if self.file.layout is None:  # pragma: no cover - the manifest parser requires it
            raise ModelError(f"{self.path}: no layout in the manifest")
        pre = Preprocessor(
            size=spec.size,
            src=src,
            dst=spec.color,
            layout=self.file.layout,
            dtype=cast(DType, dtype),
            resize=spec.resize,
            fit=spec.fit,
            mean=list(spec.mean),
            std=list(spec.std),
            scale=scale,
            zero_point=zero_point,
        )
        if pre.shape != session.input_shape:
            raise ModelError(
                f"{self.path}: the runtime's input is {session.input_shape} {dtype}, but the "
                f"manifest's input spec ({spec.width}×{spec.height} {spec.color}, "
                f"{self.file.layout}) makes {pre.shape}: fix input or layout in the manifest"
            )
        return pre


def load_model(
    path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    precision: str = "int8",
    providers: Sequence[str] | None = None,
    *,
    optimization: str | None = None,
) -> Model:
    """Loads the model directory at ``path`` on a backend.

    ``backend``: ``"onnx"``, ``"tflite"`` or ``"auto"`` (ONNX Runtime when it is installed
    and the directory has an ONNX file of ``precision``, else LiteRT). ``threads``: the
    runtime's thread count (None: its default). ``precision``: which file (``"int8"``,
    ``"fp32"``, as listed in the manifest). ``providers`` (ONNX Runtime execution providers
    by name, default CPU) and ``optimization`` (graph optimisation: ``"disable"``,
    ``"basic"``, ``"extended"``, ``"all"``, default ``"all"``) apply to the onnx backend only.

    Raises :class:`~edge.errors.ModelError` for a bad model directory (missing manifest or
    key, a corrupted, missing or unlisted file) and :class:`~edge.errors.BackendUnavailable`
    when the runtime is not installed.
    """
    manifest = Manifest.load(path)
    if manifest.task != _TASK:
        raise ModelError(
            f"{manifest.path}: task {manifest.task!r} is not one edge runs (only {_TASK!r})"
        )
    chosen = _choose_backend(
        manifest, backend, precision, onnx_only=bool(providers or optimization)
    )
    files = manifest.model_files(chosen.name, precision)
    if not files:
        raise ModelError(
            f"{manifest.directory}: no {chosen.name} file of precision {precision!r} in "
            f"{manifest.path.name} (it has: {_inventory(manifest)}); pick another backend or "
            "precision"
        )
    file = files[0]
    manifest.verify()
    content = manifest.read(file)
    session = chosen.open(
        content,
        file,
        where=str(manifest.directory / file.name),
        n_classes=len(manifest.labels),
        threads=threads,
        providers=providers,
        optimization=optimization,
    )
    return Model(manifest, file, chosen, session)


def _choose_backend(manifest: Manifest, name: str, precision: str, *, onnx_only: bool) -> Backend:
    if name != "auto":
        return get_backend(name)
    if onnx_only:  # providers/optimization were given: they only mean something to ONNX Runtime
        return get_backend("onnx")
    candidates = [get_backend(n) for n in BACKEND_NAMES if manifest.model_files(n, precision)]
    for candidate in candidates:
        if candidate.available():
            return candidate
    if not candidates:
        raise ModelError(
            f"{manifest.directory}: no model file of precision {precision!r} in "
            f"{manifest.path.name} (it has: {_inventory(manifest)}); pick another precision"
        )
    raise BackendUnavailable(
        f"{manifest.directory}: no runtime installed for its {precision} files; install one: "
        + " or ".join(f"`pip install {c.package}` ({c.name})" for c in candidates)
    )


def _inventory(manifest: Manifest) -> str:
    return ", ".join(f"{f.runtime} {f.precision}" for f in manifest.model_files()) or "nothing"


__all__ = ["Model", "Prediction", "load_model"]
