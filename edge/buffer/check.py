"""The index against the files: the reconciler that runs on every open, and ``edge buffer check``.

What a crash leaves (see :mod:`edge.buffer.store`): temp files; images without a sidecar,
whose write never got that far or whose delete had committed (the reconciler deletes them
without a trace); images with their sidecar but no row, whose commit never happened (indexed
again, as are those a lost WAL or a rebuilt index forgot); rows whose sidecar was unlinked by a
delete that did not commit (the sidecar is written again from the row). Everything else is
damage: a row whose file is missing, truncated or altered, a file nobody wrote, a sidecar
without its image, an image that cannot be indexed again after a rebuild. ``check`` reports
it; repair moves the files into ``quarantine/`` with the row's sidecar beside them, and
deletes the rows. Nothing is ever deleted that could have been a record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.buffer.store import (
    IMAGE_NAME,
    SIDECAR_NAME,
    SIDECAR_VERSION,
    Entry,
    IndexCorrupt,
    NewRecord,
    Row,
    Store,
    is_corrupt,
)
from edge.buffer.writer import record_from_sidecar

log = logging.getLogger("edge.buffer")

#: Kinds of problem. "temp", "leftover", "unindexed" and "sidecar" are what crashes leave
#: ("unindexed" also what a lost WAL or a rebuilt index leaves); the others are damage.
KINDS = ("temp", "leftover", "unindexed", "sidecar", "orphan", "missing", "size", "sha256", "index")


@dataclass
class Problem:
    kind: str
    path: str | None
    detail: str
    id: int | None = None
    repaired: bool = False


@dataclass
class CheckReport:
    records: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing is wrong any more (every problem found was repaired)."""
        return all(p.repaired for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "problems": [asdict(p) for p in self.problems],
        }


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _exists_now(store: Store, record: int) -> bool:
    with store.lock:
        return bool(store.get([record]))


def _indexed_now(store: Store, name: str) -> bool:
    with store.lock:
        return store.has_sha(name.partition(".")[0])


class _Repairs:
    """Moves things into quarantine/ (created on first use) and deletes their rows."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stamp = time.strftime("%Y%m%dT%H%M%S")

    def _target(self, name: str) -> Path:
        q = self.store.quarantine
        q.mkdir(exist_ok=True)
        target = q / f"{self.stamp}-{name}"
        n = 1
        while target.exists():
            n += 1
            target = q / f"{self.stamp}-{n}-{name}"
        return target

    def quarantine_file(self, path: Path) -> bool:
        try:
            os.replace(path, self._target(path.name))
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning("buffer: cannot quarantine %s: %s", path, exc)
            return False

    def drop_row(self, entry: Entry, path: Path | None) -> bool:
        """Keep the row's sidecar (and its file, if any) in quarantine; delete the row."""
        with self.store.lock:
            rows = self.store.get([entry.id])
        if not rows:
            return True  # gone meanwhile
        row = rows[0]
        try:
            self._target(f"{row.filename}.json").write_text(
                json.dumps({"id": row.id, "metadata": row.sidecar()}, indent=1) + "\n"
            )
        except (OSError, ValueError) as exc:
            log.warning("buffer: cannot keep the sidecar of record %d: %s", row.id, exc)
        if path is not None and not self.quarantine_file(path):
            return False
        # The sidecar file goes with the row: what it holds is in the file just written.
        with self.store.lock:
            self.store.delete([row.id])
        return True


def _reindex(store: Store, found: list[tuple[NewRecord, Problem]], last_id: int) -> None:
    """Give records the index lost their rows again, oldest first, in one transaction."""
    found.sort(key=lambda item: (item[0].captured_at, item[0].sha256))
    with store.lock:
        try:
            for rec, _ in found:
                path = store.sidecar_path(rec.sha256, rec.extension)
                if not path.exists():  # a row salvaged from a corrupt index (format 1)
                    store.write_sidecar(rec.sha256, rec.extension, rec.metadata)
            store.sync_images()
            store.begin()
            store.raise_ids_above(last_id)
            for rec, _ in found:
                if not store.has_sha(rec.sha256):
                    store.insert(rec)
            store.commit()
        except (sqlite3.Error, OSError) as exc:
            store.rollback()
            log.warning("buffer: cannot index %d records again: %s", len(found), exc)
            return
    for _, p in found:
        p.repaired = True


def _salvaged(row: Row) -> NewRecord:
    return NewRecord(
        **{k: v for k, v in asdict(row).items() if k != "id"},
    )


def inspect(
    store: Store,
    *,
    verify: bool,
    repair: bool,
    delete_leftovers: bool,
    problem: Callable[[Problem], None] | None = None,
) -> CheckReport:
    """Compare the index with the files of `store`.

    `verify` checks the index (:class:`IndexCorrupt` when SQLite finds it damaged) and hashes
    every image (check); without it only sizes are compared (the reconciler, which must be
    quick on open). `repair` needs a writable store. `delete_leftovers` removes the crash
    leftovers instead of reporting them as problems to repair.
    """
    problems: list[Problem] = []
    fix = _Repairs(store) if repair else None
    has_sidecars = store.opened_version >= SIDECAR_VERSION
    aside = store.set_aside
    # An image with neither row nor sidecar is what a crash left of a write or a delete, but
    # only if the index can be trusted and the buffer had sidecars: otherwise it may have been
    # a record, and it is kept in quarantine.
    trust_leftovers = aside is None and not store.upgraded

    def found(p: Problem) -> None:
        problems.append(p)
        if problem is not None:
            problem(p)

    if aside is not None:
        detail = f"corrupt ({aside.detail}); set aside as {aside.path}, rebuilt from the images"
        found(Problem("index", str(store.index), detail, repaired=True))

    with store.lock:
        if verify:
            verdict = store.db.execute("PRAGMA quick_check").fetchall()
            if verdict != [("ok",)]:
                raise IndexCorrupt(store.index, "; ".join(str(v[0]) for v in verdict[:3]))
        rows = store.files()

    # Temp files: a write that never reached its rename.
    if store.tmp.is_dir():
        for entry in sorted(os.scandir(store.tmp), key=lambda e: e.name):
            path = Path(entry.path)
            p = Problem("temp", str(path), "an unfinished write")
            if delete_leftovers or fix is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                p.repaired = True
            if not delete_leftovers:
                found(p)

    listing: dict[str, os.DirEntry[str]] = {}
    if store.images.is_dir():
        listing = {e.name: e for e in os.scandir(store.images)}
    sidecars = {n for n in listing if SIDECAR_NAME.match(n)}
    files = {n: e for n, e in listing.items() if n not in sidecars}

    def set_aside(p: Problem, *paths: Path) -> None:
        if fix is not None:
            p.repaired = all([fix.quarantine_file(path) for path in paths])
        found(p)

    # Files without rows.
    lost: list[tuple[NewRecord, Problem]] = []
    for name in sorted(set(files) - set(rows)):
        orphan = files[name]
        path = Path(orphan.path)
        match = IMAGE_NAME.match(name)
        sidecar = store.images / f"{name}.json"
        with_sidecar = (path, sidecar) if f"{name}.json" in sidecars else (path,)
        intact = False
        size = 0
        if match and orphan.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                size = orphan.stat(follow_symlinks=False).st_size
                intact = _sha256_file(path) == match.group(1)
        if intact and _indexed_now(store, name):
            continue  # written by a running edge since the index was read
        if not intact:
            p = Problem("orphan", str(path), "a file the buffer did not write, or damaged")
            set_aside(p, *with_sidecar)
            continue
        record: NewRecord | None = None
        why = "no sidecar"
        if len(with_sidecar) == 2:
            try:
                text = sidecar.read_text()
                record = record_from_sidecar(text, name, size, sidecar.stat().st_mtime)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                why = f"its sidecar is unreadable: {exc}"
        elif aside is not None and name in aside.rows:
            record = _salvaged(aside.rows[name])
        if record is not None:
            detail = "an image and its sidecar without a record (lost by the index, or by a crash)"
            p = Problem("unindexed", str(path), detail)
            if fix is not None:
                lost.append((record, p))
            found(p)
            continue
        if trust_leftovers and len(with_sidecar) == 1:
            p = Problem("leftover", str(path), "an image without a record (left by a crash)")
            if delete_leftovers:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            set_aside(p, path)
            continue
        set_aside(Problem("orphan", str(path), f"cannot be indexed again: {why}"), *with_sidecar)
    if lost:
        _reindex(store, lost, aside.last_id if aside is not None else 0)

    # Sidecars without their image (never left by a crash: the image is written first and
    # deleted last).
    for name in sorted(sidecars):
        image = name.removesuffix(".json")
        path = store.images / name
        if image in files or image in rows or (store.images / image).exists():
            continue  # its image is there, or its row (whose check deals with the pair)
        if not path.exists():
            continue
        set_aside(Problem("orphan", str(path), "a sidecar without its image"), path)

    # Rows against their files.
    for name, row in rows.items():
        path = store.images / name
        found_entry = files.get(name)
        if found_entry is None:
            if not _exists_now(store, row.id):
                continue  # deleted by a running edge (uploaded or evicted) meanwhile
            p = Problem("missing", str(path), "the record's image file is gone", row.id)
            if fix is not None:
                p.repaired = fix.drop_row(row, None)
            found(p)
            continue
        try:
            size = found_entry.stat(follow_symlinks=False).st_size
            digest = _sha256_file(path) if verify and size == row.size else None
        except OSError as exc:
            p = Problem("missing", str(path), f"unreadable: {exc.strerror}", row.id)
            if fix is not None:
                p.repaired = fix.drop_row(row, path)
            found(p)
            continue
        if size != row.size:
            detail = f"{size} bytes, the record says {row.size} (truncated or overwritten)"
            p = Problem("size", str(path), detail, row.id)
        elif digest is not None and digest != row.sha256:
            p = Problem("sha256", str(path), "the bytes do not match the record's sha256", row.id)
        else:
            if has_sidecars:
                listed = f"{name}.json" in sidecars
                _check_sidecar(store, row, listed, verify, fix, found, silent=delete_leftovers)
            continue
        if fix is not None:
            p.repaired = fix.drop_row(row, path)
        found(p)

    with store.lock:
        store.reload_totals()
        records = store.records
    return CheckReport(records=records, problems=problems)


def _check_sidecar(
    store: Store,
    entry: Entry,
    listed: bool,
    verify: bool,
    fix: _Repairs | None,
    found: Callable[[Problem], None],
    *,
    silent: bool,
) -> None:
    """A record's sidecar file against its row; the row is what counts, and repair (or the
    reconciler, silently) writes the file again from it. A crash in the middle of a delete
    leaves a row without its sidecar, if the delete did not commit."""
    path = store.sidecar_path(entry.sha256, entry.extension)
    detail = "the record's sidecar file is gone"
    if listed:
        if not verify:
            return
        with store.lock:
            rows = store.get([entry.id])
        try:
            if not rows or path.read_text() == rows[0].metadata:
                return
            detail = "the record's sidecar file does not match the record"
        except (OSError, UnicodeDecodeError):
            detail = "the record's sidecar file is unreadable"
    with store.lock:
        rows = store.get([entry.id])
        if not rows or (path.exists() and not listed):
            return  # deleted, or written, by a running edge meanwhile
        p = Problem("sidecar", str(path), detail, entry.id)
        if fix is not None:
            try:
                if path.exists():
                    fix.quarantine_file(path)
                store.write_sidecar(entry.sha256, entry.extension, rows[0].metadata)
                store.sync_images()
                p.repaired = True
            except OSError as exc:
                log.warning("buffer: cannot write the sidecar of record %d: %s", entry.id, exc)
        if not (silent and p.repaired and not listed):
            found(p)


def reconcile(store: Store) -> CheckReport:
    """Repair the index against the files when a buffer opens (sizes only; no hashing of
    recorded images, so opening a large buffer stays quick)."""
    report = inspect(store, verify=False, repair=True, delete_leftovers=True)
    again = [p for p in report.problems if p.kind == "unindexed"]
    if again and store.set_aside is None:  # after a rebuild, the caller says it in one line
        done = sum(p.repaired for p in again)
        log.warning(
            "buffer: %d records the index did not know were indexed again from their sidecars%s",
            done,
            f" ({len(again) - done} could not be)" if done < len(again) else "",
        )
    for p in report.problems:
        if p.kind in ("unindexed", "index"):
            continue
        log.warning(
            "buffer: %s %s: %s (%s)",
            p.kind,
            p.path,
            p.detail,
            "repaired" if p.repaired else "not repaired",
        )
    return report


def check(root: Path, *, repair: bool = False) -> CheckReport:
    """``edge buffer check``: verify the index and every record's image (sha256).

    Without `repair` nothing changes on disk and a running edge may keep writing (a write in
    flight can show as a leftover); a corrupt index is one problem ("index"). With `repair`
    the buffer must not be in use, and a corrupt index is set aside and rebuilt.
    """
    try:
        with Store(root, writable=repair, rebuild=repair) as store:
            return inspect(store, verify=True, repair=repair, delete_leftovers=False)
    except (IndexCorrupt, sqlite3.DatabaseError) as exc:
        if not isinstance(exc, IndexCorrupt):
            if not is_corrupt(exc):
                raise
            exc = IndexCorrupt(root / "index.sqlite", str(exc))
        return CheckReport(records=0, problems=[Problem("index", str(exc.index), exc.what)])
