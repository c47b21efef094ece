"""The uploader: takes records from the buffer's outbox, ships them, acknowledges them.

One batch at a time, in this order, so that a crash anywhere leaves nothing lost and nothing
listed twice:

1. choose the batch (oldest pending records of one device) and write it to the *journal*
   (``<state-dir>/journal.json``, fsynced): its id, manifest key and record ids;
2. PUT every record's image, then its sidecar; each PUT returns only once confirmed;
3. rewrite the journal with the ids actually confirmed (an unreadable image is left out);
4. PUT the batch's manifest (Label Studio tasks);
5. acknowledge the confirmed ids to the outbox (the buffer deletes them), clear the journal.

After a crash the journal names the unfinished batch and the next run finishes *that* batch,
under the same id, before it takes new records: if the manifest is already in the store, it
only acknowledges; otherwise it uploads the batch's records that are still pending (same keys,
same bytes) and writes the manifest. A record therefore never appears in two manifests, even
when new records arrived in between and the batch would now be composed differently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import Any, Literal

import edge.upload.layout as layout
from edge.records import Outbox, Stored
from edge.upload.config import UploadConfig
from edge.upload.target import StoreError, Target, redact

log = logging.getLogger("edge.upload")

State = Literal["idle", "uploading", "offline", "error", "waiting_window", "stopped"]


@dataclass(frozen=True)
class UploadReport:
    """What one drain of the outbox did."""

    records: int = 0  # acknowledged: in the store and listed in a manifest
    objects: int = 0  # confirmed PUTs: images, sidecars and manifests
    bytes: int = 0
    manifests: int = 0
    unreadable: int = 0  # records whose image could not be read (left for `buffer check`)

    def __add__(self, other: UploadReport) -> UploadReport:
        return UploadReport(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Stopping(Exception):
    """Raised inside a batch when stop() was asked for: the batch stays in the journal."""


class _Throttle:
    """Paces bytes to ``rate`` per second across threads: each PUT waits until the bytes
    before it have had their time. Waits on ``stop`` so that stop() is never held up."""

    def __init__(self, rate: int | None, stop: threading.Event) -> None:
        self._rate = rate
        self._stop = stop
        self._free_at = 0.0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        if self._rate is None:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at)
            self._free_at = start + n / self._rate
        if start > now and self._stop.wait(start - now):
            raise _Stopping


class _Journal:
    """The batch in flight, on disk when there is a state directory, else in memory only."""

    def __init__(self, directory: Path | None) -> None:
        self._path = None if directory is None else directory / "journal.json"
        self._doc: dict[str, Any] | None = None
        if self._path is not None and self._path.exists():
            try:
                self._doc = json.loads(self._path.read_text())
            except (OSError, ValueError) as exc:
                # Written by rename after fsync, so this is outside damage; without it the
                # batch is redone under a new id, which can at worst list records twice.
                log.warning("upload: ignoring unreadable journal %s: %s", self._path, exc)

    def load(self) -> dict[str, Any] | None:
        return self._doc

    def save(self, doc: dict[str, Any]) -> None:
        self._doc = doc
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        self._doc = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)


class Uploader:
    """Ships the outbox's records to ``target``, periodically on its own thread (start/stop)
    or on demand (:meth:`upload_once`, :meth:`trigger`).

    ``state_dir`` keeps the journal of the batch in flight, so that a run after a crash
    finishes it (see the module's docstring); without it the journal lives in memory.
    :meth:`counters` is a plain dict for metrics. Credentials never appear in logs, errors
    or counters.
    """

    def __init__(
        self,
        outbox: Outbox,
        target: Target,
        config: UploadConfig | None = None,
        *,
        state_dir: str | Path | None = None,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self._target = target
        self._config = config or UploadConfig()
        self._window = self._config.daily_window()
        self._now = now
        self._rng = rng or random.Random()
        self._journal = _Journal(None if state_dir is None else Path(state_dir))
        self._secrets = tuple(self._config.secrets()) + tuple(target.secrets)
        self._lock = threading.Lock()  # counters and state
        self._drain_lock = threading.Lock()  # one drain at a time (thread, --once, trigger)
        self._stopping = threading.Event()
        # After stop() or interrupt(): when the PUTs in flight are left to end by themselves.
        self._give_up_at = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._throttle = _Throttle(self._config.bandwidth, self._stopping)
        # Records whose image cannot be read: skipped for the life of this uploader, so a
        # corrupt one does not block the queue; `edge buffer check --repair` deals with them.
        self._skip: set[int] = set()
        self._state: State = "idle"
        self._forced = False  # trigger() asked for an upload regardless of the window
        self._c: dict[str, Any] = {
            "uploaded_records": 0,
            "uploaded_objects": 0,
            "uploaded_bytes": 0,
            "manifests": 0,
            "failures": 0,
            "consecutive_failures": 0,
            "unreadable": 0,
            "backlog": 0,
            "last_success": None,
            "last_failure": None,
            "last_error": None,
            "next_attempt": None,
        }

    # -- public ---------------------------------------------------------------------------

    @property
    def target(self) -> Target:
        return self._target

    def counters(self) -> dict[str, Any]:
        """state, uploaded_records/objects/bytes, manifests, failures (total and consecutive),
        unreadable, backlog, last_success / last_failure / next_attempt (Unix seconds or None),
        last_error (one line, redacted)."""
        with self._lock:
            return {"state": self._state, **self._c}

    def upload_once(self) -> UploadReport:
        """Drain the outbox now, ignoring the window; raises StoreError when the store fails
        (what was confirmed before stays confirmed). After :meth:`interrupt` it returns what
        was done until then."""
        try:
            return self._attempt(respect_window=False)
        except _Stopping:
            return UploadReport()  # another drain held the outbox until the interrupt

    def start(self) -> None:
        """Upload every ``interval`` (within the window) on a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the uploader is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="edge-upload", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Upload as soon as possible (the next wait ends now), window or not."""
        with self._lock:
            self._forced = True
        self._wake.set()

    def interrupt(self, timeout: float = 5.0) -> None:
        """End the drain in progress (the thread's or :meth:`upload_once`'s) after the PUTs in
        flight, or after ``timeout`` seconds if they take longer: those are left to end by
        themselves on daemon threads. Returns at once; safe from a signal handler. An
        unfinished batch stays in the journal for the next run."""
        self._give_up_at = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the PUT in flight (bounded by ``timeout``); True if the thread ended.
        An unfinished batch stays in the journal for the next run."""
        self.interrupt(timeout)
        thread = self._thread
        if thread is None:
            return True
        # The drain gives up on its PUTs at ``timeout``; a moment more for it to return.
        thread.join(timeout + 1.0)
        if thread.is_alive():
            log.warning("upload: a PUT still running after %.1f s; left to end by itself", timeout)
            return False
        self._thread = None
        self._stopping.clear()  # upload_once() still works after the thread stopped
        self._set_state("stopped")
        return True

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.0
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                return
            with self._lock:
                forced, self._forced = self._forced, False
            if not forced and self._window is not None:
                until = self._window.seconds_until_open(self._now())
                if until > 0:
                    self._set_state("waiting_window")
                    # Look at the clock again at least hourly: a device often boots with a
                    # wrong clock that NTP corrects later.
                    delay = min(until, 3600.0)
                    self._note_next(delay)
                    continue
            try:
                self._attempt(respect_window=not forced)
            except StoreError:
                delay = self._backoff()
            except _Stopping:
                return
            except Exception:
                # The thread must outlive any bug in an outbox or target; the traceback once,
                # when it starts failing, not on every retry, and redacted like every other
                # message: a library's exception may quote a key.
                if self.counters()["consecutive_failures"] == 1:
                    log.error(
                        "upload: unexpected failure\n%s",
                        redact(traceback.format_exc(), self._secrets).rstrip(),
                    )
                delay = self._backoff()
            else:
                delay = self._config.interval
            self._note_next(delay)

    def _backoff(self) -> float:
        with self._lock:
            n: int = self._c["consecutive_failures"]
        ceiling = min(self._config.backoff_max, self._config.backoff_base * 2.0 ** max(0, n - 1))
        # "Equal jitter": never sooner than half the delay, so a fleet that lost its uplink
        # at the same moment does not come back at the same moment.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _note_next(self, delay: float) -> None:
        with self._lock:
            self._c["next_attempt"] = time.time() + delay

    # -- one drain ------------------------------------------------------------------------

    def _set_state(self, state: State, reason: str | None = None, failed: int = 0) -> None:
        with self._lock:
            old, self._state = self._state, state
        if old == state:
            return  # quiet: one line per change, never one per attempt
        uri = self._target.uri
        if state == "offline":
            log.warning("upload to %s: store unreachable (%s); retrying with backoff", uri, reason)
        elif state == "error":
            log.error("upload to %s: failed (%s); retrying with backoff", uri, reason)
        elif old in ("offline", "error") and state in ("uploading", "idle"):
            log.info("upload to %s: store reachable again after %d failed attempts", uri, failed)
        elif state == "waiting_window":
            log.info("upload to %s: outside the window %s; waiting", uri, self._config.window)
        else:
            log.debug("upload to %s: %s", uri, state)

    def _attempt(self, *, respect_window: bool) -> UploadReport:
        # Not a plain `with`: a drain stuck on a stalled store must not keep an interrupt
        # from ending this one.
        while not self._drain_lock.acquire(timeout=0.1):
            if self._stopping.is_set():
                raise _Stopping
        try:
            with self._lock:
                if self._state not in ("offline", "error"):
                    self._state = "uploading"
            try:
                report = self._drain(respect_window)
            except StoreError as exc:
                self._failed(exc, redact(str(exc), self._secrets))
                raise
            except _Stopping:
                raise
            except Exception as exc:
                self._failed(exc, redact(f"{type(exc).__name__}: {exc}", self._secrets))
                raise
            with self._lock:
                failed, self._c["consecutive_failures"] = self._c["consecutive_failures"], 0
                self._c["last_success"] = time.time()
            self._set_state("idle", failed=failed)
            return report
        finally:
            self._drain_lock.release()

    def _failed(self, exc: Exception, message: str) -> None:
        with self._lock:
            self._c["failures"] += 1
            self._c["consecutive_failures"] += 1
            self._c["last_failure"] = time.time()
            self._c["last_error"] = message
        offline = isinstance(exc, StoreError) and exc.offline
        self._set_state("offline" if offline else "error", message)

    def _drain(self, respect_window: bool) -> UploadReport:
        total = UploadReport()
        while not self._stopping.is_set():
            if respect_window and self._window and not self._window.contains(self._now()):
                break
            try:
                report, more = self._batch()
            except _Stopping:
                break  # the batch stays in the journal; the next drain finishes it
            total += report
            if not more:
                self._update_backlog(None)
                break
        return total

    def _update_backlog(self, seen: int | None) -> None:
        count = getattr(self._outbox, "pending_count", None)
        if callable(count):
            backlog = int(count())
        elif seen is not None:
            backlog = seen  # a lower bound: what the last pending() call returned
        else:
            backlog = len(self._skip)
        with self._lock:
            self._c["backlog"] = backlog

    def _pending(self, limit: int) -> list[Stored]:
        records = self._outbox.pending(limit + len(self._skip))
        self._update_backlog(len(records))
        return [r for r in records if r.id not in self._skip][:limit]

    def _batch(self) -> tuple[UploadReport, bool]:
        """One batch, resumed from the journal or new. Returns what it did and whether there
        may be more to do."""
        prefix = self._target.prefix
        journal = self._journal.load()
        if journal is not None:
            ids = {int(i) for i in journal["ids"]}
            if self._target.exists(journal["manifest"]):
                # Crashed after the manifest: everything in it is confirmed.
                self._outbox.acknowledge(sorted(ids))
                self._journal.clear()
                self._count(records=len(ids))
                return UploadReport(records=len(ids)), True
            limit = max(self._config.batch_size, len(ids))
            records = [r for r in self._pending(limit) if r.id in ids]
            if not records:
                self._journal.clear()  # all evicted (or acknowledged) meanwhile
                return UploadReport(), True
        else:
            candidates = self._pending(self._config.batch_size)
            if not candidates:
                return UploadReport(), False
            # One device per batch: the manifest lives under the device.
            device = layout.sanitize(candidates[0].device)
            records = [r for r in candidates if layout.sanitize(r.device) == device]
            bid = layout.batch_id(records)
            journal = {
                "batch": bid,
                "manifest": layout.manifest_key(prefix, device, bid),
                "ids": [r.id for r in records],
                "phase": "objects",
            }
            self._journal.save(journal)

        confirmed, report = self._put_records(records)
        if confirmed:
            self._journal.save({**journal, "ids": [r.id for r in confirmed], "phase": "manifest"})
            body = layout.manifest(confirmed, self._target.url, prefix)
            self._put(journal["manifest"], body, "application/json")
            self._count(manifests=1)
            report += UploadReport(objects=1, bytes=len(body), manifests=1)
            self._outbox.acknowledge([r.id for r in confirmed])
            self._count(records=len(confirmed))
            report += UploadReport(records=len(confirmed))
        self._journal.clear()
        return report, True

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        if self._stopping.is_set():
            raise _Stopping
        self._throttle.take(len(data))
        self._target.put(key, data, content_type)
        with self._lock:
            self._c["uploaded_objects"] += 1
            self._c["uploaded_bytes"] += len(data)

    def _count(self, *, records: int = 0, manifests: int = 0) -> None:
        with self._lock:
            self._c["uploaded_records"] += records
            self._c["manifests"] += manifests

    def _put_record(self, record: Stored, abort: threading.Event) -> int | None:
        """Image then sidecar; the bytes sent, or None when the image is unreadable."""
        if abort.is_set():
            raise _Stopping
        try:
            image = self._outbox.image_bytes(record)
            # The key *is* the hash: never let bytes under a key they do not hash to.
            if hashlib.sha256(image).hexdigest() != record.sha256:
                raise OSError(f"image of record {record.id} does not match its sha256")
        except OSError as exc:
            log.warning("upload: record %d skipped: %s", record.id, exc)
            return None
        prefix = self._target.prefix
        image_key = layout.image_key(prefix, record)
        self._put(image_key, image, layout.content_type(record))
        side = layout.sidecar(record, self._target.url(image_key), len(image))
        self._put(layout.sidecar_key(prefix, record), side, "application/json")
        return len(image) + len(side)

    def _put_records(self, records: list[Stored]) -> tuple[list[Stored], UploadReport]:
        outcomes = self._in_parallel(self._put_record, records)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            # The first real failure, rather than the _Stopping of the PUTs it cancelled.
            raise next((e for e in errors if not isinstance(e, _Stopping)), errors[0])
        results: list[int | None] = [o for o in outcomes if not isinstance(o, BaseException)]
        confirmed = [r for r, n in zip(records, results, strict=True) if n is not None]
        unreadable = [r.id for r, n in zip(records, results, strict=True) if n is None]
        if unreadable:
            self._skip.update(unreadable)
            with self._lock:
                self._c["unreadable"] += len(unreadable)
        sent = sum(n for n in results if n is not None)
        return confirmed, UploadReport(
            objects=2 * len(confirmed), bytes=sent, unreadable=len(unreadable)
        )

    def _in_parallel(
        self, put: Callable[[Stored, threading.Event], int | None], records: list[Stored]
    ) -> list[int | BaseException | None]:
        """``put`` of each record on ``parallel`` daemon threads: each record's outcome, its
        result or its exception. After the first failure no more PUTs start. After a stop,
        the PUTs in flight get until the stop's timeout, then are left to end by themselves:
        daemon threads, so that a stalled store cannot keep the process from exiting (a
        thread pool's workers are joined at exit)."""
        abort = threading.Event()
        outcomes: list[int | BaseException | None] = [_Stopping() for _ in records]
        todo = iter(enumerate(records))
        lock = threading.Lock()
        finished = threading.Event()
        workers = min(self._config.parallel, len(records))
        running = [workers]

        def work() -> None:
            try:
                while True:
                    with lock:
                        i, record = next(todo, (-1, None))
                    if record is None:
                        return
                    try:
                        outcomes[i] = put(record, abort)
                    except BaseException as exc:
                        abort.set()  # let the PUTs in flight finish, start no more
                        outcomes[i] = exc
            finally:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        finished.set()

        if not records:
            return []
        for n in range(workers):
            threading.Thread(target=work, name=f"edge-put-{n}", daemon=True).start()
        while not finished.wait(0.1):
            if self._stopping.is_set() and time.monotonic() >= self._give_up_at:
                abort.set()
                log.warning("upload: a PUT still running after the stop's timeout; left to end")
                raise _Stopping
        return outcomes


__all__ = ["State", "UploadReport", "Uploader"]
