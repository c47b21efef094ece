"""Per-inference latency of each shipped model on each backend, 1 thread and 2 (all cores).

``Model.run`` on a tensor preprocessed once: the runtime's share of a frame, nothing else.
Each benchmark checks the top-1 of a known image, so a backend that got fast by being broken
fails instead of winning. Grouped per model::

    .venv/bin/pytest bench/test_bench_backends.py --benchmark-only
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from edge.model import Model, load_model
from edge.model.backends import BACKEND_NAMES

MODELS = Path(os.environ.get("EDGE_MODELS", Path(__file__).resolve().parents[1] / "models"))
FASHION_MNIST_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_first_test_image() -> tuple[npt.NDArray[np.uint8], Literal["gray", "rgb"]]:
    """Test image 0 of Fashion-MNIST (its label: 9, ankle boot), grey."""
    if not FASHION_MNIST_TEST.is_file():
        pytest.fail(f"{FASHION_MNIST_TEST} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION_MNIST_TEST, "rb") as f:
        raw = f.read(16 + 28 * 28)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(28, 28).copy(), "gray"


def coffee() -> tuple[npt.NDArray[np.uint8], Literal["gray", "rgb"]]:
    """scikit-image's coffee photo (RGB): an espresso."""
    import skimage.data

    photo: npt.NDArray[np.uint8] = skimage.data.coffee()  # type: ignore[no-untyped-call]
    return photo, "rgb"


# model → (known image loader, its top-1 label)
KNOWN = {
    "fashion-line": (fashion_first_test_image, "Ankle boot"),
    "efficientnet-lite0": (coffee, "espresso"),
}


@functools.cache
def loaded(name: str, backend: str, threads: int) -> Model:
    path = MODELS / name
    if not (path / "manifest.json").is_file():
        pytest.fail(f"{path}/manifest.json is missing: build it with models/{name}/build.py")
    return load_model(path, backend=backend, threads=threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("name", list(KNOWN))
def test_run_latency(benchmark: BenchmarkFixture, name: str, backend: str, threads: int) -> None:
    model = loaded(name, backend, threads)
    load_image, expected = KNOWN[name]
    image, src = load_image()
    tensor = model.preprocessor_for(src)(image)
    for _ in range(3):  # first runs pay for lazy allocation and thread-pool start-up
        model.run(tensor)
    benchmark.group = name
    benchmark.extra_info.update(backend=backend, threads=threads, file=model.file.name)
    prediction = benchmark(model.run, tensor)
    assert prediction.label == expected, prediction.top_k(3)
