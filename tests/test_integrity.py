"""The runtime uses only what the manifest's hashes cover, and refuses values that load but
cannot work: each test is a fault tried on a copy of the real ``models/fashion-line``, and
the one-line :class:`~edge.errors.ModelError` (exit code 2 from ``edge run``) it must meet.

The copies are "released" with the fault in them — the manifest's sha256s updated to match —
so the hash of a tampered file is never what refuses it, only the check under test.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _models import copy_model, edit_json, edit_manifest, rehash

from edge.errors import ModelError
from edge.judge.calibration import CALIBRATION_FILE, OOD_FILE, load_calibration
from edge.model import load_model
from edge.model.backends.onnx_proto import MAX_DEPTH, ProtoError, external_tensors
from edge.model.manifest import MAX_INPUT_SIDE, Manifest

INT8_ONNX = "fashion-line.int8.onnx"
INT8_TFLITE = "fashion-line.int8.tflite"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return copy_model(tmp_path / "models")


def edge_run(model: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            "--model",
            str(model),
            "--max-frames",
            "20",
            "--no-metrics",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """``edge run`` refused the model directory: exit code 2, one line, no traceback."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- 1. Calibration files are read through the manifest ------------------------------------


def unlist_calibration_and_open_the_gate(model: Path) -> None:
    """The reported attack: the calibration no longer listed, then edited to accept all."""

    def unlist(doc: dict[str, Any]) -> None:
        del doc["files"][CALIBRATION_FILE], doc["files"][OOD_FILE]

    edit_manifest(model, unlist)

    def open_gate(doc: dict[str, Any]) -> None:
        doc["gate"]["threshold"] = 1e9
        doc["review"]["confidence"] = 0

    edit_json(model / CALIBRATION_FILE, open_gate)


def test_unlisted_calibration_is_refused_not_used(model_dir: Path) -> None:
    unlist_calibration_and_open_the_gate(model_dir)
    manifest = load_model(model_dir).manifest
    with pytest.raises(
        ModelError,
        match=rf"{CALIBRATION_FILE}: calibration data that "
        r"manifest.json does not list, so no hash covers it",
    ):
        load_calibration(manifest)


def test_edge_run_refuses_an_unlisted_calibration(model_dir: Path, tmp_path: Path) -> None:
    """It used to ACCEPT every frame of the sample video with the edited gate."""
    unlist_calibration_and_open_the_gate(model_dir)
    assert_refused(edge_run(model_dir, tmp_path), CALIBRATION_FILE, "does not list")
    assert not (tmp_path / "edge-data").exists()  # refused before anything was written


def test_unlisted_ood_reference_is_refused(model_dir: Path) -> None:
    edit_manifest(model_dir, lambda doc: doc["files"].pop(OOD_FILE))
    with pytest.raises(ModelError, match=rf"{OOD_FILE}: calibration data that manifest.json"):
        load_calibration(Manifest.load(model_dir))


def test_calibration_listed_without_its_ood_reference(model_dir: Path) -> None:
    edit_manifest(model_dir, lambda doc: doc["files"].pop(OOD_FILE))
    (model_dir / OOD_FILE).unlink()
    with pytest.raises(ModelError, match=rf"lists {CALIBRATION_FILE} but not {OOD_FILE}"):
        load_calibration(Manifest.load(model_dir))


def test_uncalibrated_directory_has_no_calibration(model_dir: Path) -> None:
    edit_manifest(
        model_dir, lambda doc: [doc["files"].pop(n) for n in (CALIBRATION_FILE, OOD_FILE)]
    )
    for name in (CALIBRATION_FILE, OOD_FILE):
        (model_dir / name).unlink()
    assert load_calibration(Manifest.load(model_dir)) is None


@pytest.mark.parametrize("name", [CALIBRATION_FILE, OOD_FILE])
def test_calibration_replaced_after_loading_is_not_used(model_dir: Path, name: str) -> None:
    """The model was verified and loaded; the file is swapped before the calibration is
    read. What is parsed must be what the manifest hashed, so the swap is a mismatch."""
    manifest = load_model(model_dir).manifest
    content = (model_dir / name).read_bytes()
    (model_dir / name).write_bytes(content.replace(b"0", b"1", 1))
    with pytest.raises(ModelError, match=rf"{name}: sha256 mismatch"):
        load_calibration(manifest)


def test_calibration_is_parsed_from_the_hashed_bytes(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second read from disk: the bytes ``Manifest.read`` checked are the ones parsed."""
    manifest = Manifest.load(model_dir)
    reads: list[str] = []
    original = Manifest.read

    def read(self: Manifest, file: Any) -> bytes:
        reads.append(file.name)
        return original(self, file)

    monkeypatch.setattr(Manifest, "read", read)
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("read from a path"))
    monkeypatch.setattr(Path, "read_bytes", lambda *a, **k: pytest.fail("read from a path"))
    assert load_calibration(manifest) is not None
    assert reads == [CALIBRATION_FILE, OOD_FILE]


# -- 2. ONNX external data ----------------------------------------------------------------


def to_external_data(path: Path, location: str = "weights.bin", **options: Any) -> list[str]:
    """Re-saves the ONNX model at ``path`` with its tensors in ``location`` beside it; returns
    the names of the tensors moved out."""
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(path))
    convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location=location, size_threshold=0, **options
    )
    onnx.save_model(model, str(path))
    reloaded = onnx.load(str(path), load_external_data=False)
    return [
        t.name for t in reloaded.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]


def test_onnx_external_data_is_refused(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = to_external_data(model_dir / INT8_ONNX)
    assert moved
    assert (model_dir / "weights.bin").is_file()
    rehash(model_dir, INT8_ONNX)
    with pytest.raises(
        ModelError,
        match=rf"{INT8_ONNX}: tensor .* external file \('weights.bin'\)"
        r".*re-save the model with its weights inside",
    ):
        load_model(model_dir, backend="onnx")
    # Random bytes as weights, and weights planted in the current directory, meet the same
    # refusal: no file the manifest does not hash is ever opened.
    (model_dir / "weights.bin").write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="external file"):
        load_model(model_dir, backend="onnx")
    (model_dir / "weights.bin").rename(tmp_path / "weights.bin")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="external file"):
        load_model(model_dir, backend="onnx")
    assert_refused(edge_run(model_dir, tmp_path), INT8_ONNX, "external file")


def test_external_data_scan_finds_what_onnx_wrote(model_dir: Path) -> None:
    path = model_dir / INT8_ONNX
    assert external_tensors(path.read_bytes()) == []
    moved = to_external_data(path, convert_attribute=True)
    found = external_tensors(path.read_bytes())
    assert {name for name, _ in found} >= set(moved)
    assert {location for _, location in found} == {"weights.bin"}


def test_bundled_onnx_files_have_no_external_data(model_dir: Path) -> None:
    for name in (INT8_ONNX, "fashion-line.fp32.onnx"):
        assert external_tensors((model_dir / name).read_bytes()) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x08", "varint runs past"),  # field 1, varint, no value
        (b"\x3a\x05ab", "runs past the end"),  # graph of 5 bytes, 2 given
        (b"\x0b", "wire type 3"),  # a group
        (b"\x00", "field number 0"),
    ],
)
def test_external_data_scan_refuses_malformed_bytes(content: bytes, problem: str) -> None:
    with pytest.raises(ProtoError, match=problem):
        external_tensors(content)


def test_external_data_scan_does_not_recurse_on_deep_nesting() -> None:
    """Sub-graphs nested far deeper than any model: a ProtoError, not a RecursionError."""
    message = b""
    for _ in range(10_000):  # graph → node → attribute(g) → graph → ...
        attribute = _field(6, message)
        node = _field(5, attribute)
        message = _field(1, node)
    with pytest.raises(ProtoError, match=f"nested more than {MAX_DEPTH} deep"):
        external_tensors(_field(7, message))


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# -- 3. Symlinks out of the model directory ------------------------------------------------


@pytest.mark.parametrize("name", [INT8_ONNX, INT8_TFLITE, CALIBRATION_FILE, "manifest.json"])
def test_symlink_out_of_the_directory_is_refused(
    model_dir: Path, tmp_path: Path, name: str
) -> None:
    """Even to an identical copy: the directory must hold what it releases."""
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    (model_dir / name).rename(outside)
    (model_dir / name).symlink_to(outside)
    with pytest.raises(ModelError, match=rf"{name}: a symlink to .*outside the model directory"):
        load_model(model_dir)


def test_unlisted_symlink_out_of_the_directory_is_refused(model_dir: Path) -> None:
    (model_dir / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(ModelError, match=r"notes.txt: a symlink to /etc/hostname, outside"):
        load_model(model_dir)


def test_symlinks_inside_the_directory_are_fine(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "releases").mkdir()
    (model_dir / INT8_TFLITE).rename(model_dir / "releases" / INT8_TFLITE)
    (model_dir / INT8_TFLITE).symlink_to(Path("releases") / INT8_TFLITE)
    current = tmp_path / "current"
    current.symlink_to(model_dir)  # the directory itself may be a link (to a release)
    model = load_model(current, backend="tflite")
    assert model.manifest.root == model_dir.resolve()
    assert load_calibration(model.manifest) is not None


def test_fifo_under_a_listed_name_does_not_hang_the_load(model_dir: Path) -> None:
    (model_dir / CALIBRATION_FILE).unlink()
    os.mkfifo(model_dir / CALIBRATION_FILE)  # opening it for reading would wait for a writer
    with pytest.raises(ModelError, match=rf"{CALIBRATION_FILE}: listed in manifest.json but"):
        load_model(model_dir)


# -- 4. Values that load but cannot work ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(temperature=math.nan), "temperature must be a positive finite"),
        (lambda d: d.update(temperature=0), "temperature must be a positive finite"),
        (lambda d: d.update(temperature=-1.5), "temperature must be a positive finite"),
        (lambda d: d.update(temperature=math.inf), "temperature must be a positive finite"),
        (lambda d: d.update(temperature="hot"), "malformed"),
        (lambda d: d["review"].update(confidence=math.nan), r"review.confidence must be"),
        (lambda d: d["review"].update(confidence=2), r"review.confidence must be"),
        (lambda d: d["gate"].update(threshold=math.nan), r"gate.threshold is NaN"),
        (lambda d: d["gate"].update(signals=["brightness", "x"]), r"gate.signals must name"),
        (lambda d: d["gate"].update(signals=[]), r"gate.signals must name"),
        (
            lambda d: d["gate"]["distributions"]["knn"].update(quantiles=[math.nan] * 107),
            r"gate.distributions.knn.quantiles must be",
        ),
        (
            lambda d: d["gate"]["distributions"]["knn"].update(floor=0),
            r"gate.distributions.knn.floor must be",
        ),
        (lambda d: d.pop("gate"), "malformed"),
    ],
    ids=[
        "temperature-nan",
        "temperature-0",
        "temperature-negative",
        "temperature-inf",
        "temperature-text",
        "review-nan",
        "review-2",
        "threshold-nan",
        "unknown-signal",
        "no-signals",
        "quantiles-nan",
        "floor-0",
        "no-gate",
    ],
)
def test_calibration_that_cannot_judge_is_refused(
    model_dir: Path, change: Any, message: str
) -> None:
    edit_json(model_dir / CALIBRATION_FILE, change)
    rehash(model_dir, CALIBRATION_FILE)
    with pytest.raises(ModelError, match=rf"{CALIBRATION_FILE}: .*{message}"):
        load_calibration(Manifest.load(model_dir))


def test_edge_run_refuses_a_zero_temperature(model_dir: Path, tmp_path: Path) -> None:
    """It used to start, fail on every frame (1316 errors) and exit 0."""
    edit_json(model_dir / CALIBRATION_FILE, lambda d: d.update(temperature=0))
    rehash(model_dir, CALIBRATION_FILE)
    assert_refused(edge_run(model_dir, tmp_path), CALIBRATION_FILE, "temperature")


def rewrite_ood(model: Path, **changes: Any) -> None:
    with np.load(model / OOD_FILE) as z:
        arrays = {name: z[name] for name in z.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (model / OOD_FILE).write_bytes(buffer.getvalue())
    rehash(model, OOD_FILE)


def _ood_array(model: Path, name: str) -> np.ndarray:
    with np.load(model / OOD_FILE) as z:
        array: np.ndarray = z[name].copy()
    return array


def _nan_bank(model: Path) -> np.ndarray:
    bank = _ood_array(model, "bank")
    bank[3, 5] = np.nan
    return bank


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (lambda m: {"k": np.array(0)}, "k must be an integer from 1 to the bank's"),
        (lambda m: {"k": np.array(10**9)}, "k must be an integer from 1 to the bank's"),
        (lambda m: {"k": np.array(1.5)}, "k must be an integer"),
        (lambda m: {"k": np.array([1, 2])}, "k must have 0 dimension"),
        (lambda m: {"bank": _nan_bank(m)}, "bank must hold finite numbers"),
        (
            lambda m: {"center": np.full_like(_ood_array(m, "center"), np.inf)},
            "center must hold finite",
        ),
        (lambda m: {"whitener": None}, "no array whitener"),
        (lambda m: {"center": np.zeros(7, np.float32)}, "not a usable OOD reference"),
    ],
    ids=["k-0", "k-huge", "k-float", "k-list", "bank-nan", "center-inf", "no-whitener", "shape"],
)
def test_ood_reference_that_cannot_score_is_refused(
    model_dir: Path, changes: Any, message: str
) -> None:
    rewrite_ood(model_dir, **changes(model_dir))
    with pytest.raises(ModelError, match=rf"{OOD_FILE}: .*{message}"):
        load_calibration(Manifest.load(model_dir))


def test_ood_reference_that_is_not_an_npz_is_refused(model_dir: Path) -> None:
    (model_dir / OOD_FILE).write_bytes(b"PK\x03\x04 not a zip")
    rehash(model_dir, OOD_FILE)
    with pytest.raises(ModelError, match=rf"{OOD_FILE}: not a usable OOD reference"):
        load_calibration(Manifest.load(model_dir))


@pytest.mark.parametrize("size", [[MAX_INPUT_SIDE + 1, 28], [28, 2**40], [2**70, 2**70]])
def test_input_size_beyond_the_preprocessor_is_refused(model_dir: Path, size: list[int]) -> None:
    edit_manifest(model_dir, lambda doc: doc["input"].update(size=size))
    with pytest.raises(
        ModelError,
        match=rf"input.size must be \[width, height\], integers from "
        rf"1 to {MAX_INPUT_SIDE}",
    ):
        load_model(model_dir)


def test_largest_input_size_is_the_core_limit() -> None:
    from edge import Preprocessor

    Preprocessor(size=(MAX_INPUT_SIDE, 1), dtype="float32")
    with pytest.raises(ValueError, match=f"up to {MAX_INPUT_SIDE}"):
        Preprocessor(size=(MAX_INPUT_SIDE + 1, 1), dtype="float32")


def test_deeply_nested_manifest_is_one_error_line(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match=r"manifest.json: JSON nested too deeply"):
        Manifest.load(model_dir)
    assert_refused(edge_run(model_dir, tmp_path), "manifest.json", "nested too deeply")


def test_deeply_nested_calibration_is_one_error_line(model_dir: Path) -> None:
    (model_dir / CALIBRATION_FILE).write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    rehash(model_dir, CALIBRATION_FILE)
    with pytest.raises(ModelError, match=rf"{CALIBRATION_FILE}: JSON nested too deeply"):
        load_calibration(Manifest.load(model_dir))


def test_bundled_models_still_load_with_their_calibration() -> None:
    from _models import built_model_dir

    for name in ("fashion-line", "efficientnet-lite0"):
        manifest = Manifest.load(built_model_dir(name))
        manifest.verify()
        assert load_calibration(manifest) is not None
        doc = json.loads(manifest.path.read_text())
        assert {CALIBRATION_FILE, OOD_FILE} <= set(doc["files"])
