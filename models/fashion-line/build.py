"""Build the `fashion-line` model: train a small CNN on Fashion-MNIST, export and quantize it.

Outputs (in --out, by default this script's directory):
  fashion-line.fp32.onnx    reference model, NCHW float input
  fashion-line.int8.onnx    onnxruntime static int8, QDQ, per-channel weights
  fashion-line.int8.tflite  full-integer TFLite, NHWC uint8 input, uint8 outputs
  manifest.json             the model directory's manifest (labels, input spec, hashes, provenance)
  reference.json            accuracy and int8-vs-fp32 agreement measured here

Run with the build venv (models/requirements-build.txt):
  .venv-build/bin/python models/fashion-line/build.py
Build time only; nothing here is imported by the runtime.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import buildlib

NAME = "fashion-line"
VERSION = "1.0.0"
# Debian's dataset-fashion-mnist package installs the raw IDX files here.
DATASET_DIR = "/usr/share/datasets/fashion-mnist"
DATASET_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
VAL_SIZE = 5000  # the last 5000 training images: validation, never trained on
# Preprocessing contract: value = (pixel - MEAN) / STD, i.e. pixels scaled to 0..1.
MEAN, STD = 0.0, 255.0
INPUT_NAME = "image"
EMBED_DIM = 128
N_CALIB = 1000  # training images used to calibrate the int8 models
LABEL_SMOOTHING = 0.1


# ──────────────────────────────────────────────────────────────────────────── data


def read_idx(path: str) -> np.ndarray:
    """IDX format: 2 zero bytes, a type byte (0x08 = uint8), ndim, ndim big-endian uint32 dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(data_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x_train = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    y_train = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x_test = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    y_test = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
    return {
        "train": (x_train[:-VAL_SIZE], y_train[:-VAL_SIZE]),
        "val": (x_train[-VAL_SIZE:], y_train[-VAL_SIZE:]),
        "test": (x_test, y_test),
    }


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 → float32 N×1×28×28, exactly the manifest's (pixel - mean) / std."""
    return ((images.astype(np.float32) - MEAN) / STD)[:, None]


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light augmentation: random horizontal flip and a shift of up to 2 px (zero = background).

    Garments are roughly left-right symmetric and a line camera is never perfectly centred.
    """
    n = len(images)
    flip = rng.random(n) < 0.5
    images = np.where(flip[:, None, None], images[:, :, ::-1], images)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    dx, dy = rng.integers(0, 5, n), rng.integers(0, 5, n)
    return np.stack([padded[i, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28] for i in range(n)])


# ──────────────────────────────────────────────────────────────────────────── model


class FashionNet(nn.Module):
    """Three conv blocks (32/64/128 ch, each halving the resolution) and a 128-d embedding.

    ~7.5 M multiply-adds per frame: cheap on a 2-core ARM board. Only int8-friendly ops
    (Conv, BatchNorm folded at export, ReLU, MaxPool, Gemm).
    """

    def __init__(self, n_classes: int = 10, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]

        self.features = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128))  # →128×3×3
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, embed_dim), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(embed_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(self.features(x))
        return self.classifier(self.dropout(embedding)), embedding


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        logits, _ = model(torch.from_numpy(normalise(x[i : i + 1000])))
        correct += int((logits.argmax(1).numpy() == y[i : i + 1000]).sum())
    return correct / len(x)


def train(model: nn.Module, data: dict, epochs: int, batch_size: int, seed: int) -> None:
    x, y = data["train"]
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        t0, order, total = time.time(), rng.permutation(len(x)), 0.0
        for b in range(len(x) // batch_size):
            idx = order[b * batch_size : (b + 1) * batch_size]
            xb = torch.from_numpy(normalise(augment(x[idx], rng)))
            logits, _ = model(xb)
            # Label smoothing keeps the logits in a narrow range (about ±8 instead of ±27), so
            # the int8 logits output has a finer step and close calls keep their order.
            target = torch.from_numpy(y[idx].astype(np.int64))
            loss = F.cross_entropy(logits, target, label_smoothing=LABEL_SMOOTHING)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        val = accuracy(model, *data["val"])
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / (b + 1):.4f}  val acc {val:.4f}"
            f"  ({time.time() - t0:.0f} s)",
            flush=True,
        )


def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 28, 28),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=["logits", "embedding"],
        dynamic_axes={INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,  # the TorchScript exporter: no onnxscript needed, plain static graph
    )


# ──────────────────────────────────────────────────────────────────────────── evaluation


def evaluate(out: Path, data: dict) -> tuple[dict, dict]:
    """Accuracy of each file on val/test and top-1 agreement of each int8 file with fp32."""
    fp32 = buildlib.OnnxModel(out / f"{NAME}.fp32.onnx")
    int8 = buildlib.OnnxModel(out / f"{NAME}.int8.onnx")
    tfl = buildlib.TFLiteModel(out / f"{NAME}.int8.tflite", n_classes=len(LABELS))
    report: dict = {}
    for split in ("val", "test"):
        x, y = data[split]
        xn = normalise(x)
        preds = {"fp32_onnx": [], "int8_onnx": [], "int8_tflite": []}
        emb_cos = {"int8_onnx": [], "int8_tflite": []}
        for i in range(0, len(xn), 500):
            ref = fp32(xn[i : i + 500])
            q = int8(xn[i : i + 500])
            preds["fp32_onnx"].append(ref["logits"].argmax(1))
            preds["int8_onnx"].append(q["logits"].argmax(1))
            emb_cos["int8_onnx"].append(_cos(ref["embedding"], q["embedding"]))
            t_logits, t_emb = [], []
            for j in range(i, min(i + 500, len(xn))):
                r = tfl(xn[j : j + 1].transpose(0, 2, 3, 1))  # NCHW → NHWC
                t_logits.append(r["logits"])
                t_emb.append(r["embedding"])
            preds["int8_tflite"].append(np.concatenate(t_logits).argmax(1))
            emb_cos["int8_tflite"].append(_cos(ref["embedding"], np.concatenate(t_emb)))
        p = {k: np.concatenate(v) for k, v in preds.items()}
        report[split] = {
            "n": len(y),
            "accuracy": {k: round(float((v == y).mean()), 4) for k, v in p.items()},
            "top1_agreement_with_fp32": {
                k: round(float((p[k] == p["fp32_onnx"]).mean()), 4)
                for k in ("int8_onnx", "int8_tflite")
            },
            "embedding_cosine_with_fp32_mean": {
                k: round(float(np.concatenate(v).mean()), 4) for k, v in emb_cos.items()
            },
        }
    return report, tfl.describe()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


# ──────────────────────────────────────────────────────────────────────────── main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--data-dir", default=DATASET_DIR)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (results depend on it)")
    ap.add_argument("--load-weights", type=Path, help="skip training: load this state_dict")
    ap.add_argument("--save-weights", type=Path, help="also save the trained state_dict here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data_dir)

    model = FashionNet(len(LABELS))
    t0 = time.time()
    if args.load_weights:
        model.load_state_dict(torch.load(args.load_weights, map_location="cpu"))
    else:
        train(model, data, args.epochs, args.batch_size, args.seed)
        print(f"trained in {time.time() - t0:.0f} s", flush=True)
    if args.save_weights:
        torch.save(model.state_dict(), args.save_weights)
    model.eval()
    print(f"torch test acc {accuracy(model, *data['test']):.4f}", flush=True)

    fp32_path = args.out / f"{NAME}.fp32.onnx"
    int8_path = args.out / f"{NAME}.int8.onnx"
    tflite_path = args.out / f"{NAME}.int8.tflite"
    export_onnx(model, fp32_path)

    # Calibration: a fixed random subset of the *training* split (never val or test).
    x_train = data["train"][0]
    calib = normalise(
        x_train[np.random.default_rng(args.seed).choice(len(x_train), N_CALIB, False)]
    )
    buildlib.quantize_onnx_int8(fp32_path, int8_path, calib, batch=50)
    buildlib.onnx_to_tflite_int8(
        fp32_path,
        tflite_path,
        lambda: (c[None].transpose(0, 2, 3, 1) for c in calib),  # NCHW → NHWC, one at a time
    )

    report, tfl = evaluate(args.out, data)
    print(report, tfl, flush=True)
    for key in ("int8_onnx", "int8_tflite"):
        drop = report["test"]["accuracy"]["fp32_onnx"] - report["test"]["accuracy"][key]
        if drop > 0.01:
            print(f"WARNING: {key} loses {drop:.4f} test accuracy vs fp32", flush=True)

    files = {
        **buildlib.int8_file_entries(NAME, INPUT_NAME, tfl),
        f"{NAME}.fp32.onnx": {
            "runtime": "onnx",
            "precision": "fp32",
            "layout": "nchw",
            "input": INPUT_NAME,
            "outputs": {"logits": "logits", "embedding": "embedding"},
        },
    }
    for fname, entry in files.items():
        files[fname] = {"sha256": buildlib.sha256_file(args.out / fname), **entry}
    data_paths = [os.path.join(args.data_dir, f) for f in DATASET_FILES]
    manifest = {
        "format_version": 1,
        "name": NAME,
        "version": VERSION,
        "task": "classification",
        "labels": LABELS,
        "input": {
            "size": [28, 28],
            "color": "gray",
            "resize": "area",
            "fit": "crop",  # a station camera frames the item in its centre
            "mean": [MEAN],
            "std": [STD],
        },
        "files": files,
        "provenance": {
            "source_weights": "trained from scratch by the build script (FashionNet, "
            f"{args.epochs} epochs, seed {args.seed})",
            "training_data": "Fashion-MNIST (Zalando, MIT) from Debian dataset-fashion-mnist: "
            f"first {60000 - VAL_SIZE} training images; last {VAL_SIZE} held "
            "out for validation; int8 calibration on "
            f"{N_CALIB} training images",
            "training_data_sha256": buildlib.sha256_concat(data_paths),
            "training_data_files": {
                f: buildlib.sha256_file(p) for f, p in zip(DATASET_FILES, data_paths, strict=True)
            },
            "build_script": f"models/{NAME}/build.py",
            "built": buildlib.today(),
            "tools": buildlib.tool_versions(),
        },
    }
    buildlib.write_json(args.out / "manifest.json", manifest)
    buildlib.write_json(
        args.out / "reference.json",
        {
            "model": NAME,
            "dataset": "Fashion-MNIST",
            "splits": {
                "val": f"last {VAL_SIZE} of the 60000 training images",
                "test": "the 10000 t10k images",
            },
            "preprocessing": "value = pixel / 255, no resize (images are 28x28 already)",
            "tflite_input": {
                k: tfl[k]
                for k in ("input", "input_shape", "input_dtype", "input_scale", "input_zero_point")
            },
            **report,
        },
    )
    print(f"done in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
