"""The shipped models, end to end on real data, with both backends.

fashion-line: the 10 000 Fashion-MNIST test images (Debian ``dataset-fashion-mnist``) through
fp32 ONNX, int8 ONNX and int8 TFLite: accuracy, and int8 top-1 agreement with fp32.
efficientnet-lite0: the real photos shipped in scikit-image's wheel against the fp32 top-1
that ``reference.json`` recorded at build time (the fp32 file is not shipped), and the
``coffee`` photo, which must be an espresso.

A missing model directory or dataset fails the tests with what to install or build: nothing
here is skipped.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from _models import built_model_dir

from edge.model import Model, Prediction, load_model
from edge.model.backends import BACKEND_NAMES

FASHION, EFFNET = "fashion-line", "efficientnet-lite0"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def reference(name: str) -> dict[str, Any]:
    path = built_model_dir(name) / "reference.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: rebuild the model directory with its build script")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@functools.cache
def loaded(name: str, backend: str, precision: str = "int8") -> Model:
    """One model per (name, backend, precision) for the whole run: loading hashes the files."""
    return load_model(built_model_dir(name), backend=backend, precision=precision, threads=2)


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """IDX: two zero bytes, type 0x08 (uint8), ndim, ndim big-endian uint32 sizes, the data."""
    if not path.is_file():
        pytest.fail(f"{path} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    assert raw[:3] == b"\x00\x00\x08", f"{path}: not an unsigned-byte IDX file"
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.cache
def fashion_test_set() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert labels.shape == (10000,)
    return images, labels


@functools.cache
def fashion_top1(backend: str, precision: str) -> npt.NDArray[np.int64]:
    """Top-1 of every test image, each through ``predict`` (the per-frame path)."""
    model = loaded(FASHION, backend, precision)
    images, _ = fashion_test_set()
    return np.array([model.predict(img, src="gray").class_id for img in images])


def fashion_accuracy(backend: str, precision: str) -> float:
    return float((fashion_top1(backend, precision) == fashion_test_set()[1]).mean())


def skimage_photo(row: dict[str, Any]) -> npt.NDArray[np.uint8] | None:
    """The photo of a reference.json row if scikit-image ships it (RGB or grey), else None."""
    import skimage.data  # the test dependency that ships the photos: pip install scikit-image

    source, _, name = row["id"].partition(":")
    if source != "skimage":
        return None
    if name.startswith("stereo_motorcycle["):
        img = skimage.data.stereo_motorcycle()[int(name[-2])]
    else:
        img = getattr(skimage.data, name)()
    img = np.ascontiguousarray(img if img.ndim == 2 else img[..., :3])
    assert img.dtype == np.uint8
    return img


@functools.cache
def effnet_photos() -> list[tuple[dict[str, Any], npt.NDArray[np.uint8]]]:
    rows = reference(EFFNET)["images"]
    photos = [(row, img) for row in rows if (img := skimage_photo(row)) is not None]
    assert len(photos) >= 15, f"only {len(photos)} scikit-image photos in reference.json"
    return photos


def predict_photo(model: Model, img: npt.NDArray[np.uint8]) -> Prediction:
    return model.predict(img, src="gray" if img.ndim == 2 else "rgb")


# ──────────────────────────────────────────────────────────────────────────── loading


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize(
    ("name", "n_classes", "embedding_dims", "size", "channels"),
    [
        pytest.param(FASHION, 10, range(64, 129), (28, 28), 1, id=FASHION),
        pytest.param(EFFNET, 1000, range(1280, 1281), (224, 224), 3, id=EFFNET),
    ],
)
def test_model_loads_and_runs(
    name: str,
    n_classes: int,
    embedding_dims: range,
    size: tuple[int, int],
    channels: int,
    backend: str,
) -> None:
    model = loaded(name, backend)
    directory = built_model_dir(name)
    assert model.name == name
    assert model.backend == backend
    assert len(model.labels) == n_classes
    assert model.input.size == size
    assert model.input.channels == channels
    assert model.file.runtime == backend
    assert model.file.precision == "int8"
    assert model.sha256 == hashlib.sha256((directory / model.file.name).read_bytes()).hexdigest()
    assert model.preprocessor.shape == model.input_shape
    assert model.preprocessor.dtype == model.input_dtype

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    pred = model.predict(frame)
    assert pred.logits.shape == (n_classes,)
    assert pred.embedding.ndim == 1
    assert pred.embedding.shape[0] in embedding_dims
    assert pred.logits.dtype == pred.embedding.dtype == np.float32
    assert np.isfinite(pred.logits).all()
    assert np.isfinite(pred.embedding).all()
    assert pred.label == model.labels[pred.class_id]
    top = pred.top_k(3)
    assert top[0][0] == pred.label
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert abs(float(pred.probabilities().sum()) - 1.0) < 1e-5


@pytest.mark.parametrize("name", [FASHION, EFFNET])
def test_tflite_input_is_quantized_as_the_file_says(name: str) -> None:
    """int8 TFLite files take uint8/int8: the preprocessor writes the quantized tensor."""
    model = loaded(name, "tflite")
    details = model._session.interpreter.get_input_details()[0]  # type: ignore[attr-defined]
    assert model.input_dtype in (np.uint8, np.int8)
    assert model.input_dtype == details["dtype"]
    scale, zero_point = details["quantization"]
    assert model._session.input_quantization == (scale, zero_point)
    assert model.file.layout == "nhwc"
    assert loaded(name, "onnx").input_dtype == np.float32
    assert loaded(name, "onnx").file.layout == "nchw"


def models_readme_section(name: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "models" / "README.md").read_text()
    return text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("name", [FASHION, EFFNET])
def test_models_readme_said_stretch_for_a_crop_model(name: str) -> None:
    """The input spec models/README.md states for a model is its manifest's (the manifest is
    the hashed artifact, the README follows it)."""
    spec = json.loads((built_model_dir(name) / "manifest.json").read_text())["input"]
    said = " ".join(models_readme_section(name).split("Input spec:", 1)[1].split("\n\n")[0].split())
    for key in ("resize", "fit"):
        assert f"`{key}: {spec[key]}`" in said, (key, said)
    assert f"mean {spec['mean'][0]:g}," in said
    assert f"std {spec['std'][0]:g}" in said
    assert ("grey" in said) == (spec["color"] == "gray")


def test_models_readme_output_quantization_is_the_files() -> None:
    text = " ".join(models_readme_section("fashion-line").split())
    for name in (FASHION, EFFNET):
        interpreter = loaded(name, "tflite")._session.interpreter  # type: ignore[attr-defined]
        by_name = {d["name"]: d["quantization"] for d in interpreter.get_output_details()}
        outputs = loaded(name, "tflite").file.outputs
        said = []
        for output in ("logits", "embedding"):
            scale, zero_point = by_name[outputs[output]]
            said.append(f"{output} ({scale:.4g}, {zero_point})")
        assert f"{name} {said[0]}, {said[1]}" in text


# ──────────────────────────────────────────────────────────────────────────── fashion-line


def test_fashion_fp32_accuracy() -> None:
    assert fashion_accuracy("onnx", "fp32") >= 0.91


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_fashion_int8_accuracy_within_one_point_of_fp32(backend: str) -> None:
    fp32 = fashion_accuracy("onnx", "fp32")
    int8 = fashion_accuracy(backend, "int8")
    assert int8 >= fp32 - 0.01, f"{backend} int8 accuracy {int8:.4f} vs fp32 {fp32:.4f}"


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_fashion_int8_agrees_with_fp32(backend: str) -> None:
    agreement = float((fashion_top1(backend, "int8") == fashion_top1("onnx", "fp32")).mean())
    assert agreement >= 0.99, f"{backend} int8 agrees with fp32 on {agreement:.2%} of the images"


@pytest.mark.parametrize(
    ("backend", "precision", "key"),
    [
        ("onnx", "fp32", "fp32_onnx"),
        ("onnx", "int8", "int8_onnx"),
        ("tflite", "int8", "int8_tflite"),
    ],
)
def test_fashion_accuracy_is_the_one_measured_at_build(
    backend: str, precision: str, key: str
) -> None:
    """edge's preprocessing + runtimes reproduce the builder's figures (NumPy + runtimes)."""
    built = reference(FASHION)["test"]["accuracy"][key]
    assert abs(fashion_accuracy(backend, precision) - built) <= 0.001


# ──────────────────────────────────────────────────────────────────────────── efficientnet


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_effnet_coffee_is_espresso(backend: str) -> None:
    import skimage.data

    bgr = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    pred = loaded(EFFNET, backend).predict(bgr, src="bgr")
    assert pred.label == "espresso", pred.top_k(5)


# A photo the fp32 model has made its mind up about: top-1 ahead of top-2 by this much
# probability. Below it (textures, micrographs), ±0.5 of a pixel flips the fp32 answer itself.
CLEAR_MARGIN = 0.1


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_effnet_int8_agrees_with_fp32_reference(backend: str) -> None:
    """Top-1 of the int8 file vs the fp32 top-1 recorded in reference.json, on the photos
    scikit-image ships (held out from calibration): every clear photo agrees, the rate over
    all of them is the one the build measured, and no answer leaves the fp32 top-5."""
    model = loaded(EFFNET, backend)
    key = f"int8_{backend}"
    photos = effnet_photos()
    n = len(photos)
    ours = [predict_photo(model, img).class_id for _, img in photos]
    fp32 = [row["fp32"] for row, _ in photos]
    agree = [top1 == ref["top1"] for top1, ref in zip(ours, fp32, strict=True)]

    clear = [ok for ok, ref in zip(agree, fp32, strict=True) if _margin(ref) >= CLEAR_MARGIN]
    assert len(clear) >= 5
    assert all(clear), f"{backend}: int8 differs from fp32 on a photo fp32 is clear about"

    built = sum(row[key]["top1"] == row["fp32"]["top1"] for row, _ in photos) / n
    # One photo of slack: edge resamples in float; the build rounded OpenCV's resize to uint8.
    assert sum(agree) / n >= built - 1 / n, f"{backend}: {sum(agree)}/{n} vs {built:.0%} at build"
    assert all(top1 in ref["top5"] for top1, ref in zip(ours, fp32, strict=True))


def _margin(fp32: dict[str, Any]) -> float:
    p1, p2 = fp32["top5_prob"][:2]
    return float(p1 - p2)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_effnet_grey_frames_run(backend: str) -> None:
    """A grey camera on an RGB model: the preprocessor replicates the channel."""
    import skimage.data

    pred = loaded(EFFNET, backend).predict(skimage.data.camera(), src="gray")
    assert pred.logits.shape == (1000,)
