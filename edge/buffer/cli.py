"""``edge buffer``: look into, check, export and purge the local buffer of flagged frames.

The commands that only read (ls, stats, check, export) are safe beside a running edge; the
ones that change the buffer (check --repair, purge) refuse while edge has it open.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from edge.buffer.buffer import buffer_dir
from edge.buffer.check import check
from edge.buffer.export import FORMATS, export
from edge.buffer.store import IndexCorrupt, Store, is_corrupt
from edge.cli_support import check_writable, write_json
from edge.errors import DataError, UsageError


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


@contextlib.contextmanager
def _reading(data_dir: Path) -> Iterator[Store]:
    """The buffer opened read-only; a corrupt index is one line (exit 2), not a traceback."""
    root = buffer_dir(data_dir)
    try:
        with Store(root, writable=False) as store:
            yield store
    except sqlite3.DatabaseError as exc:
        if is_corrupt(exc):
            raise IndexCorrupt(root / "index.sqlite", str(exc)) from None
        raise DataError(f"{root / 'index.sqlite'}: cannot read the buffer index: {exc}") from None


def cmd_ls(args: argparse.Namespace) -> int:
    with _reading(args.data_dir) as store:
        print(
            f"{'id':>8}  {'captured (UTC)':<23} {'decision':<8} {'reason':<18} "
            f"{'label':<20} {'conf':>5} {'bytes':>8}  sha256"
        )
        for row in store.rows():
            conf = row.sidecar().get("confidence")
            conf_s = f"{conf:.3f}" if isinstance(conf, float | int) else "-"
            print(
                f"{row.id:>8}  {_when(row.captured_at):<23} {row.decision:<8} "
                f"{row.reason[:18]:<18} {row.label[:20]:<20} {conf_s:>5} {row.size:>8}  "
                f"{row.sha256[:16]}"
            )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    check_writable(args.json)
    with _reading(args.data_dir) as store:
        doc = store.summary()
    write_json(args.json, doc)  # first: a reader of stdout that went away must not cost it
    print(f"records {doc['records']}  bytes {doc['bytes']}")
    print(f"captured {_when(doc['oldest'])} .. {_when(doc['newest'])}")
    for name in ("by_decision", "by_class"):
        for key, v in doc[name].items():
            print(f"  {name[3:]:<9} {key:<28} {v['records']:>8} records {v['bytes']:>12} bytes")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    check_writable(args.json)  # before a repair, whose report would be lost
    report = check(buffer_dir(args.data_dir), repair=args.repair)
    write_json(args.json, report.to_json())  # first: a reader of stdout that went away
    for p in report.problems:
        state = "repaired" if p.repaired else "PROBLEM"
        rec = f" record {p.id}" if p.id is not None else ""
        print(f"{state}: {p.kind}{rec}: {p.path}: {p.detail}")
    verdict = "ok" if report.ok else f"{sum(not p.repaired for p in report.problems)} problems"
    print(f"{report.records} records; {verdict}")
    return 0 if report.ok else 1


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
    else:
        with path.open("w") as f:
            yield f


def cmd_export(args: argparse.Namespace) -> int:
    check_writable(args.out)
    with _reading(args.data_dir) as store, _output(args.out) as out:
        n = export(store, args.format, out)
    if args.out is not None:
        print(f"{n} records written to {args.out}", file=sys.stderr)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    with Store(buffer_dir(args.data_dir), writable=True) as store:
        if not args.yes:
            raise UsageError(
                f"purge deletes all {store.records} records of {store.root} without uploading "
                "them; add --yes to do it"
            )
        ids = store.ids()
        rows = store.delete(ids)
        store.unlink_images(rows)
    print(f"{len(rows)} records deleted")
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    """Adds the subcommands of ``edge buffer`` to its parser."""
    p.description = __doc__
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    cmds = p.add_subparsers(dest="buffer_command", required=True, metavar="COMMAND")

    def data_dir(c: argparse.ArgumentParser) -> None:
        c.add_argument(
            "--data-dir",
            type=Path,
            default=Path("edge-data"),
            help="the data directory of the edge run (default ./edge-data); the buffer is "
            "its buffer/ subdirectory",
        )

    c = cmds.add_parser("ls", help="list the records, oldest first")
    data_dir(c)
    c.set_defaults(func=cmd_ls)

    c = cmds.add_parser("stats", help="records and bytes, by decision and by class")
    data_dir(c)
    c.add_argument("--json", type=Path, help="write the figures here")
    c.set_defaults(func=cmd_stats)

    c = cmds.add_parser(
        "check",
        help="verify every record's image against the index; exit 0 when ok, 1 when "
        "problems remain",
        description="Verify the index and every record's image (sha256). Exit code 0 when "
        "the buffer is ok (or --repair fixed everything), 1 when problems remain.",
    )
    data_dir(c)
    c.add_argument(
        "--repair",
        action="store_true",
        help="move damaged and unknown files into buffer/quarantine/ (with the record's "
        "metadata) and delete their records, index again the images the index lost, and set "
        "a corrupt index aside and rebuild it from the images' sidecars; needs edge stopped",
    )
    c.add_argument(
        "--json", type=Path, help='write {"ok": bool, "records": N, "problems": [...]} here'
    )
    c.set_defaults(func=cmd_check)

    c = cmds.add_parser("export", help="write the records as JSON lines or Label Studio tasks")
    data_dir(c)
    c.add_argument("--format", required=True, choices=FORMATS)
    c.add_argument("--out", type=Path, help="write here instead of standard output")
    c.set_defaults(func=cmd_export)

    c = cmds.add_parser("purge", help="delete every record without uploading it")
    data_dir(c)
    c.add_argument("--yes", action="store_true", help="really delete")
    c.set_defaults(func=cmd_purge)
