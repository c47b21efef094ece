"""An Outbox over real files for the upload tests (the contract of edge.records, without the
buffer), records made of real photos, and the checks every upload test ends with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.records import Stored
from edge.upload import layout

DEVICE = "line-3"
MODEL = "fashion-line"


class FileOutbox:
    """``<root>/<id>.json`` (the Stored record) and ``<root>/<id>.<ext>`` (the image): survives
    the process, so a killed uploader's successor sees what it left. Acknowledging deletes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.acknowledged: list[int] = []
        self.pending_calls = 0

    def add(self, record: Stored, image: bytes) -> None:
        (self.root / f"{record.id}.{record.extension}").write_bytes(image)
        doc = asdict(record)
        (self.root / f"{record.id}.json").write_text(json.dumps(doc))

    def ids(self) -> list[int]:
        return sorted(int(p.stem) for p in self.root.glob("*.json"))

    def pending(self, limit: int) -> list[Stored]:
        self.pending_calls += 1
        out = []
        for i in self.ids()[:limit]:
            with open(self.root / f"{i}.json") as f:
                out.append(Stored(**json.load(f)))
        return out

    def image_bytes(self, record: Stored) -> bytes:
        data = (self.root / f"{record.id}.{record.extension}").read_bytes()
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise OSError(f"record {record.id}: image does not match its sha256")
        return data

    def acknowledge(self, ids: Sequence[int]) -> None:
        for i in ids:
            for p in self.root.glob(f"{i}.*"):
                p.unlink(missing_ok=True)
        self.acknowledged.extend(ids)


def photo_jpegs(n: int, size: tuple[int, int] = (160, 120), seed: int = 0) -> list[bytes]:
    """``n`` distinct JPEGs: crops of scikit-image's photos (a real camera's kind of content)."""
    from skimage import data

    photos = [
        cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
        for name in ("astronaut", "coffee", "chelsea")
    ]
    rng = np.random.default_rng(seed)
    w, h = size
    out: list[bytes] = []
    seen: set[str] = set()
    while len(out) < n:
        photo = photos[int(rng.integers(len(photos)))]
        ph, pw = photo.shape[:2]
        # A random window of the output's aspect, 40-100% of what fits: enough distinct crops
        # for any n, whatever the output size.
        fit = min(pw / w, ph / h)
        scale = float(rng.uniform(0.4, 1.0)) * fit
        cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
        x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
        crop = cv2.resize(photo[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        jpeg = buf.tobytes()
        sha = hashlib.sha256(jpeg).hexdigest()
        if sha not in seen:
            seen.add(sha)
            out.append(jpeg)
    return out


LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker")


def make_record(
    i: int, image: bytes, *, device: str = DEVICE, model: str = MODEL, label: str | None = None
) -> Stored:
    label = label if label is not None else LABELS[i % len(LABELS)]
    captured_at = 1_763_800_000.0 + i * 0.5
    decision = "REVIEW" if i % 3 else "REJECT"
    reason = "confidence" if decision == "REVIEW" else "ood:knn"
    meta = {
        "frame": i,
        "captured_at": captured_at,
        "device": device,
        "model": model,
        "model_version": "1.0",
        "model_sha256": "ab" * 32,
        "decision": decision,
        "reason": reason,
        "label": label,
        "confidence": round(0.4 + (i % 5) / 10, 3),
        "top_k": [[label, 0.55], ["Coat", 0.2]],
        "scores": {"default": 3.5, "knn": 0.8},
        "stats": {"brightness": 0.5},
    }
    return Stored(
        id=i,
        sha256=hashlib.sha256(image).hexdigest(),
        extension="jpg",
        captured_at=captured_at,
        device=device,
        model=model,
        label=label,
        decision=decision,  # type: ignore[arg-type]
        metadata=meta,
    )


def fill(
    outbox: FileOutbox, images: Iterable[bytes], start: int = 0, **kw: Any
) -> dict[str, Stored]:
    """Put one record per image into ``outbox``; returns them by sha256."""
    records = {}
    for i, image in enumerate(images, start):
        r = make_record(i, image, **kw)
        outbox.add(r, image)
        records[r.sha256] = r
    return records


def by_sha(images: Iterable[bytes]) -> dict[str, bytes]:
    """Images by their sha256, as check_delivery wants them."""
    return {hashlib.sha256(i).hexdigest(): i for i in images}


def check_delivery(
    expected: dict[str, Stored],
    images: dict[str, bytes],
    list_keys: Callable[[], list[str]],
    get: Callable[[str], bytes],
    image_url: Callable[[str], str],
    prefix: str = "",
) -> dict[str, Any]:
    """The store holds exactly the expected records: each image (bytes equal) and sidecar,
    no other image, every record in exactly one manifest, manifests valid Label Studio tasks."""
    keys = set(list_keys())
    images_in_store = {k for k in keys if k.endswith(".jpg")}
    wanted = {layout.image_key(prefix, r) for r in expected.values()}
    assert images_in_store == wanted, (
        f"missing {sorted(wanted - images_in_store)[:3]}, "
        f"extra {sorted(images_in_store - wanted)[:3]}"
    )
    for sha, r in expected.items():
        assert get(layout.image_key(prefix, r)) == images[sha]
        side = json.loads(get(layout.sidecar_key(prefix, r)))
        assert side["sha256"] == sha
        assert side["frame"] == r.metadata["frame"]
    listed: list[str] = []
    manifests = sorted(k for k in keys if "/manifests/" in k)
    for m in manifests:
        tasks = json.loads(get(m))
        assert isinstance(tasks, list)
        assert tasks
        for t in tasks:
            sha = t["data"]["sha256"]
            assert t["data"]["image"] == image_url(layout.image_key(prefix, expected[sha]))
            (pred,) = t["predictions"]
            (result,) = pred["result"]
            assert result["type"] == "choices"
            assert result["value"]["choices"] == [expected[sha].label]
            listed.append(sha)
    assert len(listed) == len(set(listed)), "a record is listed in two manifests"
    assert set(listed) == set(expected)
    return {"manifests": len(manifests), "objects": len(keys)}


def dir_keys(root: Path) -> list[str]:
    return [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]


__all__ = [
    "DEVICE",
    "MODEL",
    "FileOutbox",
    "by_sha",
    "check_delivery",
    "dir_keys",
    "fill",
    "make_record",
    "photo_jpegs",
]
