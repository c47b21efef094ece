"""GPTQ weight rounding (models/gptq.py), the build step EfficientNet-Lite0's int8 files start from.

On a small convolutional net of the kinds of layer EfficientNet-Lite0 has (a strided 3×3 stem,
a depthwise 3×3, a 1×1 projection, a Gemm) and crops of real photos:
the rounded weights lie exactly on the grid a quantizer derives from them, and the net's output
on photos it was not fitted on is closer to the float output than with rounding to nearest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import gptq

SIZE = 32


def _net(path: Path, rng: np.random.Generator, *, trans_b: bool) -> None:
    """image → Conv 3×3/2 → Clip → depthwise 3×3 → Clip → Conv 1×1 → pool → Gemm → logits."""

    def weights(*shape: int) -> np.ndarray:
        # Channels of very different magnitude, as batch-norm folding leaves them.
        scale = np.exp(rng.uniform(-2.0, 1.0, size=(shape[0],) + (1,) * (len(shape) - 1)))
        return (rng.normal(size=shape) * scale).astype(np.float32)

    fc = weights(10, 16)
    inits = {
        "stem_w": weights(24, 3, 3, 3),
        "stem_b": np.zeros(24, np.float32),
        "dw_w": weights(24, 1, 3, 3),
        "dw_b": rng.normal(size=24).astype(np.float32),
        "proj_w": weights(16, 24, 1, 1),
        "proj_b": np.zeros(16, np.float32),
        "fc_w": fc if trans_b else np.ascontiguousarray(fc.T),
        "fc_b": np.zeros(10, np.float32),
        "lo": np.array(0.0, np.float32),
        "hi": np.array(6.0, np.float32),
    }
    nodes = [
        helper.make_node(
            "Conv",
            ["image", "stem_w", "stem_b"],
            ["s"],
            name="stem",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[0, 0, 1, 1],
        ),
        helper.make_node("Clip", ["s", "lo", "hi"], ["s6"]),
        helper.make_node(
            "Conv",
            ["s6", "dw_w", "dw_b"],
            ["d"],
            name="depthwise",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            group=24,
        ),
        helper.make_node("Clip", ["d", "lo", "hi"], ["d6"]),
        helper.make_node("Conv", ["d6", "proj_w", "proj_b"], ["p"], name="project"),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=int(trans_b)),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [None, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _crops(photos: dict[str, np.ndarray], names: tuple[str, ...], n: int, seed: int) -> np.ndarray:
    """Random SIZE×SIZE crops of the photos, normalised as EfficientNet-Lite0's input is."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, SIZE, SIZE), np.float32)
    for k in range(n):
        img = photos[names[k % len(names)]]
        y, x = rng.integers(0, img.shape[0] - SIZE), rng.integers(0, img.shape[1] - SIZE)
        out[k] = ((img[y : y + SIZE, x : x + SIZE] - 127.0) / 128.0).transpose(2, 0, 1)
    return out


def _weights(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    names = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in names}


def _per_channel(name: str, w: np.ndarray, trans_b: bool) -> np.ndarray:
    """One row per output channel, the axis a per-channel quantizer takes its scales along."""
    if name == "fc_w" and not trans_b:
        w = w.T
    return w.reshape(w.shape[0], -1).astype(np.float64)


def _round_to_nearest(name: str, w: np.ndarray, trans_b: bool) -> np.ndarray:
    """What a quantizer does without GPTQ, back in the weight's own layout."""
    rows = _per_channel(name, w, trans_b)
    scale = np.abs(rows).max(axis=1, keepdims=True) / 127
    rounded = scale * np.round(rows / scale)
    if name == "fc_w" and not trans_b:
        return rounded.T.astype(np.float32)
    return rounded.reshape(w.shape).astype(np.float32)


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["logits"], {"image": x})[0])


@pytest.mark.parametrize("trans_b", [True, False])
def test_gptq_puts_weights_on_the_quantizers_grid_and_keeps_outputs_closer(
    tmp_path: Path, photos: dict[str, np.ndarray], trans_b: bool
) -> None:
    src, dst, nearest = tmp_path / "float.onnx", tmp_path / "gptq.onnx", tmp_path / "nearest.onnx"
    _net(src, np.random.default_rng(0), trans_b=trans_b)
    fit = _crops(photos, ("astronaut", "coffee"), 64, seed=1)
    held_out = _crops(photos, ("chelsea", "rocket"), 64, seed=2)

    gptq.round_weights(src, dst, fit)

    original, rounded = _weights(src), _weights(dst)
    assert original.keys() == rounded.keys() == {"stem_w", "dw_w", "proj_w", "fc_w"}
    for name, w in original.items():
        rows = _per_channel(name, w, trans_b)
        scale = np.abs(rows).max(axis=1, keepdims=True) / 127
        steps = _per_channel(name, rounded[name], trans_b) / scale
        # Whole steps of the grid a quantizer derives from these weights: the same grid, since
        # each channel's largest weight is kept, so quantizing them again rounds nothing.
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3, err_msg=name)
        np.testing.assert_allclose(np.abs(steps).max(axis=1), 127, rtol=1e-6, err_msg=name)

    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.name in original:
            w = _round_to_nearest(init.name, original[init.name], trans_b)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(nearest))

    reference = _logits(src, held_out)
    gptq_error = np.mean((_logits(dst, held_out) - reference) ** 2)
    nearest_error = np.mean((_logits(nearest, held_out) - reference) ** 2)
    assert gptq_error < 0.5 * nearest_error, (gptq_error, nearest_error)
