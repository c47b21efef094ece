"""The writer thread: encodes queued frames, puts their files in place and commits their rows,
making room by evicting the least valuable records. Disk errors are counted, never raised."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from edge.buffer.config import BufferConfig
from edge.buffer.retention import balance_key, priority
from edge.buffer.store import FORMAT_VERSION, RESERVE_BYTES, NewRecord, Row, Store
from edge.records import Flagged, Stored

log = logging.getLogger("edge.buffer")

#: Frames committed in one transaction at most. Under load the queue holds several frames and
#: one directory fsync and one commit serve them all; when idle a batch is one frame.
BATCH = 16

OnStored = Callable[[list[Stored]], None]
T = TypeVar("T")


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _json_safe(value: Any) -> Any:
    """Plain JSON: NumPy scalars as numbers, non-finite floats as null (JSON has no NaN)."""
    if isinstance(value, bool | str | None):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(v) for v in value]
    return str(value)


def sidecar(
    item: Flagged, device: str, *, sha256: str, size: int, fmt: str, extension: str
) -> dict[str, Any]:
    """The record's metadata: everything of `item` but its pixels, plus the device and the
    encoded image. It is the JSON sidecar the uploader ships beside the image."""
    shape = item.image.shape
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "frame": int(item.frame),
        "captured_at": float(item.captured_at),
        "device": device,
        "model": item.model,
        "model_version": item.model_version,
        "model_sha256": item.model_sha256,
        "decision": item.decision,
        "reason": item.reason,
        "label": item.label,
        "confidence": item.confidence,
        "top_k": [[str(label), p] for label, p in item.top_k],
        "scores": dict(item.scores),
        "stats": dict(item.stats),
        "dhash": f"{item.dhash & 0xFFFFFFFFFFFFFFFF:016x}",
        "drift": item.drift,
        "extra": dict(item.extra),
        "image": {
            "sha256": sha256,
            "size": size,
            "format": fmt,
            "extension": extension,
            "width": int(shape[1]),
            "height": int(shape[0]),
            "channels": int(shape[2]) if len(shape) == 3 else 1,
        },
    }
    safe: dict[str, Any] = _json_safe(doc)
    return safe


def record_from_sidecar(text: str, name: str, size: int, stored_at: float) -> NewRecord:
    """The row of the image file `name` (`size` bytes), made again from its sidecar's `text`;
    ValueError when the sidecar is not one of this image. What the row holds beside the
    sidecar (class, priority) is worked out again as the writer did."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    image = doc.get("image")
    sha, _, extension = name.partition(".")
    if not isinstance(image, dict) or image.get("sha256") != sha:
        raise ValueError("it names another image")
    if image.get("extension") != extension or image.get("size") != size:
        raise ValueError("its extension or size is not the image's")
    decision = doc["decision"]
    if decision not in ("REVIEW", "REJECT"):
        raise ValueError(f"decision {decision!r}")
    confidence = doc.get("confidence")
    item = Flagged(
        image=np.zeros((1, 1), np.uint8),
        frame=int(doc["frame"]),
        captured_at=float(doc["captured_at"]),
        # Admission (the only reader of the monotonic time) is long past for a stored record.
        monotonic=0.0,
        decision=decision,
        reason=str(doc["reason"]),
        label=str(doc["label"]),
        # null in JSON for a non-finite confidence (see _json_safe)
        confidence=math.nan if confidence is None else float(confidence),
        top_k=(),
        scores={},
        stats={},
        dhash=0,
        model=str(doc["model"]),
        model_version=str(doc.get("model_version", "")),
        model_sha256=str(doc.get("model_sha256", "")),
        drift=doc.get("drift", "ok"),
    )
    return NewRecord(
        sha256=sha,
        extension=extension,
        size=size,
        captured_at=item.captured_at,
        frame=item.frame,
        device=str(doc["device"]),
        model=item.model,
        label=item.label,
        decision=item.decision,
        reason=item.reason,
        balance=balance_key(item),
        priority=priority(item),
        stored_at=stored_at,
        metadata=text,
    )


def encode(image: np.ndarray, config: BufferConfig) -> bytes:
    if config.format == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    else:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, config.png_compression])
    if not ok:
        raise ValueError(f"cv2.imencode could not encode a {image.shape} {image.dtype} image")
    return bytes(buf)


def is_disk_error(exc: BaseException) -> bool:
    """Errors of the disk rather than of our code: full, read-only, I/O, permissions."""
    return isinstance(exc, OSError | sqlite3.OperationalError | sqlite3.DatabaseError)


@dataclass
class Counters:
    """The writer's counters (its thread, and the uploader's acknowledge, under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "stored",
                "evicted",
                "no_room",
                "duplicates_stored",
                "disk_errors",
                "encode_errors",
                "dropped",
                "acknowledged",
                "reconciled",
            ),
            0,
        )
    )

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.values[name] += n


@dataclass
class _Prepared:
    item: Flagged
    record: NewRecord
    id: int = 0
    kept: bool = False


STOP = object()


class Writer:
    """Consumes the queue on a thread of its own until it meets :data:`STOP`."""

    def __init__(
        self,
        store: Store,
        config: BufferConfig,
        device: str,
        counters: Counters,
        on_done: Callable[[int, int], None],
        on_stored: OnStored | None,
    ) -> None:
        self.store = store
        self.config = config
        self.device = device
        self.counters = counters
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.abort = threading.Event()  # close() ran out of time: drop what is left
        self._on_done = on_done  # (frames, their raw bytes) finished, for the queue's bounds
        self._on_stored = on_stored
        self._failing = False  # log a disk failure once, and its recovery once
        self.thread = threading.Thread(target=self._run, name="edge-buffer-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            stop = False
            while not stop:
                batch: list[Flagged] = []
                entry = self.queue.get()
                while True:
                    if entry is STOP:
                        stop = True
                        break
                    batch.append(entry)
                    if len(batch) >= BATCH:
                        break
                    try:
                        entry = self.queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    try:
                        self._process(batch)
                    except Exception:  # never let one bad batch stop the buffer
                        log.exception("buffer: writing %d frames failed", len(batch))
                        self.counters.add("dropped", len(batch))
                    finally:
                        self._on_done(len(batch), sum(f.image.nbytes for f in batch))
        finally:
            with self.store.lock:
                self.store.close()

    def _process(self, batch: Sequence[Flagged]) -> None:
        if self.abort.is_set():
            self.counters.add("dropped", len(batch))
            return
        ready = self._write_files(batch)
        if not ready:
            return
        try:
            self.store.sync_images()
        except OSError as exc:
            self._disk_error(exc, "syncing the images directory")
            self._forget(ready)
            self.counters.add("dropped", len(ready))
            return
        self._commit(ready)

    def _write_files(self, batch: Sequence[Flagged]) -> list[_Prepared]:
        ready: list[_Prepared] = []
        seen: set[str] = set()
        config = self.config
        for item in batch:
            try:
                data = encode(item.image, config)
            except Exception as exc:
                log.warning("buffer: frame %s not stored: %s", item.frame, exc)
                self.counters.add("encode_errors")
                self.counters.add("dropped")
                continue
            sha = hashlib.sha256(data).hexdigest()
            with self.store.lock:
                exists = sha in seen or self.store.has_sha(sha)
            if exists:
                # The very same bytes are stored already (a frozen camera repeats frames).
                self.counters.add("duplicates_stored")
                continue
            record = self._record(item, sha, len(data))
            if self._write_one(data, record):
                seen.add(sha)
                ready.append(_Prepared(item, record))
            else:
                self.counters.add("dropped")
        return ready

    def _write_one(self, data: bytes, record: NewRecord) -> bool:
        for attempt in (1, 2):
            try:
                # The image first: a sidecar without its image is never left by a crash.
                self.store.write_image(data, record.sha256, record.extension)
                self.store.write_sidecar(record.sha256, record.extension, record.metadata)
                return True
            except OSError as exc:
                self._disk_error(exc, "writing an image")
                if attempt == 2 or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    return False
                # Full: give up the least valuable records for twice this one's room, then
                # try once more; the next frames see the reduced budget through statvfs.
                if not self._evict_bytes(2 * len(data)):
                    return False
        return False

    def _record(self, item: Flagged, sha: str, size: int) -> NewRecord:
        config = self.config
        meta = sidecar(
            item, self.device, sha256=sha, size=size, fmt=config.format, extension=config.extension
        )
        return NewRecord(
            sha256=sha,
            extension=config.extension,
            size=size,
            captured_at=float(item.captured_at),
            frame=int(item.frame),
            device=self.device,
            model=item.model,
            label=item.label,
            decision=item.decision,
            reason=item.reason,
            balance=balance_key(item),
            priority=priority(item),
            stored_at=time.time(),
            metadata=json.dumps(meta, allow_nan=False, separators=(",", ":")),
        )

    def _budget(self, written: int) -> int:
        """Bytes the records may take: max_bytes, less if the filesystem runs short.

        `written` bytes of this batch are on disk already, so they are free space in hand.
        """
        try:
            free = self.store.free_bytes()
        except OSError:
            return self.config.max_bytes
        # Never to the last byte, whatever min_free_bytes says: the WAL must be able to grow
        # and the reserve to come back.
        floor = max(self.config.min_free_bytes, 2 * RESERVE_BYTES)
        return min(self.config.max_bytes, self.store.bytes + written + free - floor)

    def _transaction(self, work: Callable[[], T], doing: str) -> tuple[bool, T | None]:
        """Run `work` in a transaction (the caller holds the store's lock); (False, None)
        when the disk refused it.

        On a full disk even the deletes that make room need room first (the WAL grows), so
        the reserve is given up and, failing that, the WAL checkpointed and truncated; after
        each, the transaction is tried again.
        """
        store = self.store
        remedies = [store.release_reserve, store.truncate_wal]
        while True:
            try:
                store.begin()
                result = work()
                store.commit()
                return True, result
            except (sqlite3.Error, OSError) as exc:
                store.rollback()
                self._disk_error(exc, doing)
                while remedies and _is_full(exc):
                    if remedies.pop(0)():
                        log.warning("buffer: disk full; freed the index's own room to commit")
                        break
                else:
                    return False, None

    def _commit(self, ready: list[_Prepared]) -> None:
        store = self.store

        def insert_all() -> list[Row]:
            victims: list[Row] = []
            for p in ready:
                p.kept = self._make_room(p.record, budget, victims)
                if p.kept:
                    p.id = store.insert(p.record)
            return victims

        with store.lock:
            budget = self._budget(sum(p.record.size for p in ready))
            ok, evicted = self._transaction(insert_all, "committing records")
            if not ok or evicted is None:
                for p in ready:
                    p.kept = False
                self._forget(ready)
                self.counters.add("dropped", len(ready))
                return
            victims = evicted
            # Under the lock, with the deletes: a frame with the same bytes cannot be checked
            # in (store.has_sha) between a row's delete and its file's unlink.
            store.unlink_images(victims)
        if self._failing:
            self._failing = False
            log.warning("buffer: writing again after disk errors")
        if not store.reserve.exists():
            self._restore_reserve()
        evicted_new = {r.id for r in victims}
        self._forget([p for p in ready if not p.kept])
        stored = [p for p in ready if p.kept and p.id not in evicted_new]
        self.counters.add("no_room", sum(not p.kept for p in ready))
        self.counters.add("evicted", len(victims))
        self.counters.add("stored", sum(p.kept for p in ready))
        if stored and self._on_stored is not None:
            try:
                self._on_stored(
                    [
                        Stored(
                            id=p.id,
                            sha256=p.record.sha256,
                            extension=p.record.extension,
                            captured_at=p.record.captured_at,
                            device=p.record.device,
                            model=p.record.model,
                            label=p.record.label,
                            decision=p.item.decision,
                            metadata=json.loads(p.record.metadata),
                        )
                        for p in stored
                    ]
                )
            except Exception:
                log.exception("buffer: the on_stored callback failed")

    def _make_room(self, rec: NewRecord, budget: int, victims: list[Row]) -> bool:
        """Evict (in the open transaction) until `rec` fits; False when `rec` itself is what
        the buffer should give up: the least valuable of the largest class, or too big."""
        store = self.store
        cap = self.config.max_records
        while store.records + 1 > cap or store.bytes + rec.size > budget:
            own = store.balance.get(rec.balance, 0) + 1
            others = [(n, k) for k, n in store.balance.items() if k != rec.balance]
            largest = max(others)[1] if others else None
            if largest is None or own >= store.balance[largest]:
                victim = store.least_valuable(rec.balance)
                if victim is None or (rec.priority, rec.captured_at) < (
                    victim.priority,
                    victim.captured_at,
                ):
                    return False
            else:
                victim = store.least_valuable(largest)
                if victim is None:  # pragma: no cover - the totals say the class has records
                    return False
            store.delete([victim.id])
            victims.append(victim)
        return True

    def _evict_bytes(self, need: int) -> bool:
        """Free at least `need` bytes by evicting, in a transaction of its own."""
        store = self.store

        def evict() -> list[Row]:
            victims: list[Row] = []
            freed = 0
            while freed < need:
                largest = store.largest_class()
                victim = None if largest is None else store.least_valuable(largest)
                if victim is None:
                    break
                store.delete([victim.id])
                victims.append(victim)
                freed += victim.size
            return victims

        with store.lock:
            ok, victims = self._transaction(evict, "evicting to free space")
            if not ok or not victims:
                return False
            store.unlink_images(victims)
        self.counters.add("evicted", len(victims))
        return True

    def _restore_reserve(self) -> None:
        """Set the reserve aside again once the disk has clearly recovered."""
        try:
            if self.store.free_bytes() >= 2 * RESERVE_BYTES:
                self.store.make_reserve()
        except OSError:
            pass

    def _forget(self, ready: Sequence[_Prepared]) -> None:
        """Remove the files written for rows that were not committed (the reconciler would,
        at the next start, but the room is wanted now)."""
        for p in ready:
            rec = p.record
            # The sidecar first: an image alone is a crash leftover, removed on the next open;
            # an image with its sidecar would be indexed again.
            for path in (
                self.store.sidecar_path(rec.sha256, rec.extension),
                self.store.image_path(rec.sha256, rec.extension),
            ):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    log.debug("buffer: cannot remove %s yet", path.name)

    def _disk_error(self, exc: BaseException, doing: str) -> None:
        self.counters.add("disk_errors")
        if not self._failing:
            self._failing = True
            log.warning("buffer: disk error %s (counting, not raising): %s", doing, exc)
