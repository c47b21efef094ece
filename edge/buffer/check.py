"""The index against the files: the reconciler that runs on every open, and ``edge buffer check``.

What a crash leaves (see :mod:`edge.buffer.store`): temp files, and images whose row was never
committed or already deleted. Their bytes still match their name, so the reconciler deletes
them without a trace. Everything else is damage: a row whose file is missing, truncated or
altered, a file nobody wrote. ``check`` reports it; repair moves the files into
``quarantine/`` with the row's sidecar beside them, and deletes the rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.buffer.store import IMAGE_NAME, Entry, Store

log = logging.getLogger("edge.buffer")

#: Kinds of problem. "temp" and "leftover" are what crashes leave; the others are damage.
KINDS = ("temp", "leftover", "orphan", "missing", "size", "sha256", "index")


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
        with self.store.lock:
            self.store.delete([row.id])
        return True


def inspect(
    store: Store,
    *,
    verify: bool,
    repair: bool,
    delete_leftovers: bool,
    problem: Callable[[Problem], None] | None = None,
) -> CheckReport:
    """Compare the index with the files of `store`.

    `verify` hashes every image (check); without it only sizes are compared (the reconciler,
    which must be quick on open). `repair` needs a writable store. `delete_leftovers` removes
    the crash leftovers instead of reporting them as problems to repair.
    """
    problems: list[Problem] = []
    fix = _Repairs(store) if repair else None

    def found(p: Problem) -> None:
        problems.append(p)
        if problem is not None:
            problem(p)

    with store.lock:
        rows = store.files()
        if verify:
            verdict = store.db.execute("PRAGMA quick_check").fetchall()
            if verdict != [("ok",)]:
                detail = "; ".join(str(v[0]) for v in verdict[:5])
                found(Problem("index", str(store.index), f"SQLite quick_check: {detail}"))

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

    # Files without rows.
    files: dict[str, os.DirEntry[str]] = {}
    if store.images.is_dir():
        files = {e.name: e for e in os.scandir(store.images)}
    for name in sorted(set(files) - set(rows)):
        orphan = files[name]
        path = Path(orphan.path)
        match = IMAGE_NAME.match(name)
        intact = False
        if match and orphan.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                intact = _sha256_file(path) == match.group(1)
        if intact and _indexed_now(store, name):
            continue  # written by a running edge since the index was read
        if intact:
            p = Problem("leftover", str(path), "an image without a record (left by a crash)")
            if delete_leftovers:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                p.repaired = True
                continue
        else:
            p = Problem("orphan", str(path), "a file the buffer did not write, or damaged")
        if fix is not None:
            p.repaired = fix.quarantine_file(path)
        found(p)

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
            continue
        if fix is not None:
            p.repaired = fix.drop_row(row, path)
        found(p)

    with store.lock:
        store.reload_totals()
        records = store.records
    return CheckReport(records=records, problems=problems)


def reconcile(store: Store) -> CheckReport:
    """Repair the index against the files when a buffer opens (sizes only; no hashing of
    recorded images, so opening a large buffer stays quick)."""
    report = inspect(store, verify=False, repair=True, delete_leftovers=True)
    for p in report.problems:
        log.warning(
            "buffer: %s %s: %s (%s)",
            p.kind,
            p.path,
            p.detail,
            "repaired" if p.repaired else "not repaired",
        )
    return report


def check(root: Path, *, repair: bool = False) -> CheckReport:
    """``edge buffer check``: verify every record's image (sha256) and the index.

    Without `repair` nothing changes on disk and a running edge may keep writing (a write in
    flight can show as a leftover). With `repair` the buffer must not be in use.
    """
    with Store(root, writable=repair) as store:
        return inspect(store, verify=True, repair=repair, delete_leftovers=False)
