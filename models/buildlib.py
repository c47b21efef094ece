"""Helpers shared by the model build scripts (``models/<name>/build.py``).

Build time only: this module imports onnxruntime's quantizer, onnx2tf and TensorFlow, none of
which may ever become a runtime dependency of ``edge``. See models/README.md for the venv.

The pipeline each model goes through::

    fp32 ONNX ──quantize_static (QDQ, per-channel, real calibration images)──► int8 ONNX
        │
        └─ORT basic optimisation─► onnx2tf (SavedModel, NHWC) ─TFLiteConverter, full int8─► .tflite
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# ──────────────────────────────────────────────────────────────────────────── hashing, json


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_concat(paths: Sequence[str | os.PathLike[str]]) -> str:
    """One digest over several files: sha256 of their bytes concatenated in the given order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def today() -> str:
    return datetime.date.today().isoformat()


def tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


# ──────────────────────────────────────────────────────────────────────────── ONNX int8


def quantize_onnx_int8(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    samples: np.ndarray,
    *,
    batch: int = 1,
    percentile: float | None = None,
) -> None:
    """Static int8 quantization in QDQ format with per-channel weights.

    ``samples`` are float32 model inputs (NCHW, already normalised) from real images. Activation
    ranges are min/max over them by default; with ``percentile`` (e.g. 99.999) the extreme tails
    are cut, which helps the unbounded tensors (residual adds, linear bottlenecks) of a deeper
    net a little, at several times the calibration time.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class ArrayReader(CalibrationDataReader):
        """Feeds the calibration samples to the calibrator, ``batch`` at a time."""

        def __init__(self, name: str, data: np.ndarray) -> None:
            self._it = ({name: data[i : i + batch]} for i in range(0, len(data), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    input_name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    reader = ArrayReader(input_name, samples.astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference + graph clean-up first, as onnxruntime recommends before quantizing.
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(str(fp32_path), pre)
        quantize_static(
            pre,
            str(int8_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=(
                CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile
            ),
            extra_options={} if percentile is None else {"CalibPercentile": percentile},
        )


# ──────────────────────────────────────────────────────────────────────────── TFLite int8

# onnx2tf loads this sample file (20 RGB images, 128×128, float 0..1) to check its conversion,
# and downloads it from GitHub when it is not in the working directory. We write one made of real
# calibration images into a temporary working directory instead: no network at build time.
_ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


@contextlib.contextmanager
def _chdir(path: str) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def onnx_to_tflite_int8(
    fp32_path: str | os.PathLike[str],
    tflite_path: str | os.PathLike[str],
    representative: Callable[[], Iterable[np.ndarray]],
    *,
    onnx2tf_sample_rgb01: np.ndarray | None = None,
) -> None:
    """fp32 ONNX (NCHW) → full-integer TFLite (NHWC) with uint8 input and uint8 outputs.

    ``representative()`` yields float32 NHWC batches of one, normalised exactly as the fp32 model
    expects ((pixel - mean) / std): the converter then derives the input's scale/zero-point from
    that range, so the runtime's ``round(value / scale + zero_point)`` is the same mapping.
    """
    import onnx
    import onnx2tf
    import onnxruntime as ort
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        # A static batch of 1 everywhere: with a symbolic batch dim left in the graph, onnx2tf
        # loses track of NCHW vs NHWC at EfficientNet's first residual Add.
        model = onnx.load(str(fp32_path))
        for value in [*model.graph.input, *model.graph.output]:
            value.type.tensor_type.shape.dim[0].dim_value = 1
        del model.graph.value_info[:]
        static = os.path.join(tmp, "static.onnx")
        onnx.save(model, static)

        # onnx2tf trips over some Pad/BatchNorm patterns; onnxruntime's *basic* level only does
        # constant folding and standard-op fusions (Pad into Conv, BN into Conv), so the saved
        # graph is still plain ONNX, just simpler.
        opt = os.path.join(tmp, "opt.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = opt
        ort.InferenceSession(static, so, providers=["CPUExecutionProvider"])

        sample = onnx2tf_sample_rgb01
        if sample is None:
            sample = np.zeros((20, 128, 128, 3), np.float32)
        np.save(os.path.join(tmp, _ONNX2TF_SAMPLE), sample.astype(np.float32))

        saved = os.path.join(tmp, "saved_model")
        with _chdir(tmp):
            onnx2tf.convert(
                input_onnx_file_path=opt,
                output_folder_path=saved,
                batch_size=1,  # TFLite wants a static shape; the runtime feeds one frame
                output_signaturedefs=True,
                non_verbose=True,
            )

        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x] for x in representative())
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
        Path(tflite_path).write_bytes(conv.convert())


# ──────────────────────────────────────────────────────────────────────────── running models


class OnnxModel:
    """An ONNX file run with onnxruntime; ``__call__`` takes a float32 NCHW batch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {self.input_name: x.astype(np.float32)})
        return dict(zip(self.output_names, outs, strict=True))


class TFLiteModel:
    """A full-integer TFLite file; ``__call__`` takes one float NHWC input (normalised) and
    returns dequantised ``logits`` and ``embedding``, told apart by their width."""

    def __init__(self, path: str | os.PathLike[str], n_classes: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - build venv always has one of them
            from tensorflow.lite import Interpreter  # type: ignore[no-redef]

        self.interp = Interpreter(model_path=str(path), num_threads=2)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        outs = self.interp.get_output_details()
        by_width = {int(o["shape"][-1]): o for o in outs}
        if len(outs) != 2 or n_classes not in by_width or len(by_width) != 2:
            raise ValueError(f"{path}: expected 2 outputs, one {n_classes} wide: {outs}")
        self.logits = by_width.pop(n_classes)
        self.embedding = next(iter(by_width.values()))

    @property
    def input_quant(self) -> tuple[float, int]:
        scale, zp = self.inp["quantization"]
        return float(scale), int(zp)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        scale, zp = self.input_quant
        info = np.iinfo(self.inp["dtype"])
        q = np.round(x / scale + zp)
        return np.clip(q, info.min, info.max).astype(self.inp["dtype"])

    def _get(self, detail: dict[str, Any]) -> np.ndarray:
        q = self.interp.get_tensor(detail["index"]).astype(np.float32)
        scale, zp = detail["quantization"]
        return (q - zp) * scale

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.interp.set_tensor(self.inp["index"], self.quantize_input(x))
        self.interp.invoke()
        return {"logits": self._get(self.logits), "embedding": self._get(self.embedding)}

    def describe(self) -> dict[str, Any]:
        scale, zp = self.input_quant
        return {
            "input": self.inp["name"],
            "input_shape": [int(v) for v in self.inp["shape"]],
            "input_dtype": np.dtype(self.inp["dtype"]).name,
            "input_scale": scale,
            "input_zero_point": zp,
            "outputs": {"logits": self.logits["name"], "embedding": self.embedding["name"]},
        }


def int8_file_entries(name: str, onnx_input: str, tflite_io: dict[str, Any]) -> dict[str, Any]:
    """Manifest entries (without sha256) of a model's int8 ONNX and int8 TFLite files.

    ``tflite_io`` is what :func:`onnx_to_tflite_int8` reports: the TFLite input name and the
    output names by role (LiteRT renames them and lists the embedding first).
    """
    return {
        f"{name}.int8.onnx": {
            "runtime": "onnx",
            "precision": "int8",
            "layout": "nchw",
            "input": onnx_input,
            "outputs": {"logits": "logits", "embedding": "embedding"},
        },
        f"{name}.int8.tflite": {
            "runtime": "tflite",
            "precision": "int8",
            "layout": "nhwc",
            "input": tflite_io["input"],
            "outputs": tflite_io["outputs"],
        },
    }


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
