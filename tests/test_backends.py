"""Backends and model directories: the registry, runtime settings, zero-copy paths, and every
way a model directory or a runtime can be wrong, each checked by its message.

The directory tests work on a copy of the real ``models/fashion-line`` (small: 1.5 MB), so the
files the runtimes open are real models, and the damage done to them is the only fake part.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _models import built_model_dir, edit_manifest, rehash

import edge.model.backends.tflite
from edge.errors import BackendUnavailable, ModelError
from edge.model import Model, load_model
from edge.model.backends import BACKEND_NAMES, available_backends, get_backend
from edge.model.manifest import Manifest

NAME = "fashion-line"
INT8_ONNX, INT8_TFLITE, FP32_ONNX = (
    f"{NAME}.int8.onnx",
    f"{NAME}.int8.tflite",
    f"{NAME}.fp32.onnx",
)


@pytest.fixture(scope="session")
def source_dir() -> Path:
    """The real fashion-line model directory; its absence fails (never skips) the tests."""
    return built_model_dir(NAME)


@pytest.fixture
def model_dir(source_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model directory, free to damage."""
    return Path(shutil.copytree(source_dir, tmp_path / NAME))


@pytest.fixture(scope="session")
def frames() -> np.ndarray:
    """A few real frames: Fashion-MNIST test images (28×28 grey)."""
    import gzip

    path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: apt-get install dataset-fashion-mnist")
    with gzip.open(path, "rb") as f:
        raw = f.read(16 + 64 * 28 * 28)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(64, 28, 28)


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def no_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a board without ONNX Runtime: importing it fails."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


@pytest.fixture
def no_litert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a board without LiteRT (neither package importable)."""
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)


def fake_tflite_runtime(monkeypatch: pytest.MonkeyPatch, interpreter: type) -> None:
    """Only `tflite_runtime` is importable, and its Interpreter is `interpreter`."""
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    package = types.ModuleType("tflite_runtime")
    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = interpreter  # type: ignore[attr-defined]
    package.interpreter = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)


# ──────────────────────────────────────────────────────────────────────────── registry


def test_registry_names_both_runtimes() -> None:
    assert BACKEND_NAMES == ("onnx", "tflite")
    assert get_backend("onnx").name == "onnx"
    assert get_backend("tflite").name == "tflite"
    assert available_backends() == ["onnx", "tflite"]


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'tensorrt'; choose one of onnx, tflite"):
        get_backend("tensorrt")


def test_get_backend_does_not_need_the_runtime(no_onnxruntime: None, no_litert: None) -> None:
    assert get_backend("onnx").available() is False
    assert get_backend("tflite").available() is False
    assert available_backends() == []


# ──────────────────────────────────────────────────────────────────────────── runtime missing


def test_onnxruntime_missing_says_pip_install(model_dir: Path, no_onnxruntime: None) -> None:
    with pytest.raises(BackendUnavailable, match=r"`pip install onnxruntime`"):
        load_model(model_dir, backend="onnx")


def test_litert_missing_says_pip_install(model_dir: Path, no_litert: None) -> None:
    with pytest.raises(
        BackendUnavailable,
        match=r"`pip install ai-edge-litert` \(or `pip install tflite-runtime` on boards",
    ):
        load_model(model_dir, backend="tflite")


def test_backend_unavailable_is_an_import_error() -> None:
    assert issubclass(BackendUnavailable, ImportError)
    assert issubclass(ModelError, ValueError)


def test_auto_falls_back_to_tflite_without_onnxruntime(
    model_dir: Path, no_onnxruntime: None
) -> None:
    assert load_model(model_dir).backend == "tflite"


def test_auto_prefers_onnx(model_dir: Path) -> None:
    assert load_model(model_dir).backend == "onnx"


def test_auto_takes_tflite_when_onnx_lacks_the_precision(model_dir: Path) -> None:
    (model_dir / INT8_ONNX).unlink()
    edit_manifest(model_dir, lambda doc: doc["files"].pop(INT8_ONNX))
    assert load_model(model_dir, precision="int8").backend == "tflite"


def test_auto_without_any_runtime_names_both_packages(
    model_dir: Path, no_onnxruntime: None, no_litert: None
) -> None:
    with pytest.raises(
        BackendUnavailable, match=r"`pip install onnxruntime` \(onnx\) or `pip install ai-edge-l"
    ):
        load_model(model_dir)


def test_tflite_runtime_is_the_fallback(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_edge_litert.interpreter import Interpreter

    fake_tflite_runtime(monkeypatch, Interpreter)
    model = load_model(model_dir, backend="tflite")
    assert model._session.package == "tflite-runtime"  # type: ignore[attr-defined]
    assert model.predict(np.zeros((28, 28), np.uint8), src="gray").logits.shape == (10,)


def test_tflite_runtime_under_numpy2_says_use_litert(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tflite-runtime 2.14 imports under NumPy 2 but cannot create an interpreter."""

    class Numpy2Interpreter:
        def __init__(self, **kwargs: object) -> None:
            raise SystemError(
                "<built-in method CreateWrapperFromFile of PyCapsule object at 0x7f3a> "
                "returned a result with an exception set"
            )

    fake_tflite_runtime(monkeypatch, Numpy2Interpreter)
    monkeypatch.setattr(np, "__version__", "2.1.0")
    with pytest.raises(BackendUnavailable) as info:
        load_model(model_dir, backend="tflite")
    assert "tflite-runtime needs numpy<2; install ai-edge-litert instead" in str(info.value)
    assert "pip install ai-edge-litert" in str(info.value)
    assert edge.model.backends.tflite.NUMPY2_MESSAGE in str(info.value)


# ──────────────────────────────────────────────────────────────────────────── model directory


def test_missing_manifest(model_dir: Path) -> None:
    (model_dir / "manifest.json").unlink()
    with pytest.raises(ModelError, match=r"fashion-line: missing manifest.json, so this is not a"):
        load_model(model_dir)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope: no such model directory"):
        load_model(tmp_path / "nope")


def test_manifest_path_is_accepted_too(model_dir: Path) -> None:
    assert load_model(model_dir / "manifest.json").name == NAME


def test_manifest_not_json(model_dir: Path) -> None:
    (model_dir / "manifest.json").write_text("{ not json")
    with pytest.raises(ModelError, match=r"manifest.json: not valid JSON \(line 1 column 3"):
        load_model(model_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["input"].pop("size"), r"manifest.json: input.size is missing"),
        (lambda d: d.pop("labels"), r"manifest.json: labels is missing"),
        (lambda d: d.pop("provenance"), r"manifest.json: provenance is missing"),
        (
            lambda d: d["files"][INT8_ONNX].pop("sha256"),
            r'manifest.json: files\["fashion-line.int8.onnx"\].sha256 is missing',
        ),
        (
            lambda d: d["files"][INT8_TFLITE]["outputs"].pop("embedding"),
            r'files\["fashion-line.int8.tflite"\].outputs.embedding is missing',
        ),
        (
            lambda d: d["input"].update(size=[28]),
            r"input.size must be \[width, height\], integers from 1 to 32768 .*, got \[28\]",
        ),
        (
            lambda d: d["input"].update(color="yuv"),
            r"input.color must be one of rgb, bgr, gray; got 'yuv'",
        ),
        (
            lambda d: d["input"].update(std=[0.0]),
            r"input.std must hold finite positive numbers",
        ),
        (
            lambda d: d["files"][INT8_ONNX].update(layout="hwc"),
            r'files\["fashion-line.int8.onnx"\].layout must be one of nhwc, nchw',
        ),
        (
            lambda d: d["files"][INT8_ONNX].update(sha256="abc"),
            r"sha256 must be 64 hex digits, got 'abc'",
        ),
        (lambda d: d.update(format_version=2), r"format_version 2 is newer .*; upgrade edge"),
        (lambda d: d.update(files={"../x.onnx": {}}), r"must name a file inside the model dir"),
    ],
    ids=[
        "no-size",
        "no-labels",
        "no-provenance",
        "no-sha256",
        "no-embedding-output",
        "size-not-pair",
        "bad-color",
        "zero-std",
        "bad-layout",
        "bad-sha256",
        "newer-format",
        "path-as-file-name",
    ],
)
def test_bad_manifest_names_the_key(
    model_dir: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    edit_manifest(model_dir, change)
    with pytest.raises(ModelError, match=message) as info:
        load_model(model_dir)
    assert "rebuild the model directory" in str(info.value) or "upgrade edge" in str(info.value)


@pytest.mark.parametrize("name", [INT8_ONNX, INT8_TFLITE, FP32_ONNX])
def test_corrupted_file_is_a_hash_mismatch(model_dir: Path, name: str) -> None:
    """One flipped bit in *any* listed file refuses the directory, whatever file is used."""
    flip_byte(model_dir / name)
    for backend in ("onnx", "tflite"):
        with pytest.raises(ModelError, match=rf"{name}: sha256 mismatch: manifest.json says"):
            load_model(model_dir, backend=backend)


def test_swapped_file_is_a_hash_mismatch(model_dir: Path) -> None:
    shutil.copyfile(model_dir / FP32_ONNX, model_dir / INT8_ONNX)
    with pytest.raises(ModelError, match=rf"{INT8_ONNX}: sha256 mismatch.*restore the model dir"):
        load_model(model_dir)


def test_listed_file_missing(model_dir: Path) -> None:
    (model_dir / FP32_ONNX).unlink()
    with pytest.raises(ModelError, match=rf"{FP32_ONNX}: listed in manifest.json but missing"):
        load_model(model_dir)


@pytest.mark.parametrize("stray", ["old.int8.onnx", "other.tflite"])
def test_unlisted_model_file_is_a_wrong_file(model_dir: Path, stray: str) -> None:
    shutil.copyfile(model_dir / INT8_ONNX, model_dir / stray)
    with pytest.raises(ModelError, match=rf"{stray}: wrong file in the directory"):
        load_model(model_dir)


def test_file_listed_for_the_wrong_runtime(model_dir: Path) -> None:
    edit_manifest(model_dir, lambda d: d["files"][INT8_TFLITE].update(runtime="onnx"))
    with pytest.raises(ModelError, match=r"runtime is 'onnx' but the file is not a .onnx file"):
        load_model(model_dir)


def test_unknown_keys_and_extra_files_are_accepted(model_dir: Path) -> None:
    """What `edge calibrate` adds later: new sections, data files with a role or no runtime."""
    (model_dir / "ood.npz").write_bytes(b"reference statistics")
    (model_dir / "notes.txt").write_text("not listed, not a model file: fine")
    digest = hashlib.sha256(b"reference statistics").hexdigest()

    def calibrate(doc: dict[str, Any]) -> None:
        doc["calibration"] = {"temperature": 1.3}
        doc["files"]["ood.npz"] = {"sha256": digest, "runtime": None, "role": "ood-reference"}
        doc["files"][INT8_ONNX]["future_key"] = 1

    edit_manifest(model_dir, calibrate)
    model = load_model(model_dir)
    assert model.manifest.data["calibration"] == {"temperature": 1.3}
    assert model.manifest.file("ood.npz").role == "ood-reference"
    assert [f.name for f in model.manifest.model_files()] == [INT8_ONNX, INT8_TFLITE, FP32_ONNX]
    # ... and the data file is hashed like any other.
    (model_dir / "ood.npz").write_bytes(b"tampered")
    with pytest.raises(ModelError, match=r"ood.npz: sha256 mismatch"):
        load_model(model_dir)


def test_no_file_of_the_precision(model_dir: Path) -> None:
    with pytest.raises(
        ModelError,
        match=r"no tflite file of precision 'fp16' .* \(it has: onnx int8, tflite int8, onnx fp32",
    ):
        load_model(model_dir, backend="tflite", precision="fp16")


def test_labels_not_matching_the_logits(model_dir: Path) -> None:
    edit_manifest(model_dir, lambda d: d["labels"].pop())
    for backend in ("onnx", "tflite"):
        with pytest.raises(ModelError, match=r"has 10 classes but the manifest has 9 labels"):
            load_model(model_dir, backend=backend)


@pytest.mark.parametrize("name", [INT8_ONNX, INT8_TFLITE])
def test_wrong_input_name(model_dir: Path, name: str) -> None:
    edit_manifest(model_dir, lambda d: d["files"][name].update(input="pixels"))
    with pytest.raises(ModelError, match=r"the manifest names input 'pixels', the model's inputs"):
        load_model(model_dir, backend="onnx" if name.endswith("onnx") else "tflite")


@pytest.mark.parametrize("name", [INT8_ONNX, INT8_TFLITE])
def test_wrong_layout(model_dir: Path, name: str) -> None:
    edit_manifest(
        model_dir,
        lambda d: d["files"][name].update(layout="nhwc" if name.endswith("onnx") else "nchw"),
    )
    with pytest.raises(ModelError, match=r"fix input or layout in the manifest"):
        load_model(model_dir, backend="onnx" if name.endswith("onnx") else "tflite")


@pytest.mark.parametrize(
    ("name", "backend", "message"),
    [(INT8_ONNX, "onnx", "not an ONNX model"), (INT8_TFLITE, "tflite", "ai-edge-litert cannot")],
)
def test_unreadable_model_with_a_valid_hash(
    model_dir: Path, name: str, backend: str, message: str
) -> None:
    (model_dir / name).write_bytes(b"\x00not a model\x00" * 64)
    rehash(model_dir, name)
    with pytest.raises(ModelError, match=rf"{name}: {message}.*rebuild"):
        load_model(model_dir, backend=backend)


def test_verify_checks_every_file(model_dir: Path) -> None:
    manifest = Manifest.load(model_dir)
    manifest.verify()
    flip_byte(model_dir / FP32_ONNX, offset=0)
    with pytest.raises(ModelError, match=rf"{FP32_ONNX}: sha256 mismatch"):
        manifest.verify()


# ──────────────────────────────────────────────────────────────────────────── runtime settings


def test_onnx_session_options(model_dir: Path) -> None:
    model = load_model(model_dir, backend="onnx", threads=2, optimization="basic")
    options = model._session.session.get_session_options()  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert str(options.graph_optimization_level).endswith("ORT_ENABLE_BASIC")
    default = load_model(model_dir, backend="onnx")._session.session  # type: ignore[attr-defined]
    assert str(default.get_session_options().graph_optimization_level).endswith("ORT_ENABLE_ALL")


def test_onnx_providers_by_name(model_dir: Path) -> None:
    model = load_model(model_dir, backend="onnx", providers=["cpu"])
    assert model._session.providers == ["CPUExecutionProvider"]  # type: ignore[attr-defined]


def test_unavailable_provider_lists_the_available_ones(model_dir: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"provider 'CUDAExecutionProvider' is not available .*; available: .*CPUExecution",
    ):
        load_model(model_dir, backend="onnx", providers=["CUDAExecutionProvider"])


def test_unknown_optimization(model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown graph optimisation 'max'; choose one of disa"):
        load_model(model_dir, backend="onnx", optimization="max")


def test_onnx_settings_are_refused_by_tflite(model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"ONNX Runtime settings; the tflite backend takes"):
        load_model(model_dir, backend="tflite", providers=["cpu"])
    # "auto" with an ONNX Runtime setting means ONNX Runtime.
    assert load_model(model_dir, providers=["cpu"]).backend == "onnx"


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_threads(model_dir: Path, threads: Any) -> None:
    for backend in ("onnx", "tflite"):
        with pytest.raises(ValueError, match=r"threads must be a positive integer or None"):
            load_model(model_dir, backend=backend, threads=threads)


# ──────────────────────────────────────────────────────────────────────────── per-frame path


@pytest.fixture(params=BACKEND_NAMES)
def model(request: pytest.FixtureRequest, source_dir: Path) -> Model:
    return load_model(source_dir, backend=request.param, threads=1)


def test_predict_is_run_of_the_preprocessed_tensor(model: Model, frames: np.ndarray) -> None:
    pre = model.preprocessor_for("gray")
    for frame in frames[:8]:
        a = model.predict(frame, src="gray")
        b = model.run(pre(frame))
        np.testing.assert_array_equal(a.logits, b.logits)
        np.testing.assert_array_equal(a.embedding, b.embedding)


def test_results_are_not_overwritten_by_the_next_call(model: Model, frames: np.ndarray) -> None:
    first = model.predict(frames[0], src="gray")
    kept = first.logits.copy(), first.embedding.copy()
    second = model.predict(frames[1], src="gray")
    assert not np.array_equal(first.logits, second.logits)
    np.testing.assert_array_equal(first.logits, kept[0])
    np.testing.assert_array_equal(first.embedding, kept[1])
    assert not first.logits.flags.writeable
    assert first.logits.dtype == np.float32
    assert first.embedding.dtype == np.float32


def test_run_checks_shape_and_dtype(model: Model) -> None:
    shape, dtype = model.input_shape, model.input_dtype
    with pytest.raises(ValueError, match=rf"takes a \({shape[0]}, .* {dtype} tensor"):
        model.run(np.zeros(shape, np.float64))
    with pytest.raises(ValueError, match=r"got \(1, 28, 28\)"):
        model.run(np.zeros((1, 28, 28), dtype))
    with pytest.raises(ValueError, match=r"got list"):
        model.run([0.0])  # type: ignore[arg-type]


def test_a_failed_frame_does_not_wedge_the_interpreter(model: Model, frames: np.ndarray) -> None:
    """Regression: LiteRT refuses invoke() while a view of its input lives, and the traceback
    of a failed preprocessing call (kept by whoever caught it) held one."""
    expected = model.predict(frames[0], src="gray").logits
    with pytest.raises(ValueError, match=r"src='gray' must have shape") as kept:
        model.predict(np.zeros((28, 28, 3), np.uint8), src="gray")
    np.testing.assert_array_equal(model.predict(frames[0], src="gray").logits, expected)
    assert kept.value is not None


def test_concurrent_predicts_match_sequential(model: Model, frames: np.ndarray) -> None:
    expected = [model.predict(f, src="gray").logits for f in frames]
    errors: list[str] = []

    def worker() -> None:
        for _ in range(3):
            for f, want in zip(frames, expected, strict=True):
                got = model.predict(f, src="gray").logits
                if not np.array_equal(got, want):
                    errors.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_tflite_input_is_written_in_place(source_dir: Path, frames: np.ndarray) -> None:
    """The preprocessor writes into LiteRT's own input tensor: same answer as set_tensor()."""
    model = load_model(source_dir, backend="tflite", threads=1)
    interpreter = model._session.interpreter  # type: ignore[attr-defined]
    tensor = model.preprocessor_for("gray")(frames[3])
    via_view = model.run(tensor).logits
    index = interpreter.get_input_details()[0]["index"]
    interpreter.set_tensor(index, tensor)
    interpreter.invoke()
    out = interpreter.get_output_details()
    logits = next(o for o in out if o["name"] == model.file.outputs["logits"])
    scale, zero_point = logits["quantization"]
    raw = interpreter.get_tensor(logits["index"]).astype(np.float32)
    np.testing.assert_allclose(via_view, (raw[0] - zero_point) * scale, rtol=1e-6)


def test_the_backend_choices_are_the_registry_and_auto() -> None:
    from edge.model.backends import BACKEND_CHOICES, BACKEND_NAMES

    assert ("auto", *BACKEND_NAMES) == BACKEND_CHOICES
