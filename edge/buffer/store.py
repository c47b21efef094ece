"""The buffer on disk: a SQLite index and one encoded image file per record.

Layout of ``<data-dir>/buffer/`` (format version 1, ``PRAGMA user_version``)::

    index.sqlite      the index (WAL, synchronous=FULL): one row per record, sidecar as JSON
    images/<sha256>.<jpg|png>
    tmp/              images being written; anything here after a crash is garbage
    quarantine/       what check --repair or the reconciler set aside, never deleted by edge
    reserve           RESERVE_BYTES set aside, given up on a full disk so the index can commit
    lock              flock()ed by the one process that writes (runtime, repair, purge)

Invariant, at every instant and across crashes: every row's image file exists, complete and
durable. An image is written to tmp/, fsynced, renamed into images/ and the directory fsynced
before the row that names it is committed; a row is deleted (committed) before its file is
unlinked. A crash can therefore leave only files without rows, which the reconciler removes.
Images are named by content, and the index holds each content once: the object store is
content-addressed too, so two records with the same bytes would be one object there anyway.

One module, though long: the index and the files are one on-disk format whose invariant holds
only if every write, delete and repair follows the same order, so all of them live here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from edge.errors import DataError, UsageError
from edge.records import FlagDecision, Stored

FORMAT_VERSION = 1
EXTENSIONS = ("jpg", "png")
#: Disk space set aside for the index (see Store.make_reserve): the WAL pages of a few hundred
#: deletes.
RESERVE_BYTES = 256 * 1024
IMAGE_NAME = re.compile(r"^([0-9a-f]{64})\.(jpg|png)$")

_SCHEMA = """
CREATE TABLE records (
    -- AUTOINCREMENT: ids are never reused, so a late acknowledge cannot hit a newer record
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    extension TEXT NOT NULL,
    size INTEGER NOT NULL,
    captured_at REAL NOT NULL,
    frame INTEGER NOT NULL,
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    balance TEXT NOT NULL,
    priority REAL NOT NULL,
    stored_at REAL NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX records_age ON records (captured_at, id);
CREATE INDEX records_eviction ON records (balance, priority, captured_at);
"""

_COLUMNS = (
    "id, sha256, extension, size, captured_at, frame, device, model, label, decision, reason, "
    "balance, priority, stored_at, metadata"
)


class BufferUnavailable(OSError):
    """The buffer's directory cannot be used (read-only, missing, not a buffer, ...); the
    message names the path."""


@dataclass(frozen=True)
class Row:
    """One record as the index holds it."""

    id: int
    sha256: str
    extension: str
    size: int
    captured_at: float
    frame: int
    device: str
    model: str
    label: str
    decision: str
    reason: str
    balance: str
    priority: float
    stored_at: float
    metadata: str

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.extension}"

    def sidecar(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.metadata)
        return doc

    def stored(self) -> Stored:
        decision: FlagDecision = "REJECT" if self.decision == "REJECT" else "REVIEW"
        return Stored(
            id=self.id,
            sha256=self.sha256,
            extension=self.extension,
            captured_at=self.captured_at,
            device=self.device,
            model=self.model,
            label=self.label,
            decision=decision,
            metadata=self.sidecar(),
        )


class Entry(NamedTuple):
    """A record as the reconciler and the checker see it."""

    id: int
    sha256: str
    extension: str
    size: int


@dataclass
class NewRecord:
    """A record whose image file is in place, ready for its row."""

    sha256: str
    extension: str
    size: int
    captured_at: float
    frame: int
    device: str
    model: str
    label: str
    decision: str
    reason: str
    balance: str
    priority: float
    stored_at: float
    metadata: str


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """The index and the files of one buffer directory.

    Not thread-safe by itself: callers hold :attr:`lock` around every use of the connection
    (the buffer's writer thread and the uploader share it).
    """

    def __init__(self, root: Path, *, writable: bool = True, create: bool = False) -> None:
        """Open the buffer at `root` (``<data-dir>/buffer``).

        `writable` takes the writer's lock (one writing process per buffer) and opens the index
        read-write; otherwise the index is opened read-only and nothing on disk changes, so it
        is safe beside a running edge. `create` makes an empty buffer when there is none.
        """
        self.root = Path(root)
        self.index = self.root / "index.sqlite"
        self.images = self.root / "images"
        self.tmp = self.root / "tmp"
        self.quarantine = self.root / "quarantine"
        self.reserve = self.root / "reserve"
        self.writable = writable
        self.lock = threading.RLock()
        self._lock_fd: int | None = None
        self.conn: sqlite3.Connection | None = None
        # Totals of what the index holds, kept in step by every insert and delete so the
        # writer decides on evictions without scanning the index.
        self.records = 0
        self.bytes = 0
        self.balance: dict[str, int] = {}
        if not self.index.exists() and not create:
            raise DataError(
                f"{self.root}: no buffer here (no index.sqlite); pass the --data-dir of an edge run"
            )
        try:
            if writable:
                for d in (self.root, self.images, self.tmp):
                    d.mkdir(parents=True, exist_ok=True)
                self._take_lock()
            self._open_index()
            self.reload_totals()
        except BaseException:
            self.close()
            raise

    # -- opening and closing -------------------------------------------------------------

    def _take_lock(self) -> None:
        path = self.root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                holder = ""
                with contextlib.suppress(OSError, ValueError):
                    holder = f" (pid {int(path.read_text().strip())})"
                raise UsageError(
                    f"{self.root}: the buffer is in use by another process{holder}; stop it "
                    "first, or give each process its own --data-dir"
                ) from None
            raise
        # The pid is only a hint for that message; the flock is what excludes.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _open_index(self) -> None:
        if self.writable:
            conn = sqlite3.connect(
                self.index, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        else:
            uri = f"{self.index.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        self.conn = conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT_VERSION:
                raise DataError(
                    f"{self.index}: buffer format version {version} is newer than this edge "
                    f"reads ({FORMAT_VERSION}); upgrade edge"
                )
            if self.writable:
                # Durability is explicit: WAL, and a commit returns only once it is on disk.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                # A checkpoint every 1 MB of WAL (not SQLite's 4 MB) and the WAL cut back to
                # 1 MB after it: on a small card the WAL's size is room the images lack.
                conn.execute("PRAGMA wal_autocheckpoint=256")
                conn.execute("PRAGMA journal_size_limit=1048576")
                if version == 0:
                    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                    if tables:
                        raise DataError(f"{self.index}: a SQLite file, but not an edge buffer")
                    conn.execute("BEGIN IMMEDIATE")
                    # Statement by statement: executescript() would commit first.
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
                    conn.execute("COMMIT")
            elif version == 0:
                raise DataError(f"{self.index}: not an edge buffer (no format version)")
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.index}: cannot read the buffer index: {exc}") from exc

    def reload_totals(self) -> None:
        """Re-read the totals from the index (after a rollback, or changes made by others)."""
        self.balance = {}
        self.records = self.bytes = 0
        for key, count, size in self.db.execute(
            "SELECT balance, count(*), coalesce(sum(size), 0) FROM records GROUP BY balance"
        ):
            self.balance[key] = count
            self.records += count
            self.bytes += size

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise RuntimeError(f"{self.root}: the buffer is closed")
        return self.conn

    # -- files ---------------------------------------------------------------------------

    def image_path(self, sha256: str, extension: str) -> Path:
        return self.images / f"{sha256}.{extension}"

    def write_image(self, data: bytes, sha256: str, extension: str) -> Path:
        """Put the image in place durably but for the directory entry (see :meth:`sync_images`).

        Temp file, fsync, rename: a reader never sees a partial image under its final name.
        """
        final = self.image_path(sha256, extension)
        tmp = self.tmp / f"{sha256}.{extension}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return final

    def sync_images(self) -> None:
        """Make the renames into images/ durable: after this, the rows may be committed."""
        fsync_dir(self.images)

    def read_image(self, row: Row | Stored) -> bytes:
        size = row.size if isinstance(row, Row) else None
        path = self.image_path(row.sha256, row.extension)
        data = path.read_bytes()
        wrong_size = size is not None and len(data) != size
        if wrong_size or hashlib.sha256(data).hexdigest() != row.sha256:
            raise OSError(errno.EIO, "image does not match its sha256 (corrupt)", str(path))
        return data

    def unlink_images(self, rows: Sequence[Row]) -> None:
        """Delete the files of rows already deleted (and committed); a failure leaves an
        orphan file for the reconciler, never a row without its file."""
        for row in rows:
            with contextlib.suppress(FileNotFoundError):
                self.image_path(row.sha256, row.extension).unlink()

    def free_bytes(self) -> int:
        st = os.statvfs(self.images)
        return st.f_bavail * st.f_frsize

    def make_reserve(self) -> bool:
        """Set :data:`RESERVE_BYTES` aside in a file of their own, if there is room for them.

        On a full disk SQLite cannot even commit the deletes that would free space (the WAL
        must grow first); giving up this file is what lets it (:meth:`release_reserve`).
        """
        if self.reserve.exists():
            return True
        tmp = self.tmp / "reserve.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.reserve)
            return True
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False

    def truncate_wal(self) -> bool:
        """Copy the WAL into the index and cut it to nothing (frees its space)."""
        try:
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False
        return int(busy) == 0

    def release_reserve(self) -> bool:
        """Free the reserve for the index's own writes; False when it was used up already."""
        try:
            self.reserve.unlink()
            return True
        except FileNotFoundError:
            return False

    # -- index ---------------------------------------------------------------------------

    def has_sha(self, sha256: str) -> bool:
        row = self.db.execute("SELECT 1 FROM records WHERE sha256 = ?", (sha256,)).fetchone()
        return row is not None

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        """Undo the open transaction and re-read the totals it had changed."""
        db = self.db
        if db.in_transaction:
            db.execute("ROLLBACK")
        self.reload_totals()

    def insert(self, rec: NewRecord) -> int:
        cur = self.db.execute(
            "INSERT INTO records (sha256, extension, size, captured_at, frame, device, model, "
            "label, decision, reason, balance, priority, stored_at, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.sha256,
                rec.extension,
                rec.size,
                rec.captured_at,
                rec.frame,
                rec.device,
                rec.model,
                rec.label,
                rec.decision,
                rec.reason,
                rec.balance,
                rec.priority,
                rec.stored_at,
                rec.metadata,
            ),
        )
        self.records += 1
        self.bytes += rec.size
        self.balance[rec.balance] = self.balance.get(rec.balance, 0) + 1
        assert cur.lastrowid is not None
        return cur.lastrowid

    def delete(self, ids: Sequence[int]) -> list[Row]:
        """Delete these rows (in the open transaction, or one of its own); returns the rows
        that existed, whose files the caller unlinks after the commit."""
        rows = self.get(ids)
        if rows:
            own = not self.db.in_transaction
            if own:
                self.begin()
            self.db.executemany("DELETE FROM records WHERE id = ?", [(r.id,) for r in rows])
            if own:
                self.commit()
            for r in rows:
                self.records -= 1
                self.bytes -= r.size
                left = self.balance.get(r.balance, 0) - 1
                if left > 0:
                    self.balance[r.balance] = left
                else:
                    self.balance.pop(r.balance, None)
        return rows

    def get(self, ids: Sequence[int]) -> list[Row]:
        rows: list[Row] = []
        for start in range(0, len(ids), 500):  # SQLite's limit on host parameters
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows.extend(
                Row(*r)
                for r in self.db.execute(
                    f"SELECT {_COLUMNS} FROM records WHERE id IN ({marks}) ORDER BY id", chunk
                )
            )
        return rows

    def oldest(self, limit: int) -> list[Row]:
        return [
            Row(*r)
            for r in self.db.execute(
                f"SELECT {_COLUMNS} FROM records ORDER BY captured_at, id LIMIT ?", (limit,)
            )
        ]

    def ids(self) -> list[int]:
        """Every record's id, oldest first."""
        return [r[0] for r in self.db.execute("SELECT id FROM records ORDER BY captured_at, id")]

    def rows(self, chunk: int = 500) -> Iterator[Row]:
        """Every record, oldest first, read `chunk` at a time: neither the sidecars of a large
        buffer nor a read transaction (which would hold back a running edge's checkpoints)
        are held for the whole walk."""
        ids = self.ids()
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            by_id = {row.id: row for row in self.get(part)}
            yield from (by_id[i] for i in part if i in by_id)

    def least_valuable(self, balance: str) -> Row | None:
        """The record of this class the buffer gives up first: lowest priority, then oldest."""
        r = self.db.execute(
            f"SELECT {_COLUMNS} FROM records WHERE balance = ? "
            "ORDER BY priority, captured_at LIMIT 1",
            (balance,),
        ).fetchone()
        return None if r is None else Row(*r)

    def largest_class(self) -> str | None:
        if not self.balance:
            return None
        return max(self.balance.items(), key=lambda kv: kv[1])[0]

    def files(self) -> dict[str, Entry]:
        """Every record's image file name, with what the checks need (no sidecars)."""
        return {
            f"{sha}.{ext}": Entry(id, sha, ext, size)
            for id, sha, ext, size in self.db.execute(
                "SELECT id, sha256, extension, size FROM records"
            )
        }

    def summary(self) -> dict[str, Any]:
        """Records and bytes, by decision and by class, and the span of capture times."""
        db = self.db
        total, size, first, last = db.execute(
            "SELECT count(*), coalesce(sum(size), 0), min(captured_at), max(captured_at) "
            "FROM records"
        ).fetchone()
        by_decision = {
            d: {"records": n, "bytes": b}
            for d, n, b in db.execute(
                "SELECT decision, count(*), sum(size) FROM records GROUP BY decision ORDER BY 1"
            )
        }
        by_class = {
            k: {"records": n, "bytes": b}
            for k, n, b in db.execute(
                "SELECT balance, count(*), sum(size) FROM records GROUP BY balance "
                "ORDER BY count(*) DESC, balance"
            )
        }
        return {
            "format_version": FORMAT_VERSION,
            "records": total,
            "bytes": size,
            "oldest": first,
            "newest": last,
            "by_decision": by_decision,
            "by_class": by_class,
        }
