"""Check the committed model directories with the *runtime* packages only (no torch, no TF).

    python3 -m venv .venv-build-rt
    .venv-build-rt/bin/pip install numpy onnxruntime ai-edge-litert scikit-image scikit-learn \
        opencv-python-headless
    .venv-build-rt/bin/python models/verify.py

For every model directory: each file other than manifest.json, build.py, README*, reference.json
is listed in the manifest with the right sha256; each file loads, has the manifest's input and
output names and layout. Then:
  fashion-line       test accuracy of every file, int8-vs-fp32 top-1 agreement (needs Debian's
                     dataset-fashion-mnist)
  efficientnet-lite0 int8 top-1 on every photo in reference.json against the recorded fp32
                     top-1; coffee must be espresso (needs opencv-doc for its photos)
Prints one JSON object; exit code 1 if a check failed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent
NOT_LISTED = {"manifest.json", "build.py", "reference.json"}
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Runner:
    """One model file behind a common call: float input in the file's layout → float outputs."""

    def __init__(self, path: Path, entry: dict) -> None:
        self.entry = entry
        if entry["runtime"] == "onnx":
            import onnxruntime as ort

            self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in self.sess.get_outputs()]
            assert self.sess.get_inputs()[0].name == entry["input"], "input name"
            assert set(entry["outputs"].values()) <= set(names), f"outputs {names}"
        else:
            from ai_edge_litert.interpreter import Interpreter

            self.interp = Interpreter(model_path=str(path), num_threads=2)
            self.interp.allocate_tensors()
            self.inp = self.interp.get_input_details()[0]
            assert self.inp["name"] == entry["input"], f"input name {self.inp['name']}"
            self.outs = {o["name"]: o for o in self.interp.get_output_details()}
            assert set(entry["outputs"].values()) <= set(self.outs), f"outputs {list(self.outs)}"

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``x``: float32 N×H×W×C (normalised); transposed here for NCHW files."""
        if self.entry["layout"] == "nchw":
            x = x.transpose(0, 3, 1, 2)
        if self.entry["runtime"] == "onnx":
            names = list(self.entry["outputs"].values())
            res = self.sess.run(names, {self.entry["input"]: x.astype(np.float32)})
            return dict(zip(self.entry["outputs"], res, strict=True))
        scale, zp = self.inp["quantization"]
        info = np.iinfo(self.inp["dtype"])
        out: dict[str, list[np.ndarray]] = {k: [] for k in self.entry["outputs"]}
        for xi in x:  # TFLite files are batch 1
            q = np.clip(np.round(xi[None] / scale + zp), info.min, info.max)
            self.interp.set_tensor(self.inp["index"], q.astype(self.inp["dtype"]))
            self.interp.invoke()
            for key, name in self.entry["outputs"].items():
                d = self.outs[name]
                s, z = d["quantization"]
                out[key].append((self.interp.get_tensor(d["index"]).astype(np.float32) - z) * s)
        return {k: np.concatenate(v) for k, v in out.items()}


def check_directory(d: Path) -> tuple[dict, dict[str, Runner], list[str]]:
    errors = []
    manifest = json.loads((d / "manifest.json").read_text())
    present = {
        p.name
        for p in d.iterdir()
        if p.is_file()
        and p.name not in NOT_LISTED
        and not p.name.startswith("README")
        and not p.name.endswith(".pyc")
    }
    if present != set(manifest["files"]):
        errors.append(f"{d.name}: files {sorted(present)} != manifest {sorted(manifest['files'])}")
    runners = {}
    for fname, entry in manifest["files"].items():
        p = d / fname
        if not p.exists():
            errors.append(f"{d.name}/{fname}: listed but missing")
            continue
        if entry.get("runtime") not in ("onnx", "tflite"):  # e.g. `edge calibrate` output
            if sha256(p) != entry["sha256"]:
                errors.append(f"{d.name}/{fname}: sha256 mismatch")
            continue
        if sha256(p) != entry["sha256"]:
            errors.append(f"{d.name}/{fname}: sha256 mismatch")
        try:
            runners[fname] = Runner(p, entry)
        except Exception as e:
            errors.append(f"{d.name}/{fname}: {type(e).__name__}: {e}")
    return manifest, runners, errors


def read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = np.frombuffer(raw, ">u4", count=raw[3], offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def verify_fashion(d: Path) -> tuple[dict, list[str]]:
    manifest, runners, errors = check_directory(d)
    x = read_idx(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"))
    mean, std = manifest["input"]["mean"][0], manifest["input"]["std"][0]
    xn = ((x.astype(np.float32) - mean) / std)[..., None]  # N×28×28×1
    preds = {}
    for fname, run in runners.items():
        preds[fname] = np.concatenate(
            [run(xn[i : i + 500])["logits"].argmax(1) for i in range(0, len(xn), 500)]
        )
    fp32 = next(f for f in preds if manifest["files"][f]["precision"] == "fp32")
    res = {
        "test_accuracy": {f: round(float((p == y).mean()), 4) for f, p in preds.items()},
        "top1_agreement_with_fp32": {
            f: round(float((p == preds[fp32]).mean()), 4) for f, p in preds.items() if f != fp32
        },
    }
    acc32 = res["test_accuracy"][fp32]
    if acc32 < 0.91:
        errors.append(f"fashion fp32 accuracy {acc32} < 0.91")
    for f, a in res["test_accuracy"].items():
        if acc32 - a > 0.01:
            errors.append(f"{f}: accuracy {a} more than 1 point below fp32 {acc32}")
    for f, a in res["top1_agreement_with_fp32"].items():
        if a < 0.99:
            errors.append(f"{f}: top-1 agreement {a} < 0.99")
    return res, errors


def load_photo(photo_id: str) -> np.ndarray:
    """A reference photo as uint8 RGB H×W×3, loaded the way build.py loaded it."""
    source, name = photo_id.split(":", 1)
    if source == "skimage":
        import skimage.data

        if name.startswith("stereo_motorcycle["):
            img = skimage.data.stereo_motorcycle()[int(name[-2])]
        else:
            img = getattr(skimage.data, name)()
    elif source == "sklearn":
        import sklearn.datasets

        s = sklearn.datasets.load_sample_images()
        img = s.images[[os.path.basename(f) for f in s.filenames].index(name)]
    else:
        import cv2

        bgr = cv2.imread(f"/usr/share/doc/opencv-doc/examples/data/{name}", cv2.IMREAD_COLOR)
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def verify_effnet(d: Path) -> tuple[dict, list[str]]:
    import cv2

    manifest, runners, errors = check_directory(d)
    ref = json.loads((d / "reference.json").read_text())
    w, h = manifest["input"]["size"]
    mean = np.array(manifest["input"]["mean"], np.float32)
    std = np.array(manifest["input"]["std"], np.float32)
    agree = {f: [] for f in runners}
    per_photo = {}
    for row in ref["images"]:
        img = load_photo(row["id"])
        side = min(img.shape[:2])
        y0, x0 = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        crop = img[y0 : y0 + side, x0 : x0 + side]
        small = cv2.resize(crop.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        x = (small - mean) / std
        got = {}
        for fname, run in runners.items():
            top1 = int(run(x[None])["logits"][0].argmax())
            got[fname] = top1
            agree[fname].append(top1 == row["fp32"]["top1"])
        per_photo[row["id"]] = got
    labels = manifest["labels"]
    res = {
        "n_photos": len(ref["images"]),
        "top1_agreement_with_fp32_reference": {
            f: round(float(np.mean(a)), 4) for f, a in agree.items()
        },
        "coffee": {f: labels[t] for f, t in per_photo["skimage:coffee"].items()},
    }
    for f, lab in res["coffee"].items():
        if lab != "espresso":
            errors.append(f"{f}: coffee classified as {lab!r}")
    return res, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", type=Path, default=MODELS)
    args = ap.parse_args(argv)
    report, errors = {}, []
    for name, fn in (("fashion-line", verify_fashion), ("efficientnet-lite0", verify_effnet)):
        if (args.models / name / "manifest.json").exists():
            report[name], errs = fn(args.models / name)
            errors += errs
    report["numpy"] = np.__version__
    report["errors"] = errors
    print(json.dumps(report, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
