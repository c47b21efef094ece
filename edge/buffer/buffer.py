"""The durable buffer: what the runtime loop offers flagged frames to, and what the uploader
drains. Implements :class:`edge.records.FlaggedSink` and :class:`edge.records.Outbox`."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.buffer.check import CheckReport, reconcile
from edge.buffer.config import BufferConfig
from edge.buffer.retention import Admission
from edge.buffer.store import BufferUnavailable, Store
from edge.buffer.writer import STOP, Counters, OnStored, Writer
from edge.records import Flagged, Stored

log = logging.getLogger("edge.buffer")

_OFFER_COUNTERS = (
    "offered",
    "accepted",
    "duplicates",
    "rate_limited",
    "queue_full",
    "invalid",
    "closed",
)


def buffer_dir(data_dir: str | os.PathLike[str]) -> Path:
    """Where the buffer of a data directory lives."""
    return Path(data_dir) / "buffer"


class Buffer:
    """A durable buffer of flagged frames in ``<data_dir>/buffer/``.

    >>> buf = Buffer("edge-data", device="line-3")      # doctest: +SKIP
    >>> buf.offer(flagged)                                # loop thread: never blocks
    >>> buf.pending(100); buf.image_bytes(r); buf.acknowledge([r.id])   # uploader thread
    >>> buf.close()

    Opening reconciles the index with the files (:attr:`reconciled` says what it repaired) and
    starts the writer thread; a corrupt index is set aside and rebuilt from the images'
    sidecars first (:attr:`rebuilt` says so in one line). `on_stored` is called on the writer
    thread with the records of each commit, once they are durable: a frame is *acknowledged*
    by the buffer then, and survives any crash from that moment (:meth:`flush` waits for it
    instead).

    Raises :class:`BufferUnavailable` (an OSError) when the directory cannot be written,
    :class:`edge.errors.UsageError` when another process has the buffer open, and
    :class:`edge.errors.DataError` when the index is not an edge buffer.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] = "edge-data",
        *,
        device: str,
        config: BufferConfig | None = None,
        on_stored: OnStored | None = None,
    ) -> None:
        self.config = config if config is not None else BufferConfig()
        self.device = device
        self.root = buffer_dir(data_dir)
        try:
            self._store = Store(self.root, writable=True, create=True, rebuild=True)
        except (OSError, sqlite3.OperationalError) as exc:
            raise BufferUnavailable(
                f"{self.root}: cannot open the buffer for writing ({exc}); give a --data-dir "
                "on a writable filesystem"
            ) from exc
        try:
            self.reconciled: CheckReport = reconcile(self._store)
            self._store.make_reserve()
        except BaseException:
            self._store.close()
            raise
        #: One line saying what was done when the index was found corrupt and rebuilt.
        self.rebuilt: str | None = None
        aside = self._store.set_aside
        if aside is not None:
            again = [p for p in self.reconciled.problems if p.kind == "unindexed"]
            self.rebuilt = (
                f"buffer index was corrupt: set aside as {aside.path}, rebuilt "
                f"{sum(p.repaired for p in again)} records from image sidecars"
            )
            lost = sum(p.kind == "orphan" for p in self.reconciled.problems)
            if lost:
                self.rebuilt += f"; {lost} files without one moved to quarantine/"
            log.info("%s", self.rebuilt)
        self._counters = Counters()
        self._counters.add("reconciled", len(self.reconciled.problems))
        self._admission = Admission(self.config)
        # Everything offer() touches is under this lock, and the writer takes it only for a
        # moment per batch: the loop never waits on the disk.
        self._offer_lock = threading.Lock()
        self._offer_counts = dict.fromkeys(_OFFER_COUNTERS, 0)
        self._queued = 0
        self._queued_bytes = 0
        self._closed = False
        self._done = threading.Condition(threading.Lock())
        self._accepted_seq = 0  # frames queued, ever
        self._done_seq = 0  # frames the writer has finished with (stored or not)
        self._writer = Writer(
            self._store, self.config, device, self._counters, self._finished, on_stored
        )
        self._writer.start()

    # -- FlaggedSink: the loop's side ----------------------------------------------------

    def offer(self, item: Flagged) -> bool:
        """Queue a flagged frame for the writer; False (counted) when it is not taken: a
        near-duplicate, over a rate limit, queue full, invalid, or the buffer closed.

        Never blocks and never raises. The buffer keeps a reference to ``item.image`` until the
        frame is written: the caller must not write into that array afterwards.
        """
        try:
            image = item.image
            nbytes = image.nbytes
            counts = self._offer_counts
            config = self.config
            with self._offer_lock:
                counts["offered"] += 1
                if self._closed:
                    counts["closed"] += 1
                    return False
                if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                    counts["invalid"] += 1
                    return False
                # The queue first: when the writer is behind, nothing else is worth a look.
                if (
                    self._queued >= config.queue_size
                    or self._queued_bytes + nbytes > config.queue_bytes
                ):
                    counts["queue_full"] += 1
                    return False
                refusal = self._admission.admit(item)
                if refusal is not None:
                    counts["duplicates" if refusal == "duplicate" else "rate_limited"] += 1
                    return False
                self._queued += 1
                self._queued_bytes += nbytes
                self._accepted_seq += 1
                counts["accepted"] += 1
                # Inside the lock, so the writer meets frames in the order they were taken
                # and STOP (put by close() under this lock) after all of them.
                self._writer.queue.put(item)
            return True
        except Exception:
            log.exception("buffer: offer failed")
            self._offer_counts["invalid"] += 1
            return False

    def _finished(self, frames: int, nbytes: int) -> None:
        with self._offer_lock:
            self._queued -= frames
            self._queued_bytes -= nbytes
        with self._done:
            self._done_seq += frames
            self._done.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every frame accepted so far is durable or refused; False on timeout."""
        with self._offer_lock:
            target = self._accepted_seq
        with self._done:
            return self._done.wait_for(lambda: self._done_seq >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to `timeout` seconds), then stop the writer and close
        the index. Frames still queued after that are dropped and counted."""
        with self._offer_lock:
            if self._closed:
                return
            self._closed = True
            self._writer.queue.put(STOP)
        self._writer.thread.join(timeout)
        if self._writer.thread.is_alive():
            self._writer.abort.set()
            self._writer.thread.join(1.0)
            if self._writer.thread.is_alive():
                log.error("buffer: the writer is stuck on the disk; leaving it to finish")

    def __enter__(self) -> Buffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Outbox: the uploader's side -----------------------------------------------------

    def pending(self, limit: int) -> list[Stored]:
        """Records not yet acknowledged, oldest first (by capture time)."""
        store = self._store
        with store.lock:
            rows = store.oldest(limit)
        return [r.stored() for r in rows]

    def image_bytes(self, record: Stored) -> bytes:
        """The encoded image; OSError when it is gone (evicted, damaged) or does not match its
        sha256."""
        return self._store.read_image(record)

    def acknowledge(self, ids: Sequence[int]) -> None:
        """The store confirmed these records: delete their rows, then their files. Ids that
        are gone already (evicted meanwhile) are ignored. OSError when the disk refuses."""
        if not ids:
            return
        store = self._store
        with store.lock:
            try:
                rows = store.delete(list(ids))
            except sqlite3.Error as exc:
                store.rollback()
                raise OSError(f"buffer: cannot delete acknowledged records: {exc}") from exc
            store.unlink_images(rows)  # under the lock: see Writer._commit
        self._counters.add("acknowledged", len(rows))

    # -- figures -------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Every counter and gauge as plain numbers (for metrics): offered, accepted,
        duplicates, rate_limited, queue_full, invalid, closed (refused by offer); stored,
        evicted, no_room, duplicates_stored, disk_errors, encode_errors, dropped,
        acknowledged, reconciled (the writer and the uploader); records, bytes, queued."""
        out = dict(self._offer_counts)
        with self._counters.lock:
            out.update(self._counters.values)
        store = self._store
        out["records"] = store.records
        out["bytes"] = store.bytes
        out["queued"] = self._queued
        return out

    def stats(self) -> dict[str, Any]:
        """What the buffer holds: records and bytes, by decision and by class, time span."""
        store = self._store
        with store.lock:
            return store.summary()
