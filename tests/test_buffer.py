"""The durable buffer with real files and a real SQLite index: round trip, order, caps and
class-balanced eviction, near-duplicates, rate limits, the never-blocking offer, config."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import msgspec
import numpy as np
import pytest
from _waiting import finishes
from test_buffer_support import T0, flagged, frame_image, open_config

from edge.buffer import (
    FORMAT_VERSION,
    Buffer,
    BufferConfig,
    RateLimit,
    balance_key,
    check,
    priority,
)
from edge.buffer.retention import Deduplicator
from edge.buffer.store import Store
from edge.errors import ConfigError, UsageError
from edge.records import Flagged, FlaggedSink, Outbox, Stored


@pytest.fixture
def make_buffer(tmp_path: Path) -> Iterator[Any]:
    """Opens buffers on tmp_path and closes whatever a test left open."""
    opened: list[Buffer] = []

    def make(**config: Any) -> Buffer:
        buf = Buffer(tmp_path, device="line-3", config=open_config(**config))
        opened.append(buf)
        return buf

    yield make
    for buf in opened:
        buf.close()


def store_all(buf: Buffer, items: list[Flagged]) -> None:
    for item in items:
        assert buf.offer(item)
        # The queue is small; a test that means to store everything waits for room.
        if buf.counters()["queued"] >= buf.config.queue_size - 1:
            assert buf.flush(10)
    assert buf.flush(10)


def labels_in(buf: Buffer) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in buf.pending(10_000):
        out[r.label] = out.get(r.label, 0) + 1
    return out


def test_implements_the_loop_and_uploader_contracts(make_buffer: Any) -> None:
    buf = make_buffer()
    sink: FlaggedSink = buf
    outbox: Outbox = buf
    assert sink is outbox


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_round_trip_keeps_everything_but_pixels_in_the_sidecar(make_buffer: Any, fmt: str) -> None:
    buf = make_buffer(format=fmt)
    review = flagged(0, confidence=0.61)
    grey = flagged(1, image=cv2.cvtColor(frame_image(1), cv2.COLOR_BGR2GRAY))
    reject = flagged(2, decision="REJECT", reason="ood:knn", label="bag", confidence=0.93)
    store_all(buf, [review, grey, reject])

    records = buf.pending(10)
    assert [r.metadata["frame"] for r in records] == [0, 1, 2]
    for item, rec in zip([review, grey, reject], records, strict=True):
        data = buf.image_bytes(rec)
        assert hashlib.sha256(data).hexdigest() == rec.sha256
        assert rec.extension == ("jpg" if fmt == "jpeg" else "png")
        assert (rec.device, rec.model, rec.label, rec.decision) == (
            "line-3",
            item.model,
            item.label,
            item.decision,
        )
        assert rec.captured_at == item.captured_at
        m = rec.metadata
        assert m["format_version"] == FORMAT_VERSION
        assert (m["frame"], m["captured_at"], m["device"]) == (
            item.frame,
            item.captured_at,
            "line-3",
        )
        assert (m["model"], m["model_version"], m["model_sha256"]) == (
            item.model,
            item.model_version,
            item.model_sha256,
        )
        assert (m["decision"], m["reason"], m["label"]) == (item.decision, item.reason, item.label)
        assert m["confidence"] == item.confidence
        assert m["top_k"] == [[k, p] for k, p in item.top_k]
        assert m["scores"] == dict(item.scores)
        assert m["stats"] == dict(item.stats)
        assert int(m["dhash"], 16) == item.dhash
        assert m["drift"] == "ok"
        assert m["extra"] == {"source": "test"}
        h, w = item.image.shape[:2]
        assert m["image"] == {
            "sha256": rec.sha256,
            "size": len(data),
            "format": fmt,
            "extension": rec.extension,
            "width": w,
            "height": h,
            "channels": 1 if item.image.ndim == 2 else 3,
        }
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == item.image.shape
        if fmt == "png":
            np.testing.assert_array_equal(decoded, item.image)  # lossless
        else:
            assert cv2.PSNR(decoded, item.image) > 30


def test_jpeg_quality_is_the_configured_one(tmp_path: Path) -> None:
    sizes = {}
    for q in (30, 95):
        with Buffer(tmp_path / str(q), device="d", config=open_config(jpeg_quality=q)) as buf:
            store_all(buf, [flagged(0, size=(640, 480))])
            sizes[q] = buf.counters()["bytes"]
    assert sizes[30] < sizes[95] / 2


def test_non_finite_scores_are_json_null(make_buffer: Any) -> None:
    buf = make_buffer()
    item = flagged(0)
    item = Flagged(**{**item.__dict__, "scores": {"mahalanobis": math.inf, "knn": math.nan}})
    store_all(buf, [item])
    assert buf.pending(1)[0].metadata["scores"] == {"mahalanobis": None, "knn": None}


def test_pending_is_oldest_first_by_capture_time_with_a_limit(make_buffer: Any) -> None:
    buf = make_buffer()
    times = [5.0, 1.0, 4.0, 2.0, 3.0]
    store_all(buf, [flagged(i, t=T0 + t) for i, t in enumerate(times)])
    assert [r.captured_at - T0 for r in buf.pending(10)] == sorted(times)
    assert [r.captured_at - T0 for r in buf.pending(2)] == [1.0, 2.0]


def test_acknowledge_deletes_rows_and_files_and_ignores_unknown_ids(make_buffer: Any) -> None:
    buf = make_buffer()
    store_all(buf, [flagged(i) for i in range(4)])
    first, second, *_ = buf.pending(10)
    path = buf.root / "images" / f"{first.sha256}.jpg"
    assert path.exists()
    buf.acknowledge([first.id, second.id, 10_000])
    assert [r.id for r in buf.pending(10)] == [first.id + 2, first.id + 3]
    assert not path.exists()
    with pytest.raises(OSError, match="No such file"):
        buf.image_bytes(first)
    c = buf.counters()
    assert (c["acknowledged"], c["records"]) == (2, 2)


def test_ids_are_never_reused(tmp_path: Path) -> None:
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        store_all(buf, [flagged(0), flagged(1)])
        ids = [r.id for r in buf.pending(10)]
        buf.acknowledge(ids)
    with Buffer(tmp_path, device="d", config=open_config()) as buf:
        store_all(buf, [flagged(2)])
        assert buf.pending(1)[0].id > max(ids)


def test_image_bytes_refuses_bytes_that_do_not_match(make_buffer: Any) -> None:
    buf = make_buffer()
    store_all(buf, [flagged(0)])
    rec = buf.pending(1)[0]
    path = buf.root / "images" / f"{rec.sha256}.jpg"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="sha256"):
        buf.image_bytes(rec)


def test_on_stored_reports_durable_records_and_survives_a_failing_callback(
    tmp_path: Path,
) -> None:
    seen: list[Stored] = []

    def callback(records: list[Stored]) -> None:
        seen.extend(records)
        raise RuntimeError("a callback bug must not stop the writer")

    with Buffer(tmp_path, device="d", config=open_config(), on_stored=callback) as buf:
        store_all(buf, [flagged(i) for i in range(3)])
        assert [s.metadata["frame"] for s in seen] == [0, 1, 2]
        assert [s.id for s in seen] == [r.id for r in buf.pending(10)]
        assert buf.counters()["stored"] == 3


# -- caps and eviction ---------------------------------------------------------------------


def test_a_common_class_never_pushes_out_a_rare_one(make_buffer: Any) -> None:
    buf = make_buffer(max_records=30)
    rare = [flagged(i, label="sandal") for i in range(10)]
    common = [flagged(100 + i, label="shirt") for i in range(1000)]
    store_all(buf, rare + common)
    assert labels_in(buf) == {"sandal": 10, "shirt": 20}
    c = buf.counters()
    assert (c["records"], c["stored"], c["evicted"]) == (30, 1010, 980)


def test_eviction_balances_classes_when_all_are_over(make_buffer: Any) -> None:
    buf = make_buffer(max_records=12)
    items = [flagged(i, label=("a", "b", "c")[i % 3]) for i in range(60)]
    store_all(buf, items)
    assert labels_in(buf) == {"a": 4, "b": 4, "c": 4}
    # Equal value within a class: the newest stay.
    assert sorted(r.metadata["frame"] for r in buf.pending(100))[-3:] == [57, 58, 59]


def test_rejects_are_balanced_by_reason(make_buffer: Any) -> None:
    buf = make_buffer(max_records=10)
    ood = [flagged(i, decision="REJECT", reason="ood:knn") for i in range(3)]
    dark = [flagged(10 + i, decision="REJECT", reason="camera:dark") for i in range(50)]
    store_all(buf, ood + dark)
    reasons: dict[str, int] = {}
    for r in buf.pending(100):
        reasons[r.metadata["reason"]] = reasons.get(r.metadata["reason"], 0) + 1
    assert reasons == {"ood:knn": 3, "camera:dark": 7}


def test_the_least_valuable_go_first_within_a_class(make_buffer: Any) -> None:
    buf = make_buffer(max_records=5)
    confidences = [0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.95, 0.1]
    store_all(buf, [flagged(i, confidence=c) for i, c in enumerate(confidences)])
    kept = sorted(r.metadata["confidence"] for r in buf.pending(10))
    assert kept == [0.1, 0.2, 0.3, 0.4, 0.5]  # the least sure teach the model most
    c = buf.counters()
    # 0.95 came when the buffer was full of more useful frames: not stored at all.
    assert (c["no_room"], c["evicted"], c["stored"]) == (1, 4, 9)


def test_max_bytes_is_never_exceeded(make_buffer: Any) -> None:
    buf = make_buffer(max_bytes=60_000)
    store_all(buf, [flagged(i) for i in range(40)])
    c = buf.counters()
    assert 0 < c["bytes"] <= 60_000
    assert c["evicted"] > 0
    with Store(buf.root, writable=False) as store:
        assert sum(r.size for r in store.rows()) == c["bytes"]


def test_a_frame_bigger_than_the_cap_is_not_stored(make_buffer: Any) -> None:
    buf = make_buffer(max_bytes=1_000)
    store_all(buf, [flagged(0)])
    assert buf.counters()["no_room"] == 1
    assert buf.pending(10) == []
    assert list((buf.root / "images").iterdir()) == []


def test_priority_and_balance_key() -> None:
    review = flagged(0, confidence=0.3)
    assert priority(review) == pytest.approx(2.7)
    assert priority(flagged(0, confidence=0.3, drift="alert")) == pytest.approx(3.7)
    assert priority(flagged(0, decision="REJECT", reason="camera:dark")) == 1.0
    assert priority(flagged(0, decision="REJECT", reason="ood:mahalanobis")) == 2.5
    assert balance_key(review) == "shirt"
    assert balance_key(flagged(0, decision="REJECT", reason="ood:knn")) == "reject/ood:knn"


# -- near-duplicates and rate limits -------------------------------------------------------


def test_near_duplicates_within_the_window_are_not_stored_twice(make_buffer: Any) -> None:
    buf = make_buffer(dedup_radius=6, dedup_window=10.0)
    scene = frame_image(0)
    nudged = scene.copy()
    nudged[5:15, 5:15] = 0  # a small change: the same scene to a human
    other = frame_image(1)
    assert buf.offer(flagged(0, image=scene, t=T0))
    assert not buf.offer(flagged(1, image=nudged, t=T0 + 2))
    assert buf.offer(flagged(2, image=other, t=T0 + 3))
    assert buf.offer(flagged(3, image=nudged, t=T0 + 11))  # the window has passed
    assert buf.flush(10)
    c = buf.counters()
    assert (c["duplicates"], c["stored"]) == (1, 3)


@pytest.mark.parametrize("radius", [0, 1, 6, 13, 63, 64])
def test_the_banded_dedup_index_finds_exactly_what_a_full_scan_finds(radius: int) -> None:
    rng = random.Random(radius)
    dedup = Deduplicator(radius, window=5.0)
    taken: list[tuple[float, int]] = []
    for i in range(2000):
        # Half the frames are near copies of an earlier one: distances around the radius.
        h = rng.choice(taken)[1] if taken and rng.random() < 0.5 else rng.getrandbits(64)
        for _ in range(rng.randint(0, 12)):
            h ^= 1 << rng.randrange(64)
        t = i * 0.01
        scan = any(t - t0 < 5.0 and (h ^ h0).bit_count() <= radius for t0, h0 in taken)
        assert dedup.is_duplicate(h, t) == scan
        if not scan:
            dedup.taken(h, t)
            taken.append((t, h))


def test_the_same_bytes_are_stored_once_even_without_dedup(make_buffer: Any) -> None:
    buf = make_buffer()
    img = frame_image(0)
    store_all(buf, [flagged(0, image=img), flagged(1, image=img.copy())])
    c = buf.counters()
    assert (c["stored"], c["duplicates_stored"], c["records"]) == (1, 1, 1)


def test_rate_limit_per_label_per_minute_slides(make_buffer: Any) -> None:
    buf = make_buffer(label_rate=RateLimit(per_minute=3))
    taken = [buf.offer(flagged(i, t=T0 + i)) for i in range(5)]
    assert taken == [True, True, True, False, False]
    assert buf.offer(flagged(5, label="sandal", t=T0 + 5))  # another label has its own budget
    assert not buf.offer(flagged(6, t=T0 + 59.9))
    assert buf.offer(flagged(7, t=T0 + 60.0))  # the first take left the window
    assert buf.counters()["rate_limited"] == 3


def test_rate_limit_per_reason_per_hour_and_day(make_buffer: Any) -> None:
    buf = make_buffer(reason_rate=RateLimit(per_hour=2, per_day=3))

    def dark(i: int, t: float) -> Flagged:
        return flagged(i, decision="REJECT", reason="camera:dark", t=T0 + t)

    assert [buf.offer(dark(i, i * 60)) for i in range(3)] == [True, True, False]
    assert buf.offer(dark(3, 3600))  # a new hour
    assert not buf.offer(dark(4, 7300))  # but the day has its 3
    assert buf.offer(dark(5, 86400 + 1))
    assert buf.offer(flagged(6, decision="REJECT", reason="ood:knn", t=T0 + 7300))


def test_rejects_do_not_use_their_labels_budget(make_buffer: Any) -> None:
    buf = make_buffer(label_rate=RateLimit(per_minute=1))
    assert buf.offer(flagged(0, t=T0))
    assert buf.offer(flagged(1, decision="REJECT", reason="ood:knn", t=T0 + 1))
    assert not buf.offer(flagged(2, t=T0 + 2))


def test_drift_raises_the_rate_limits_by_the_boost(make_buffer: Any) -> None:
    buf = make_buffer(label_rate=RateLimit(per_minute=2), drift_boost=3.0)
    calm = [buf.offer(flagged(i, t=T0 + i)) for i in range(4)]
    drifted = [buf.offer(flagged(10 + i, t=T0 + 10 + i, drift="warn")) for i in range(6)]
    assert calm == [True, True, False, False]
    assert drifted == [True, True, True, True, False, False]  # 6 a minute, 2 of them taken
    assert not buf.offer(flagged(30, t=T0 + 30))  # back to calm: over the plain limit


def test_default_config_limits_a_flood_of_one_label(make_buffer: Any) -> None:
    buf = Buffer(make_buffer().root.parent / "d", device="d")
    try:
        results = [buf.offer(flagged(i, t=T0 + i * 0.1)) for i in range(100)]
        assert sum(results) == 30  # label_rate.per_minute
    finally:
        buf.close()


# -- the loop's side: never blocks, never raises ------------------------------------------


def test_offer_refuses_when_the_queue_is_full_without_waiting(make_buffer: Any) -> None:
    buf = make_buffer(queue_size=4)
    # Holding the index's lock stalls the writer on its next frame, like a slow disk: no room
    # is made while it is held, so an offer that waited for room would never return. (What an
    # offer costs the loop is measured in bench/test_bench_buffer.py.)
    with buf._store.lock:
        results = finishes(lambda: [buf.offer(flagged(i)) for i in range(20)])
    assert results == [True] * 4 + [False] * 16
    assert buf.counters()["queue_full"] == 16
    assert buf.flush(10)
    assert buf.counters()["stored"] == 4


def test_offer_refuses_when_the_queue_holds_too_many_bytes(make_buffer: Any) -> None:
    one = flagged(0).image.nbytes
    buf = make_buffer(queue_bytes=int(2.5 * one))
    with buf._store.lock:
        results = [buf.offer(flagged(i)) for i in range(4)]
    assert results == [True, True, False, False]


def test_offer_counts_what_it_cannot_use_and_never_raises(make_buffer: Any) -> None:
    buf = make_buffer()
    floats = flagged(0, image=np.zeros((8, 8, 3), np.float32), dhash=0)
    assert not buf.offer(floats)
    assert not buf.offer("not a frame")  # type: ignore[arg-type]
    # Two channels: OpenCV cannot encode it; found on the writer thread, counted there.
    assert buf.offer(flagged(1, image=np.zeros((8, 8, 2), np.uint8), dhash=1))
    assert buf.flush(10)
    c = buf.counters()
    assert (c["invalid"], c["encode_errors"], c["dropped"], c["stored"]) == (2, 1, 1, 0)


def test_close_writes_what_was_queued_then_refuses(tmp_path: Path) -> None:
    buf = Buffer(tmp_path, device="d", config=open_config())
    assert all(buf.offer(flagged(i)) for i in range(10))
    buf.close()
    assert not buf.offer(flagged(10))
    assert buf.counters()["closed"] == 1
    buf.close()  # twice is harmless
    with Buffer(tmp_path, device="d", config=open_config()) as again:
        assert [r.metadata["frame"] for r in again.pending(100)] == list(range(10))
    assert check(tmp_path / "buffer").ok


def test_one_process_writes_a_buffer(make_buffer: Any, tmp_path: Path) -> None:
    make_buffer()
    with pytest.raises(UsageError, match="in use by another process"):
        Buffer(tmp_path, device="d")


def test_counters_are_plain_numbers(make_buffer: Any) -> None:
    c = make_buffer().counters()
    for name in (
        "accepted",
        "duplicates",
        "rate_limited",
        "queue_full",
        "evicted",
        "disk_errors",
        "records",
        "bytes",
    ):
        assert type(c[name]) is int


# -- config --------------------------------------------------------------------------------


def test_config_decodes_from_the_toml_section() -> None:
    doc = {
        "max_bytes": 10_000_000,
        "format": "png",
        "label_rate": {"per_minute": 5},
        "drift_boost": 2.0,
    }
    config = msgspec.convert(doc, BufferConfig)
    assert config.format == "png"
    assert config.extension == "png"
    assert config.label_rate == RateLimit(per_minute=5)
    assert config.reason_rate.per_minute == 60  # defaults stay


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"max_records": 0}, r"buffer\.max_records: must be ≥ 1 and finite; got 0"),
        ({"jpeg_quality": 101}, r"buffer\.jpeg_quality: must be in \[1, 100\]; got 101"),
        ({"format": "gif"}, "Invalid enum value 'gif'"),
        ({"label_rate": {"per_hour": -1}}, r"per_hour: must be ≥ 0 and finite; .*\$\.label_rate"),
        ({"drift_boost": 0.5}, r"buffer\.drift_boost: must be ≥ 1 and finite; got 0\.5"),
        ({"dedup_radius": 65}, r"buffer\.dedup_radius: must be in \[0, 64\]; got 65"),
        ({"max_byte": 1}, "unknown field `max_byte`"),
    ],
)
def test_config_errors_name_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(doc, BufferConfig)


def test_config_checks_values_when_built_in_code() -> None:
    with pytest.raises(ConfigError, match=r"buffer\.queue_size"):
        BufferConfig(queue_size=0)
