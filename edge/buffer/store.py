"""The buffer on disk: a SQLite index and one encoded image file per record, with its sidecar.

Layout of ``<data-dir>/buffer/`` (format version 2, ``PRAGMA user_version``)::

    index.sqlite      the index (WAL, synchronous=FULL): one row per record, sidecar as JSON
    images/<sha256>.<jpg|png>
    images/<sha256>.<jpg|png>.json   the record's sidecar: the very text of its metadata column
    tmp/              files being written; anything here after a crash is garbage
    quarantine/       what check --repair or the reconciler set aside, never deleted by edge
    reserve           RESERVE_BYTES set aside, given up on a full disk so the index can commit
    lock              flock()ed by the one process that writes (runtime, repair, purge)

Invariant, at every instant and across crashes: every row's image file exists, complete and
durable. An image and then its sidecar are written to tmp/, fsynced, renamed into images/ and
the directory fsynced before the row that names them is committed; to delete, the sidecar is
unlinked (and the directory fsynced) before the row's delete commits, and the image after. So
an image with a sidecar but no row is a record the index lost (a deleted WAL, a rebuilt index)
or one a crash kept from committing, and the reconciler indexes it again; an image without
either is what a crash left of a write or a delete, never a record, and is removed.

The sidecars make the index rebuildable: a corrupt index (``PRAGMA quick_check`` on every
writable open) is moved into quarantine/ and a new one is built from the images and their
sidecars (:attr:`Store.set_aside`; the reconciler does the indexing). Format version 1 had no
sidecar files; it is read as it is, and the first writable open writes the sidecars of its
rows and moves it to version 2.

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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from edge.errors import DataError, UsageError
from edge.records import FlagDecision, Stored

FORMAT_VERSION = 2
#: The first version with a sidecar file beside every image.
SIDECAR_VERSION = 2
EXTENSIONS = ("jpg", "png")
#: Disk space set aside for the index (see Store.make_reserve): the WAL pages of a few hundred
#: deletes.
RESERVE_BYTES = 256 * 1024
IMAGE_NAME = re.compile(r"^([0-9a-f]{64})\.(jpg|png)$")
SIDECAR_NAME = re.compile(r"^([0-9a-f]{64})\.(jpg|png)\.json$")
#: SQLite's answers for a damaged file: "database disk image is malformed", "file is not a
#: database".
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

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


class IndexCorrupt(DataError):
    """The buffer's index is damaged (SQLite cannot read it, or ``quick_check`` fails)."""

    def __init__(self, index: Path, detail: str) -> None:
        self.index = index
        self.detail = detail
        #: The message without the path.
        self.what = (
            f"the buffer index is corrupt ({detail}); stop edge and run `edge buffer check "
            "--repair`, or start edge: either sets it aside and rebuilds it from the images' "
            "sidecars"
        )
        super().__init__(f"{index}: {self.what}")


def is_corrupt(exc: BaseException) -> bool:
    """Whether a SQLite error says the file is damaged (rather than busy, read-only, ...)."""
    return (
        isinstance(exc, sqlite3.DatabaseError)
        and getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES
    )


@dataclass
class SetAside:
    """A corrupt index moved into quarantine/, and what could still be read from it."""

    path: Path
    detail: str
    rows: dict[str, Row]  # by image file name: used for images that have no sidecar (format 1)
    last_id: int  # the highest id it is known to have handed out (0: unknown)


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

    def __init__(
        self, root: Path, *, writable: bool = True, create: bool = False, rebuild: bool = False
    ) -> None:
        """Open the buffer at `root` (``<data-dir>/buffer``).

        `writable` takes the writer's lock (one writing process per buffer) and opens the index
        read-write, checking it first (:class:`IndexCorrupt`); otherwise the index is opened
        read-only and nothing on disk changes, so it is safe beside a running edge. `create`
        makes an empty buffer when there is none. `rebuild` (writable only) sets a corrupt
        index aside into quarantine/ and starts a new one instead of raising
        (:attr:`set_aside`); the reconciler then indexes the images again from their sidecars.
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
        #: The format version of the index as it was opened (1: no sidecar files).
        self.opened_version = FORMAT_VERSION
        #: The files of a format-1 buffer were given their sidecars by this open.
        self.upgraded = False
        self.set_aside: SetAside | None = None
        # Rows deleted in the open transaction, whose sidecars are unlinked already: put back
        # on rollback, and the directory fsynced before the commit.
        self._unlinked: list[Row] = []
        if not self.index.exists() and not create:
            raise DataError(
                f"{self.root}: no buffer here (no index.sqlite); pass the --data-dir of an edge run"
            )
        try:
            if writable:
                for d in (self.root, self.images, self.tmp):
                    d.mkdir(parents=True, exist_ok=True)
                self._take_lock()
            try:
                self._open_index()
                self.reload_totals()
            except IndexCorrupt as exc:
                if not (writable and rebuild):
                    raise
                self._rebuild(exc.detail)
            if writable and self.opened_version < SIDECAR_VERSION:
                self._write_missing_sidecars()
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
            self.opened_version = version
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
                    self.opened_version = FORMAT_VERSION
                else:
                    # Every start: a damaged index found now is rebuilt before it is written
                    # into (O(pages), a few ms for a buffer of thousands of records).
                    verdict = conn.execute("PRAGMA quick_check").fetchall()
                    if verdict != [("ok",)]:
                        raise IndexCorrupt(self.index, "; ".join(str(v[0]) for v in verdict[:3]))
            elif version == 0:
                raise DataError(f"{self.index}: not an edge buffer (no format version)")
        except sqlite3.DatabaseError as exc:
            if is_corrupt(exc):
                raise IndexCorrupt(self.index, str(exc)) from exc
            raise DataError(f"{self.index}: cannot read the buffer index: {exc}") from exc

    def _salvage(self, detail: str) -> SetAside:
        """What can still be read from the damaged index: its rows until the damage (read
        both ways) and the highest id it gave out. Never raises."""
        rows: dict[str, Row] = {}
        last = 0
        conn = self.conn
        if conn is None:
            return SetAside(self.index, detail, rows, last)
        with contextlib.suppress(sqlite3.Error):
            found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'")
            last = max(last, int(found.fetchone()[0]))
        for order in ("ASC", "DESC"):
            with contextlib.suppress(sqlite3.Error, TypeError, ValueError):
                for r in conn.execute(f"SELECT {_COLUMNS} FROM records ORDER BY id {order}"):
                    row = Row(*r)
                    rows.setdefault(row.filename, row)
                    last = max(last, int(row.id))
        return SetAside(self.index, detail, rows, last)

    def _rebuild(self, detail: str) -> None:
        """Move the corrupt index (and its WAL) into quarantine/ and start an empty one."""
        salvage = self._salvage(detail)
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None
        self.quarantine.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.quarantine / f"{stamp}-index.sqlite"
        n = 1
        while target.exists():
            n += 1
            target = self.quarantine / f"{stamp}-{n}-index.sqlite"
        for suffix in ("-wal", "-shm", ""):  # the index last: without it the rest is nothing
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.index}{suffix}", f"{target}{suffix}")
        fsync_dir(self.quarantine)
        fsync_dir(self.root)
        salvage.path = target
        self.set_aside = salvage
        self._open_index()
        self.reload_totals()
        self.raise_ids_above(salvage.last_id)

    def raise_ids_above(self, last: int) -> None:
        """Make new ids start above `last` and above any id an index that lost rows may have
        handed out: the upload journal names records by id, and an id it names must never
        come back as another record. Ids are one per stored frame, so the clock in
        milliseconds is above any of them (and above an earlier call's, unless the clock went
        back: hence the max with what the index holds)."""
        db = self.db
        floor = max(int(last), int(time.time() * 1000))
        found = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        if found is None:
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)", (floor,))
        elif int(found[0]) < floor:
            db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'records'", (floor,))

    def _write_missing_sidecars(self) -> None:
        """Format 1 to 2: a sidecar file for every row (those of an image that is gone too:
        the reconciler quarantines them with the row)."""
        names = set(os.listdir(self.images))
        for row in self.rows():
            if f"{row.filename}.json" not in names:
                self.write_sidecar(row.sha256, row.extension, row.metadata)
        self.sync_images()
        self.db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
        self.opened_version = FORMAT_VERSION
        self.upgraded = True

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

    def sidecar_path(self, sha256: str, extension: str) -> Path:
        return self.images / f"{sha256}.{extension}.json"

    def _write_durably(self, data: bytes, final: Path) -> None:
        tmp = self.tmp / f"{final.name}.{os.getpid()}.tmp"
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

    def write_sidecar(self, sha256: str, extension: str, metadata: str) -> Path:
        """Put the record's sidecar beside its image (durable after :meth:`sync_images`):
        the same text as the row's metadata column, so the row can be made again from it."""
        final = self.sidecar_path(sha256, extension)
        self._write_durably(metadata.encode(), final)
        return final

    def write_image(self, data: bytes, sha256: str, extension: str) -> Path:
        """Put the image in place durably but for the directory entry (see :meth:`sync_images`).

        Temp file, fsync, rename: a reader never sees a partial image under its final name.
        """
        final = self.image_path(sha256, extension)
        self._write_durably(data, final)
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
                self.sidecar_path(row.sha256, row.extension).unlink()  # gone already, normally
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
        if self._unlinked:
            # The sidecars of the deleted rows must be gone for good before their deletes
            # are: otherwise a power cut could leave image and sidecar of a deleted record,
            # which the reconciler would index again.
            fsync_dir(self.images)
        self.db.execute("COMMIT")
        self._unlinked = []

    def rollback(self) -> None:
        """Undo the open transaction and re-read the totals it had changed."""
        db = self.db
        if db.in_transaction:
            db.execute("ROLLBACK")
        self._restore_sidecars()
        self.reload_totals()

    def _restore_sidecars(self) -> None:
        """Put back the sidecars of deletes that were rolled back (the reconciler would, at
        the next start)."""
        rows, self._unlinked = self._unlinked, []
        for row in rows:
            with contextlib.suppress(OSError):
                self.write_sidecar(row.sha256, row.extension, row.metadata)

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
            try:
                for r in rows:
                    self._unlinked.append(r)
                    with contextlib.suppress(FileNotFoundError):
                        self.sidecar_path(r.sha256, r.extension).unlink()
                self.db.executemany("DELETE FROM records WHERE id = ?", [(r.id,) for r in rows])
                if own:
                    self.commit()
            except BaseException:
                if own:
                    self.rollback()
                raise
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
            "format_version": self.opened_version,
            "records": total,
            "bytes": size,
            "oldest": first,
            "newest": last,
            "by_decision": by_decision,
            "by_class": by_class,
        }
